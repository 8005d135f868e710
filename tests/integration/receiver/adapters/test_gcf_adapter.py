"""The Cloud Functions entry point, loaded from a source file by functions-framework."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from adapter_cases import (
    REFUSALS,
    SECRET,
    SIGNING,
    Answer,
    Refusal,
    Send,
    check_refusal,
    check_store_down,
    check_stored_once,
    event,
)
from functions_framework import create_app

from verihook import Receiver

# What a user deploys: main.py with --entry-point=webhook, configured by the environment.
SOURCE = """\
import os

from verihook import Receiver
from verihook.receiver.adapters.gcf import make_function

receiver = Receiver(
    os.environ["VERIHOOK_SECRET"],
    signing_secrets=[os.environ["VERIHOOK_SIGNING_SECRET"]],
    database_url=os.environ["VERIHOOK_DATABASE_URL"],
)
seen = []


@receiver.on("VERIFICATION_REVIEWED")
def reviewed(event):
    seen.append(event.key)


webhook = make_function(receiver)
"""

Deploy = Callable[[str], tuple[Send, Any]]


@pytest.fixture
def deploy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deploy]:
    """Load the function for a database URL: (send, the loaded module)."""
    source = tmp_path / "verihook_gcf_main.py"
    source.write_text(SOURCE)
    modules: list[Any] = []

    def load(database_url: str) -> tuple[Send, Any]:
        monkeypatch.setenv("VERIHOOK_SECRET", SECRET.reveal())
        monkeypatch.setenv("VERIHOOK_SIGNING_SECRET", SIGNING.reveal())
        monkeypatch.setenv("VERIHOOK_DATABASE_URL", database_url)
        client = create_app(target="webhook", source=str(source)).test_client()
        module = sys.modules.pop(source.stem)
        modules.append(module)

        def send(method: str, headers: Mapping[str, str], body: bytes) -> Answer:
            reply = client.open("/", method=method, headers=dict(headers), data=body)
            return Answer(reply.status_code, {k.lower(): v for k, v in reply.headers}, reply.data)

        return send, module

    yield load
    for module in modules:
        module.receiver.stop()
    if str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))  # functions-framework appends the source directory


def test_a_valid_event_is_stored_once_and_its_handler_has_run(
    deploy: Deploy, database_url: str
) -> None:
    send, module = deploy(database_url)
    check_stored_once(send, module.receiver)
    # Ran before the answer: Cloud Functions throttles the CPU once the function returns.
    assert module.seen == [event().key]


@pytest.mark.parametrize("case", REFUSALS, ids=str)
def test_refusals(deploy: Deploy, sqlite_url: str, case: Refusal) -> None:
    send, module = deploy(sqlite_url)
    check_refusal(send, module.receiver, case)


def test_store_down_is_503_until_it_is_back(deploy: Deploy, tmp_path: Path) -> None:
    directory = tmp_path / "not-yet"
    send, module = deploy(f"sqlite:///{directory / 'inbox.db'}")
    receiver: Receiver = module.receiver
    check_store_down(send, receiver, directory.mkdir)
    assert module.seen == [event().key]
