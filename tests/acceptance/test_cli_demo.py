"""``verihook demo``: both ends, end to end, as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from verihook.store import open_database


def test_demo_delivers_every_event_and_both_ends_agree(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "verihook.cli", "demo", "--keep", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Both ends agree" in result.stdout
    assert "DISAGREE" not in result.stdout
    # Two auto-reviewed, one reviewed by hand, one pending: 2 + 2 + 2 + 1 events, all in.
    with open_database(f"sqlite:///{tmp_path / 'provider.db'}").connection() as conn:
        states = conn.execute("SELECT state, COUNT(*) FROM verihook_deliveries GROUP BY state")
    assert states == [("succeeded", 7)]
    with open_database(f"sqlite:///{tmp_path / 'receiver.db'}").connection() as conn:
        tables = [
            name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        events_table = next(t for t in tables if "event" in t)
        assert conn.scalar(f"SELECT COUNT(*) FROM {events_table}") == 7
