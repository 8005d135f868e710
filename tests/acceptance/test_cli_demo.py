"""``verihook demo``: both ends, end to end, as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from verihook.store import open_database


def _verihook(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "verihook.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_demo_delivers_every_event_and_both_ends_agree(tmp_path: Path) -> None:
    result = _verihook("demo", "--keep", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "Both ends agree" in result.stdout
    assert "DISAGREE" not in result.stdout
    # Two auto-reviewed, one reviewed by hand, one pending: 2 + 2 + 2 + 1 events, all in.
    with open_database(f"sqlite:///{tmp_path / 'provider.db'}").connection() as conn:
        states = conn.execute("SELECT state, COUNT(*) FROM verihook_deliveries GROUP BY state")
    assert states == [("succeeded", 7)]
    with open_database(f"sqlite:///{tmp_path / 'receiver.db'}").connection() as conn:
        assert conn.scalar("SELECT COUNT(*) FROM verihook_inbox_events") == 7

    # Piped (no terminal), the table still shows every column: rich's default of 80 columns
    # once let the two id columns squeeze the others to nothing.
    listing = _verihook("deliveries", "list", "--db", f"sqlite:///{tmp_path / 'provider.db'}")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.count("succeeded") == 7
    assert listing.stdout.count("VERIFICATION_REVIEWED") == 3
