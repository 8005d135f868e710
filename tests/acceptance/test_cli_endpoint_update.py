"""``verihook endpoints update`` as an operator runs it: a real process on a real database."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_cli_provider import verihook  # the same real-process runner

from verihook.store import open_database

SECRET = "YOUR_WEBHOOK_SECRET_32_BYTES_KEY"
MASK = "********"


def ok(url: str, *args: str, env: dict[str, str] | None = None) -> Any:
    """Run with --json, expect exit 0, return the parsed output."""
    done = verihook(url, *args, "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def refused(url: str, *args: str, reason: str) -> None:
    done = verihook(url, *args)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stderr.startswith("verihook: error: ") and done.stderr.count("\n") == 1
    assert reason in done.stderr, done.stderr
    assert done.stdout == ""


def endpoint_rows(url: str) -> list[str]:
    with open_database(url).connection() as conn:
        return [repr(tuple(r)) for r in conn.execute("SELECT * FROM verihook_endpoints")]


def add(url: str) -> dict[str, Any]:
    endpoint: dict[str, Any] = ok(
        url, "endpoints", "add", "https://hooks.example.com/v1", "--secret", SECRET
    )
    return endpoint


def test_update_changes_every_setting_and_shows_no_secret(database_url: str) -> None:
    endpoint = add(database_url)
    updated = ok(
        database_url,
        "endpoints",
        "update",
        endpoint["id"],
        "--url",
        "https://hooks.example.com/v2",
        "--events",
        "verification_reviewed",
        "--retry-schedule",
        "0,5s,1m",
        "--max-in-flight",
        "3",
        "--rate-limit",
        "2.5",
    )
    assert {k: updated[k] for k in ("url", "events", "retry_schedule", "max_in_flight")} == {
        "url": "https://hooks.example.com/v2",
        "events": ["VERIFICATION_REVIEWED"],
        "retry_schedule": [0.0, 5.0, 60.0],
        "max_in_flight": 3,
    }
    assert updated["rate_limit"] == 2.5
    assert (updated["id"], updated["created_at"]) == (endpoint["id"], endpoint["created_at"])
    assert (updated["encryption_secret"], updated["signing_secret"]) == (MASK, MASK)
    assert ok(database_url, "endpoints", "show", endpoint["id"]) == updated

    # Back to the defaults; what is not named stays.
    cleared = ok(
        database_url,
        "endpoints",
        "update",
        endpoint["id"],
        "--events",
        "all",
        "--retry-schedule",
        "default",
        "--rate-limit",
        "none",
    )
    assert cleared["events"] == ["VERIFICATION_COMPLETED", "VERIFICATION_REVIEWED"]
    assert (cleared["retry_schedule"], cleared["rate_limit"]) == (None, None)
    assert (cleared["url"], cleared["max_in_flight"]) == ("https://hooks.example.com/v2", 3)

    # The human form is the 'show' form, secrets masked.
    human = verihook(database_url, "endpoints", "update", endpoint["id"], "--max-in-flight", "9")
    assert human.returncode == 0, human.stderr
    lines = human.stdout.splitlines()
    assert lines[0].split() == ["id:", endpoint["id"]]
    assert "max in flight:     9" in lines
    assert SECRET not in human.stdout and endpoint["signing_secret"] not in human.stdout
    assert MASK in human.stdout
    # The secrets are the ones made at creation.
    with open_database(database_url).connection() as conn:
        secrets = conn.one(
            "SELECT encryption_secret, signing_secret FROM verihook_endpoints WHERE id = ?",
            (endpoint["id"],),
        )
    assert secrets is not None and tuple(secrets) == (SECRET, endpoint["signing_secret"])


def test_a_private_address_needs_the_allow_flag(database_url: str) -> None:
    endpoint = add(database_url)
    refused(
        database_url,
        "endpoints",
        "update",
        endpoint["id"],
        "--url",
        "http://127.0.0.1:9/in",
        reason="https",
    )
    allowed = ok(
        database_url,
        "endpoints",
        "update",
        endpoint["id"],
        "--url",
        "http://127.0.0.1:9/in",
        "--allow-private-networks",
    )
    assert allowed["url"] == "http://127.0.0.1:9/in"
    by_env = ok(
        database_url,
        "endpoints",
        "update",
        endpoint["id"],
        "--url",
        "http://10.0.0.1/in",
        env={"VERIHOOK_ALLOW_PRIVATE_NETWORKS": "1"},
    )
    assert by_env["url"] == "http://10.0.0.1/in"


@pytest.mark.slow
def test_refused_updates_exit_1_and_leave_the_row_as_it_was(database_url: str) -> None:
    endpoint = add(database_url)
    ep = endpoint["id"]
    before = endpoint_rows(database_url)

    refused(database_url, "endpoints", "update", ep, "--url", "ftp://x.test/", reason="https")
    refused(
        database_url,
        "endpoints",
        "update",
        ep,
        "--url",
        "https://10.0.0.1/in",
        reason="not a public address",
    )
    refused(
        database_url,
        "endpoints",
        "update",
        ep,
        "--events",
        "VERIFICATION_NOPE",
        reason="unknown event type",
    )
    refused(
        database_url, "endpoints", "update", ep, "--max-in-flight", "0", reason="between 1 and 1000"
    )
    refused(database_url, "endpoints", "update", ep, "--rate-limit", "0", reason="positive")
    refused(database_url, "endpoints", "update", ep, "--retry-schedule", "soon", reason="duration")
    refused(database_url, "endpoints", "update", ep, reason="nothing to change")
    refused(
        database_url,
        "endpoints",
        "update",
        "ep_missing",
        "--url",
        "https://x.test/",
        reason="no endpoint",
    )
    # A good value next to a bad one is refused with it.
    refused(
        database_url,
        "endpoints",
        "update",
        ep,
        "--url",
        "https://hooks.example.com/v3",
        "--max-in-flight",
        "0",
        reason="between 1 and 1000",
    )
    assert endpoint_rows(database_url) == before


@pytest.mark.parametrize(
    "args",
    [
        ["--max-in-flight", "many"],
        ["--rate-limit", "fast"],
        ["--url"],
        [],  # no endpoint id
    ],
)
def test_usage_errors_exit_2_and_write_nothing(sqlite_url: str, args: list[str]) -> None:
    endpoint = add(sqlite_url)
    before = endpoint_rows(sqlite_url)
    done = verihook(sqlite_url, "endpoints", "update", *([endpoint["id"]] if args else []), *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert endpoint_rows(sqlite_url) == before
