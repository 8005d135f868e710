"""The Flask adapter through Flask's own test client, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from adapter_cases import (
    REFUSALS,
    Answer,
    Refusal,
    Send,
    check_refusal,
    check_store_down,
    check_stored_once,
    event,
    make_receiver,
    signed,
    wait_for,
)
from flask import Flask
from werkzeug.test import EnvironBuilder, run_wsgi_app

from verihook import Receiver
from verihook.receiver.adapters.flask import blueprint, webhook_view


@pytest.fixture
def receiver(database_url: str) -> Iterator[Receiver]:
    # Overrides the SQLite-only fixture: this adapter's contract runs on both backends.
    receiver = make_receiver(database_url)
    yield receiver
    receiver.stop()


def flask_send(receiver: Receiver, path: str = "/passbase/webhooks") -> Send:
    app = Flask(__name__)
    app.register_blueprint(blueprint(receiver), url_prefix="/passbase")
    client = app.test_client()

    def send(method: str, headers: Mapping[str, str], body: bytes) -> Answer:
        reply = client.open(path, method=method, headers=dict(headers), data=body)
        return Answer(reply.status_code, {k.lower(): v for k, v in reply.headers}, reply.data)

    return send


def test_a_valid_event_is_stored_once(receiver: Receiver) -> None:
    check_stored_once(flask_send(receiver), receiver)


@pytest.mark.parametrize("case", REFUSALS, ids=str)
def test_refusals(receiver: Receiver, case: Refusal) -> None:
    check_refusal(flask_send(receiver), receiver, case)


def test_store_down_is_503_until_it_is_back(down: tuple[Receiver, Callable[[], None]]) -> None:
    receiver, bring_back = down
    check_store_down(flask_send(receiver), receiver, bring_back)


@pytest.mark.parametrize("path", ["/passbase", "/passbase/", "/passbase/webhooks"])
def test_the_blueprint_takes_webhooks_where_the_asgi_app_does(
    receiver: Receiver, path: str
) -> None:
    headers, body = signed(event())
    assert flask_send(receiver, path)("POST", headers, body).status == 200


def test_a_plain_view_and_handlers_in_the_background(receiver: Receiver) -> None:
    seen: list[Any] = []
    receiver.on("VERIFICATION_REVIEWED")(seen.append)
    app = Flask(__name__)
    app.add_url_rule("/hook", view_func=webhook_view(receiver))
    receiver.start()
    headers, body = signed(event())
    assert app.test_client().post("/hook", headers=headers, data=body).status_code == 200
    wait_for(lambda: seen, what="the REVIEWED handler")
    assert [e.key for e in seen] == [event().key]


class CountingStream(io.RawIOBase):
    """An endless request body that counts what was read from it."""

    def __init__(self) -> None:
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = len(buffer)
        buffer[:n] = b"A" * n
        self.consumed += n
        return n


def test_a_body_without_length_is_cut_off_at_the_cap(receiver: Receiver) -> None:
    app = Flask(__name__)
    app.add_url_rule("/hook", view_func=webhook_view(receiver))
    stream = CountingStream()
    environ = EnvironBuilder(
        path="/hook", method="POST", headers={"content-type": "text/plain"}
    ).get_environ()
    # Chunked: no length, and the server marks the input as terminated (as werkzeug's and
    # gunicorn's do), so the body is read until the client stops or the cap is hit.
    environ.pop("CONTENT_LENGTH", None)
    environ.update({"wsgi.input": stream, "wsgi.input_terminated": True})
    _, status, _ = run_wsgi_app(app, environ, buffered=True)
    assert status.startswith("413 ")
    assert 64 * 1024 < stream.consumed <= 64 * 1024 + 1 + 16 * 1024
    assert receiver.recent_events() == []
