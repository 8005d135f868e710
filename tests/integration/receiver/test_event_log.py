"""One log line per event received, after its commit: to a sink, or as INFO records."""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest
from receiver_factories import KEY, SECRET, encrypted, make_event

from verihook import Receiver
from verihook.format import EventType, Status, encode_request


async def test_the_sink_gets_one_line_per_event_stored_or_duplicate(database_url: str) -> None:
    lines: list[str] = []
    receiver = Receiver(SECRET, database_url=database_url, event_log=lines.extend)
    try:
        first = encrypted(make_event(), "msg_1")
        second = encrypted(make_event(EventType.VERIFICATION_REVIEWED, Status.APPROVED, 200))
        # Three requests in one turn of the loop share a commit: still a line each.
        replies = await asyncio.gather(*(receiver.receive(*r) for r in (first, second, first)))
        assert [r.status for r in replies] == [200, 200, 200]
        seqs = [e.seq for e in reversed(receiver.recent_events())]
        assert sorted(lines) == sorted(
            [
                f"stored VERIFICATION_COMPLETED key={KEY} status=pending seq={seqs[0]}",
                f"stored VERIFICATION_REVIEWED key={KEY} status=approved seq={seqs[1]}",
                f"duplicate VERIFICATION_COMPLETED key={KEY} status=pending seq={seqs[0]}",
            ]
        )
        # A refused request is no event: no line.
        assert (await receiver.receive({"content-type": "text/plain"}, b"garbage")).status == 400
        assert receiver.receive_sync(*first).status == 200
        assert len(lines) == 4 and lines[-1].startswith("duplicate VERIFICATION_COMPLETED")
    finally:
        receiver.stop()


async def test_an_unknown_events_name_cannot_break_the_line(database_url: str) -> None:
    lines: list[str] = []
    receiver = Receiver(SECRET, database_url=database_url, event_log=lines.extend)
    try:
        body = orjson.dumps({"event": "FORGED\nstored VERIFICATION_REVIEWED", "key": "k\r\n"})
        assert (await receiver.receive(*encode_request(body, secret=SECRET))).status == 200
        [line] = lines
        assert "\n" not in line and "\r" not in line
        assert line.startswith("stored FORGED\\nstored VERIFICATION_REVIEWED key=k\\r\\n ")
    finally:
        receiver.stop()


async def test_without_a_sink_each_event_is_an_info_record(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = Receiver(SECRET, database_url=database_url)
    try:
        with caplog.at_level(logging.INFO, logger="verihook.receiver"):
            events = [make_event(), make_event(EventType.VERIFICATION_REVIEWED, Status.APPROVED)]
            await asyncio.gather(*(receiver.receive(*encrypted(e)) for e in events))
        messages = [r.getMessage() for r in caplog.records if r.name == "verihook.receiver"]
        assert sorted(m.split(" seq=")[0] for m in messages) == [
            f"stored VERIFICATION_COMPLETED key={KEY} status=pending",
            f"stored VERIFICATION_REVIEWED key={KEY} status=approved",
        ]
    finally:
        receiver.stop()
