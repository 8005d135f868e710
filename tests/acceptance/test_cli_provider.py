"""The provider commands as a user runs them: a real ``verihook`` process on a real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from verihook.store import open_database

KEY = "0b5e2a3c-9f1d-4e8a-b7c6-1d2e3f4a5b6c"
SECRET = "YOUR_WEBHOOK_SECRET_32_BYTES_KEY"


def verihook(
    url: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VERIHOOK_")}
    clean["VERIHOOK_DATABASE_URL"] = url
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "verihook.cli", *args],
        capture_output=True,
        text=True,
        env=clean,
        timeout=60,
        check=False,
    )


def ok(url: str, *args: str) -> Any:
    """Run with --json, expect exit 0, return the parsed output."""
    done = verihook(url, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def refused(url: str, *args: str, reason: str) -> str:
    done = verihook(url, *args)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stderr.startswith("verihook: error: ") and done.stderr.count("\n") == 1
    assert reason in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr


def counts(url: str) -> dict[str, int]:
    tables = [
        "verihook_verifications",
        "verihook_endpoints",
        "verihook_events",
        "verihook_deliveries",
    ]
    with open_database(url).connection() as conn:
        return {t: int(conn.scalar(f"SELECT COUNT(*) FROM {t}")) for t in tables}


@pytest.mark.slow
def test_endpoint_and_verification_lifecycle(database_url: str) -> None:
    endpoint = ok(
        database_url,
        "endpoints",
        "add",
        "http://127.0.0.1:9/hook",
        "--secret",
        SECRET,
        "--allow-private-networks",
    )
    assert endpoint["encryption_secret"] == SECRET
    assert endpoint["signing_secret"].startswith("whsec_")
    assert endpoint["events"] == ["VERIFICATION_COMPLETED", "VERIFICATION_REVIEWED"]
    plain = ok(
        database_url,
        "endpoints",
        "add",
        "http://127.0.0.1:9/plain",
        "--no-encryption",
        "--events",
        "VERIFICATION_REVIEWED",
        "--allow-private-networks",
    )
    assert (plain["encrypted"], plain["encryption_secret"]) == (False, None)

    listed = ok(database_url, "endpoints", "list")
    assert [e["id"] for e in listed] == [endpoint["id"], plain["id"]]
    # Secrets were shown once, at creation; never again.
    assert {e["signing_secret"] for e in listed} == {"********"}
    shown = ok(database_url, "endpoints", "show", endpoint["id"])
    assert (shown["encryption_secret"], shown["signing_secret"]) == ("********", "********")
    human = verihook(database_url, "endpoints", "show", endpoint["id"])
    assert human.returncode == 0 and SECRET not in human.stdout
    assert endpoint["signing_secret"] not in human.stdout

    created = ok(database_url, "verifications", "create", KEY)
    assert (created["key"], created["stage"], created["status"]) == (KEY, "created", "pending")
    completed = ok(database_url, "verifications", "complete", KEY, "--score", "0.5")
    assert (completed["stage"], completed["status"], completed["score"]) == (
        "completed",
        "pending",
        0.5,
    )
    reviewed = ok(database_url, "verifications", "review", KEY, "approve")
    assert (reviewed["stage"], reviewed["status"]) == ("reviewed", "approved")

    detail = ok(database_url, "verifications", "show", KEY)
    assert [(e["event"], e["payload"]["status"], e["deliveries"]) for e in detail["events"]] == [
        ("VERIFICATION_COMPLETED", "pending", {"pending": 1}),
        ("VERIFICATION_REVIEWED", "approved", {"pending": 2}),
    ]
    assert [v["key"] for v in ok(database_url, "verifications", "list")] == [KEY]
    assert counts(database_url) == {
        "verihook_verifications": 1,
        "verihook_endpoints": 2,
        "verihook_events": 2,
        "verihook_deliveries": 3,
    }


def test_thresholds_decide_at_once(database_url: str) -> None:
    assert ok(database_url, "verifications", "thresholds") == {"approve": None, "decline": None}
    assert ok(
        database_url, "verifications", "thresholds", "--approve", "0.9", "--decline", "0.2"
    ) == {
        "approve": 0.9,
        "decline": 0.2,
    }
    key = ok(database_url, "verifications", "create")["key"]
    done = ok(database_url, "verifications", "complete", key, "--score", "0.1")
    assert (done["stage"], done["status"]) == ("reviewed", "declined")
    assert ok(database_url, "verifications", "thresholds", "--off") == {
        "approve": None,
        "decline": None,
    }
    human = verihook(database_url, "verifications", "thresholds")
    assert human.returncode == 0 and "off" in human.stdout


def test_rotate_secret_prints_the_new_signing_secret_once(database_url: str) -> None:
    endpoint = ok(
        database_url, "endpoints", "add", "http://127.0.0.1:9/hook", "--allow-private-networks"
    )
    rotated = ok(database_url, "endpoints", "rotate-secret", endpoint["id"], "--overlap", "1h")
    assert rotated["signing_secret"].startswith("whsec_")
    assert rotated["signing_secret"] != endpoint["signing_secret"]
    assert rotated["encryption_secret"] == "********"  # unchanged, so not shown again
    assert rotated["previous_signing_secret_until"] == pytest.approx(rotated["updated_at"] + 3600)
    both = ok(
        database_url,
        "endpoints",
        "rotate-secret",
        endpoint["id"],
        "--encryption",
        "--secret",
        SECRET,
    )
    assert both["encryption_secret"] == SECRET
    assert ok(database_url, "endpoints", "disable", endpoint["id"])["enabled"] is False
    assert ok(database_url, "endpoints", "enable", endpoint["id"])["enabled"] is True


@pytest.mark.slow
def test_refused_inputs_exit_1_with_one_line_and_write_nothing(database_url: str) -> None:
    ok(database_url, "verifications", "create", KEY)
    ok(database_url, "endpoints", "add", "http://127.0.0.1:9/hook", "--allow-private-networks")
    before = counts(database_url)

    refused(database_url, "endpoints", "add", "http://example.com/hook", reason="https")
    refused(
        database_url, "endpoints", "add", "https://127.0.0.1/hook", reason="not a public address"
    )
    refused(
        database_url, "endpoints", "add", "https://169.254.169.254/", reason="not a public address"
    )
    refused(
        database_url,
        "endpoints",
        "add",
        "https://x.test/",
        "--events",
        "VERIFICATION_NOPE",
        reason="unknown event type",
    )
    stderr = refused(
        database_url,
        "endpoints",
        "add",
        "https://x.test/",
        "--secret",
        "my-secret-too-short",
        reason="32 bytes",
    )
    assert "my-secret-too-short" not in stderr
    refused(
        database_url,
        "endpoints",
        "add",
        "https://x.test/",
        "--secret",
        SECRET,
        "--no-encryption",
        reason="--no-encryption",
    )
    refused(database_url, "endpoints", "show", "ep_missing", reason="no endpoint")
    refused(database_url, "endpoints", "rotate-secret", "ep_missing", reason="no endpoint")
    refused(
        database_url,
        "endpoints",
        "rotate-secret",
        "ep_missing",
        "--overlap",
        "soon",
        reason="duration",
    )
    refused(
        database_url, "verifications", "complete", KEY, "--score", "1.5", reason="between 0 and 1"
    )
    refused(
        database_url, "verifications", "complete", KEY, "--score", "nan", reason="between 0 and 1"
    )
    refused(database_url, "verifications", "complete", "not-a-key", "--score", "0.5", reason="UUID")
    refused(database_url, "verifications", "review", KEY, "approve", reason="not completed")
    unknown = "ffffffff-ffff-4fff-bfff-ffffffffffff"
    refused(database_url, "verifications", "review", unknown, "approve", reason="no verification")
    refused(database_url, "verifications", "create", KEY, reason="already exists")
    refused(
        database_url,
        "verifications",
        "thresholds",
        "--approve",
        "0.1",
        "--decline",
        "0.5",
        reason="greater",
    )
    assert counts(database_url) == before

    ok(database_url, "verifications", "complete", KEY, "--score", "0.5")
    ok(database_url, "verifications", "review", KEY, "decline")
    after = counts(database_url)
    refused(database_url, "verifications", "review", KEY, "approve", reason="already reviewed")
    refused(
        database_url, "verifications", "complete", KEY, "--score", "0.5", reason="already reviewed"
    )
    assert counts(database_url) == after


def test_usage_errors_exit_2(sqlite_url: str) -> None:
    done = verihook(sqlite_url, "verifications", "review", KEY, "maybe")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


def test_db_upgrade_then_status(sqlite_url: str) -> None:
    first = ok(sqlite_url, "db", "upgrade")
    assert {"domain": "provider", "version": 1, "name": "initial"} in first["applied"]
    assert ok(sqlite_url, "db", "upgrade")["applied"] == []
    assert ok(sqlite_url, "db", "status")["pending"] == []
    refused("mysql://nowhere/db", "db", "upgrade", reason="sqlite:///")
