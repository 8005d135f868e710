"""The format tools, driven as a user drives them: a real process, pipes, a real HTTP server."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from verihook import __version__
from verihook.format import (
    DecodeOptions,
    EventType,
    SigningSecret,
    Status,
    WebhookEvent,
    WebhookSecret,
    decode_request,
    decrypt,
    parse_event,
    verify,
)

SECRET = "YOUR_WEBHOOK_SECRET_32_BYTES_KEY"
SIGNING = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
KEY = "b76e244e-26a3-49ef-9c72-3e599bf0b5f2"
EVENT = (
    b'{"event":"VERIFICATION_COMPLETED","key":"b76e244e-26a3-49ef-9c72-3e599bf0b5f2",'
    b'"status":"pending","created":1582628711,"updated":1582628999,"processed":1582628999}'
)
VECTORS = json.loads(
    (Path(__file__).parents[1] / "data" / "passbase-aes256cbc.json").read_text("utf-8")
)


def verihook(
    *args: str, stdin: bytes = b"", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VERIHOOK_")}
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "verihook.cli", *args],
        input=stdin,
        capture_output=True,
        env=clean,
        timeout=60,
        check=False,
    )


def assert_refused(done: subprocess.CompletedProcess[bytes], reason: str) -> str:
    """Exit 1, one line on stderr naming the reason, no traceback."""
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    assert stderr.count("\n") == 1 and stderr.endswith("\n"), stderr
    assert stderr.startswith("verihook: error: ")
    assert reason in stderr
    assert "Traceback" not in stderr
    return stderr


# --- encrypt / decrypt / secret ---------------------------------------------------------------


def test_encrypt_decrypt_round_trip_through_pipes() -> None:
    encrypt = subprocess.Popen(
        [sys.executable, "-m", "verihook.cli", "encrypt", "--secret", SECRET],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    decrypt_ = subprocess.Popen(
        [sys.executable, "-m", "verihook.cli", "decrypt", "--secret", SECRET],
        stdin=encrypt.stdout,
        stdout=subprocess.PIPE,
    )
    assert encrypt.stdin is not None and encrypt.stdout is not None
    encrypt.stdin.write(EVENT + b"\n")
    encrypt.stdin.close()
    encrypt.stdout.close()  # decrypt owns the read end now
    output, _ = decrypt_.communicate(timeout=60)
    assert encrypt.wait(timeout=60) == 0
    assert decrypt_.returncode == 0
    assert output == EVENT + b"\n"


def test_encrypted_body_is_a_passbase_body() -> None:
    done = verihook("encrypt", "--secret", SECRET, stdin=EVENT)
    assert done.returncode == 0
    assert done.stdout.endswith(b"\n") and done.stdout.count(b"\n") == 1
    assert decrypt(done.stdout, WebhookSecret(SECRET)) == EVENT


def test_encrypt_with_an_iv_is_reproducible() -> None:
    vector = VECTORS["valid"][0]
    done = verihook(
        "encrypt",
        "--iv",
        vector["iv_hex"],
        stdin=vector["plaintext"].encode(),
        env={"VERIHOOK_SECRET": vector["secret"]},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == vector["body"].encode() + b"\n"


@pytest.mark.parametrize("case", VECTORS["valid"][:3] + VECTORS["valid"][-1:])
def test_decrypt_vectors_with_the_secret_from_the_environment(case: dict[str, Any]) -> None:
    done = verihook("decrypt", stdin=case["body"].encode(), env={"VERIHOOK_SECRET": case["secret"]})
    assert done.returncode == 0, done.stderr
    assert done.stdout == case["plaintext"].encode() + b"\n"


def test_decrypt_refuses_an_invalid_event_unless_raw() -> None:
    case = next(c for c in VECTORS["invalid"] if c["name"] == "reviewed-pending")
    done = verihook("decrypt", "--secret", case["secret"], stdin=case["body"].encode())
    assert_refused(done, "never pending")
    assert done.stdout == b""
    raw = verihook("decrypt", "--raw", "--secret", case["secret"], stdin=case["body"].encode())
    assert raw.returncode == 0
    assert json.loads(raw.stdout)["event"] == "VERIFICATION_REVIEWED"


def test_decrypt_passes_an_unknown_event_with_a_note() -> None:
    case = VECTORS["unknown_event"]
    done = verihook("decrypt", "--secret", case["secret"], stdin=case["body"].encode())
    assert done.returncode == 0
    assert done.stdout == case["plaintext"].encode() + b"\n"
    assert b"IDENTITY_DELETED" in done.stderr


@pytest.mark.parametrize("name", ["wrong-secret", "not-base64", "empty", "bit-flipped-last-block"])
def test_decrypt_garbage_is_the_uniform_reason(name: str) -> None:
    case = next(c for c in VECTORS["invalid"] if c["name"] == name)
    done = verihook("decrypt", "--secret", case["secret"], stdin=case["body"].encode())
    assert_refused(done, "body could not be decrypted or parsed")


@pytest.mark.parametrize("command", ["encrypt", "decrypt"])
@pytest.mark.parametrize("bad", ["THIS-SECRET-IS-31-BYTES-LONG!!!", "ÉÉÉÉÉÉÉÉÉÉÉÉÉÉÉÉÉ-secret"])
def test_bad_secret_is_one_line_and_never_echoed(command: str, bad: str) -> None:
    for done in (
        verihook(command, "--secret", bad, stdin=EVENT),
        verihook(command, stdin=EVENT, env={"VERIHOOK_SECRET": bad}),
    ):
        stderr = assert_refused(done, "webhook secret must be exactly 32 bytes")
        assert bad not in stderr
        assert bad.encode() not in done.stdout


def test_encrypt_refuses_an_invalid_event_unless_raw() -> None:
    assert_refused(verihook("encrypt", "--secret", SECRET, stdin=b"[1]"), "JSON object")
    assert_refused(verihook("encrypt", "--secret", SECRET, stdin=b"nope"), "could not be")
    raw = verihook("encrypt", "--raw", "--secret", SECRET, stdin=b"nope\n")
    assert raw.returncode == 0
    assert decrypt(raw.stdout, WebhookSecret(SECRET)) == b"nope\n"


def test_secret_commands() -> None:
    made = verihook("secret")
    assert made.returncode == 0
    value = made.stdout.decode().strip()
    assert WebhookSecret(value).reveal() == value and value.isalnum() and len(value) == 32
    signing = verihook("secret", "--signing")
    assert signing.returncode == 0
    assert SigningSecret(signing.stdout.decode().strip()).reveal().startswith("whsec_")
    assert verihook("secret").stdout != made.stdout


# --- usage, help, version -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("no-such-command",),
        ("encrypt",),  # no secret
        ("encrypt", "--secret", SECRET, "--iv", "00ff"),
        ("send",),
        ("send", "http://127.0.0.1:9/", "--event", "VERIFICATION_COMPLETED"),
        ("send", "http://127.0.0.1:9/", "--event", "NOPE", "--status", "pending"),
        ("send", "http://127.0.0.1:9/", "--event", "VERIFICATION_COMPLETED", "--status", "x"),
        ("send", "http://127.0.0.1:9/", "--event", "VERIFICATION_COMPLETED", "--status",
         "pending", "--created", "yesterday"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    done = verihook(*args)
    assert done.returncode == 2, done.stderr
    assert b"Traceback" not in done.stderr
    assert b"Usage:" in done.stderr


def test_version() -> None:
    done = verihook("--version")
    assert done.returncode == 0
    assert done.stdout.decode() == f"verihook {__version__}\n"


@pytest.mark.parametrize("command", ["encrypt", "decrypt", "secret", "send"])
def test_every_command_help_has_an_example(command: str) -> None:
    done = verihook(command, "--help", env={"COLUMNS": "200"})
    assert done.returncode == 0
    assert b"Example: verihook " + command.encode() in done.stdout


def test_root_help_lists_the_commands() -> None:
    done = verihook("--help", env={"COLUMNS": "200"})
    assert done.returncode == 0
    for command in (b"encrypt", b"decrypt", b"secret", b"send"):
        assert command in done.stdout


# --- send -------------------------------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Endpoint:
    url: str
    requests: list[Recorded] = field(default_factory=list)
    answer_status: int = 200
    answer_body: bytes = b'{"ok":true}'


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    """A tiny HTTP server on 127.0.0.1 that records every request and answers as told."""
    state = Endpoint(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            state.requests.append(
                Recorded(
                    method="POST",
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length),
                )
            )
            self.send_response(state.answer_status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(state.answer_body)))
            self.end_headers()
            self.wfile.write(state.answer_body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def send(url: str, *args: str, env: dict[str, str] | None = None) -> Any:
    return verihook(
        "send", url, "--event", "VERIFICATION_REVIEWED", "--status", "approved", *args, env=env
    )


def test_send_encrypted_and_signed(endpoint: Endpoint) -> None:
    before = int(time.time())
    done = send(endpoint.url, "--key", KEY, "--secret", SECRET, "--signing-secret", SIGNING)
    after = int(time.time())
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == 'HTTP 200 OK\n{"ok":true}\n'
    [request] = endpoint.requests
    assert request.path == "/webhooks"
    headers = request.headers
    assert headers["content-type"] == "text/plain"
    assert headers["user-agent"] == f"verihook/{__version__}"
    assert headers["webhook-id"].startswith("msg_")
    assert headers["webhook-attempt"] == "1"
    assert before <= int(headers["webhook-timestamp"]) <= after
    verify(
        headers["webhook-id"],
        headers["webhook-timestamp"],
        headers["webhook-signature"],
        request.body,
        [SigningSecret(SIGNING)],
        now=after,
    )
    event = parse_event(decrypt(request.body, WebhookSecret(SECRET)))
    assert isinstance(event, WebhookEvent)
    assert event.event is EventType.VERIFICATION_REVIEWED
    assert event.status is Status.APPROVED
    assert event.key == KEY
    assert before <= event.created == event.updated == event.processed <= after
    options = DecodeOptions(WebhookSecret(SECRET), [SigningSecret(SIGNING)])
    assert decode_request(headers, request.body, options, after) == event


def test_send_plain_json_with_given_timestamps(endpoint: Endpoint) -> None:
    done = send(endpoint.url, "--created", "10", "--updated", "20", "--processed", "30")
    assert done.returncode == 0, done.stderr
    [request] = endpoint.requests
    assert request.headers["content-type"] == "application/json"
    assert "webhook-signature" not in request.headers
    body = json.loads(request.body)
    assert list(body) == ["event", "key", "status", "created", "updated", "processed"]
    assert (body["created"], body["updated"], body["processed"]) == (10, 20, 30)
    assert str(body["key"]).count("-") == 4


def test_send_secrets_from_the_environment(endpoint: Endpoint) -> None:
    done = send(endpoint.url, env={"VERIHOOK_SECRET": SECRET, "VERIHOOK_SIGNING_SECRET": SIGNING})
    assert done.returncode == 0, done.stderr
    [request] = endpoint.requests
    assert request.headers["content-type"] == "text/plain"
    assert request.headers["webhook-signature"].startswith("v1,")
    assert parse_event(decrypt(request.body, WebhookSecret(SECRET)))


def test_send_non_2xx_exits_1_and_prints_the_answer(endpoint: Endpoint) -> None:
    endpoint.answer_status = 400
    endpoint.answer_body = b'{"error":"no"}'
    done = send(endpoint.url)
    assert_refused(done, "answered 400")
    assert done.stdout.decode() == 'HTTP 400 Bad Request\n{"error":"no"}\n'


def test_send_to_a_closed_port_is_one_line() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = send(f"http://user:pw@127.0.0.1:{port}/hook?token=abc")
    stderr = assert_refused(done, f"could not reach http://127.0.0.1:{port}/hook")
    assert "pw" not in stderr and "abc" not in stderr


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("--secret", "short"), "webhook secret must be exactly 32 bytes"),
        (("--signing-secret", "whsec_tooshort"), "signing secret"),
        (("--key", "not-a-uuid"), "'key'"),
        (("--signing-secret", "sk_live_abcdefghijklmnopqrstuvwxyz"), "whsec_"),
    ],
)
def test_send_refuses_bad_input_before_connecting(
    endpoint: Endpoint, args: tuple[str, ...], reason: str
) -> None:
    stderr = assert_refused(send(endpoint.url, *args), reason)
    assert args[1] not in stderr or args[0] == "--key"
    assert endpoint.requests == []


def test_send_reviewed_pending_is_refused(endpoint: Endpoint) -> None:
    done = verihook("send", endpoint.url, "--event", "VERIFICATION_REVIEWED", "--status", "pending")
    assert_refused(done, "never pending")
    assert endpoint.requests == []


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "not a url", "http://"])
def test_send_refuses_a_bad_url(url: str) -> None:
    assert_refused(send(url), "URL")
