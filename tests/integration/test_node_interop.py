"""Node.js, doing what the Passbase guide does, reads what we encrypt and writes what we read."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from verihook.exceptions import DecryptionError
from verihook.format import (
    EventType,
    Status,
    WebhookEvent,
    WebhookSecret,
    decrypt,
    encrypt,
    parse_event,
)

NODE = shutil.which("node")
SCRIPTS = Path(__file__).parent / "node"

pytestmark = [
    pytest.mark.node,
    pytest.mark.skipif(NODE is None, reason="node is not on PATH: Node.js interop not checked"),
]

SECRETS = [
    "YOUR_WEBHOOK_SECRET_32_BYTES_KEY",
    "éééééééééé€€€€",  # 14 characters, 32 UTF-8 bytes
    "🔑🔑🔑🔑" + "k" * 16,  # four 4-byte characters
    WebhookSecret.generate().reveal(),
]
EXTRAS = ["", "ü", "日本語", "🙂 emoji", 'quote " and \\ backslash', "\u2028 line sep", "a" * 40]


def run_node(script: str, payload: dict[str, Any]) -> Any:
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(SCRIPTS / script)],
        input=json.dumps(payload).encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


def sample_events(count: int, seed: int) -> list[WebhookEvent]:
    rng = random.Random(seed)
    made = []
    for index in range(count):
        event_type = rng.choice(list(EventType))
        statuses = [s for s in Status if not (event_type.rank == 2 and s is Status.PENDING)]
        # Extras of growing size walk the plaintext through every length mod 16.
        extra = {"note": rng.choice(EXTRAS) + "x" * index} if index % 3 else {}
        made.append(
            WebhookEvent(
                event=event_type,
                key=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                status=rng.choice(statuses),
                created=rng.randrange(2**31),
                updated=rng.randrange(2**31),
                processed=rng.randrange(2**31),
                extra=extra,
            )
        )
    return made


@pytest.mark.parametrize("secret_text", SECRETS, ids=["ascii", "2-3-byte", "4-byte", "generated"])
def test_node_decrypts_what_we_encrypt(secret_text: str) -> None:
    secret = WebhookSecret(secret_text)
    events = sample_events(60, seed=len(secret_text))
    bodies = [encrypt(event, secret).decode("ascii") for event in events]
    results = run_node("decrypt.js", {"secret": secret_text, "bodies": bodies})
    assert [r.get("error") for r in results] == [None] * len(events)
    assert [r["plaintext"].encode("utf-8") for r in results] == [e.to_json() for e in events]
    assert [r["event"] for r in results] == [e.event.value for e in events]


@pytest.mark.parametrize("secret_text", SECRETS, ids=["ascii", "2-3-byte", "4-byte", "generated"])
def test_we_decrypt_what_node_encrypts(secret_text: str) -> None:
    secret = WebhookSecret(secret_text)
    events = sample_events(60, seed=7 + len(secret_text))
    plaintexts = [event.to_json().decode("utf-8") for event in events]
    bodies = run_node("encrypt.js", {"secret": secret_text, "plaintexts": plaintexts})
    assert len(bodies) == len(events)
    assert [decrypt(body, secret) for body in bodies] == [e.to_json() for e in events]
    assert [parse_event(decrypt(body, secret)) for body in bodies] == events


def test_node_refuses_what_we_refuse() -> None:
    # A wrong key: our uniform DecryptionError, Node's "bad decrypt" (or garbage JSON).
    secret_text = SECRETS[0]
    event = sample_events(1, seed=1)[0]
    # A fixed IV keeps it deterministic (a wrong key passes the padding check 1 time in ~256).
    body = encrypt(event, WebhookSecret("W" * 32), iv=bytes(16)).decode("ascii")
    [result] = run_node("decrypt.js", {"secret": secret_text, "bodies": [body]})
    assert "error" in result
    with pytest.raises(DecryptionError):
        decrypt(body, WebhookSecret(secret_text))
