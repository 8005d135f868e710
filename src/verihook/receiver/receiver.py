"""``verihook.Receiver``: decode, store durably, answer; run handlers afterwards from the inbox.

Usage::

    from verihook import Receiver

    receiver = Receiver(
        secret="YOUR_WEBHOOK_SECRET_32_BYTES_KEY",   # or None for plain JSON
        signing_secrets=["whsec_..."],              # optional; several while rotating
        database_url="sqlite:///verihook.db",        # or postgresql://...
    )

    @receiver.on("VERIFICATION_REVIEWED")
    def reviewed(event):                             # a WebhookEvent; sync or async
        ...

    @receiver.on_change
    async def changed(old, new):                     # VerificationState | None, VerificationState
        ...

    app = receiver.asgi_app()                        # uvicorn module:app, or mount it

A framework adapter calls ``await receiver.receive(headers, body)`` (or ``receive_sync`` from
a WSGI view) and turns the ``Reply`` into its own response. The answer is 200 only once the
event is committed; handlers run later in the dispatcher, started by ``start()`` (or
``async with receiver:``, or the ASGI lifespan) and stopped by ``stop()``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from verihook.exceptions import InvalidInput, StoreUnavailable, WebhookRejected
from verihook.format import (
    DecodeOptions,
    EventType,
    SigningSecret,
    UnknownEvent,
    WebhookEvent,
    WebhookSecret,
    decode_request,
)
from verihook.receiver import inbox
from verihook.receiver.dispatcher import Dispatcher
from verihook.receiver.handlers import Handlers
from verihook.receiver.reconcile import VerificationState
from verihook.receiver.retry import HandlerRetry
from verihook.store import DEFAULT_DATABASE_URL, Connection, GroupCommitter, migrate, open_database
from verihook.store.database import SqliteDatabase
from verihook.store.inbox_schema import INBOX_MIGRATIONS
from verihook.store.wal_writer import SqliteWalWriter

if TYPE_CHECKING:
    from verihook.receiver.app import ReceiverApp

__all__ = ["EventLog", "Receiver", "Reply"]

log = logging.getLogger("verihook.receiver")

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

_MAX_WEBHOOK_ID = 256

# Called after each commit with one line per event received (stored or duplicate).
EventLog = Callable[[list[str]], None]


@dataclass(frozen=True, slots=True)
class Reply:
    """A framework-neutral HTTP answer: status, a short JSON body, its content type.

    ``seq`` is the inbox number of the event a 200 from ``receive_sync`` stored (or, for a
    duplicate, the original's), so a caller can follow its handler runs; None otherwise.
    The async ``receive`` answers with shared constants that the ASGI app sends pre-encoded
    (a fresh Reply per request costs it ~3 us), so its replies carry no ``seq``. It is not
    part of the answer: ``Reply(200, b"...", seq=7) == STORED``.
    """

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    seq: int | None = field(default=None, compare=False)

    @classmethod
    def error(cls, status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
        import orjson

        return cls(status, orjson.dumps({"error": message}), headers=headers)


STORED = Reply(200, b'{"status":"stored"}')
DUPLICATE = Reply(200, b'{"status":"duplicate"}')
# The sender honours Retry-After on 503: come back soon, the store may be back.
UNAVAILABLE = Reply.error(503, "store unavailable, retry later", (("retry-after", "5"),))
BAD_WEBHOOK_ID = Reply.error(400, "malformed webhook-id header")


class Receiver:
    def __init__(
        self,
        secret: str | WebhookSecret | None = None,
        *,
        signing_secrets: str | SigningSecret | Iterable[str | SigningSecret] = (),
        database_url: str = DEFAULT_DATABASE_URL,
        allow_unencrypted: bool | None = None,
        clock: Callable[[], float] = time.time,
        retry: HandlerRetry | None = None,
        handler_timeout: float = 30.0,
        handlers: Handlers | None = None,
        event_log: EventLog | None = None,
    ) -> None:
        """``allow_unencrypted`` defaults to True without a secret, False with one.

        ``event_log`` receives one line per event received, a list per commit, on the thread
        that awaited it (the event loop's, or ``receive_sync``'s caller's). By default each
        line is an INFO record of the ``verihook.receiver`` logger; a sink that writes the
        lines itself saves building a LogRecord per request (the CLI does this).
        """
        if isinstance(secret, str):
            secret = WebhookSecret(secret)
        if isinstance(signing_secrets, str | SigningSecret):
            signing_secrets = [signing_secrets]
        signing = tuple(
            s if isinstance(s, SigningSecret) else SigningSecret(s) for s in signing_secrets
        )
        self.options = DecodeOptions(
            secret=secret, signing_secrets=signing, allow_unencrypted=allow_unencrypted
        )
        self.database = open_database(database_url)
        self.handlers = handlers if handlers is not None else Handlers()
        self._clock = clock
        self._retry = retry if retry is not None else HandlerRetry()
        self._handler_timeout = handler_timeout
        self._committer: GroupCommitter | None = None
        self._dispatcher: Dispatcher | None = None
        self._lock = threading.Lock()
        self._batches: dict[asyncio.AbstractEventLoop, list[tuple[inbox.Incoming, Any]]] = {}
        self._event_log = event_log

    # -- handler registration ------------------------------------------------------------

    def on(self, event_type: EventType | str, *, name: str | None = None) -> Callable[[F], F]:
        """``@receiver.on("VERIFICATION_REVIEWED")``: called with each new WebhookEvent."""
        return self.handlers.on(event_type, name=name)

    def on_change(self, function: F | None = None, *, name: str | None = None) -> Any:
        """``@receiver.on_change``: called with (old, new) when the reconciled state moves."""
        return self.handlers.on_change(function, name=name)

    def on_unknown(self, function: F | None = None, *, name: str | None = None) -> Any:
        """``@receiver.on_unknown``: called with each new UnknownEvent."""
        return self.handlers.on_unknown(function, name=name)

    # -- lifecycle -----------------------------------------------------------------------

    def open(self) -> None:
        """Apply the inbox migrations and start the writer. Idempotent; raises StoreUnavailable."""
        with self._lock:
            if self._committer is None:
                migrate(self.database, INBOX_MIGRATIONS)
                name = "verihook-inbox-writer"
                if isinstance(self.database, SqliteDatabase):
                    # The event loop writes its batches itself; see SqliteWalWriter.
                    self._committer = SqliteWalWriter(self.database, name=name)
                else:
                    self._committer = GroupCommitter(self.database, name=name)

    def start(self) -> None:
        """Open the store and start running handlers in the background."""
        self.open()
        with self._lock:
            if self._dispatcher is None:
                assert self._committer is not None
                self._dispatcher = Dispatcher(
                    self._committer,
                    self.handlers,
                    retry=self._retry,
                    clock=self._clock,
                    handler_timeout=self._handler_timeout,
                )
                self._dispatcher.start()

    def stop(self) -> None:
        """Stop the handlers, then commit every write already submitted and close."""
        with self._lock:
            dispatcher, self._dispatcher = self._dispatcher, None
            committer, self._committer = self._committer, None
        if dispatcher is not None:
            dispatcher.stop()
        if committer is not None:
            committer.close()

    def __enter__(self) -> Receiver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Receiver:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    # -- receiving -----------------------------------------------------------------------

    async def receive(self, headers: Mapping[str, str], body: bytes) -> Reply:
        """Decode, store, answer. Never raises: every failure is a Reply (4xx, or 503)."""
        decoded = self._decode(headers, body)
        if isinstance(decoded, Reply):
            return decoded
        try:
            committer = self._committer
            if committer is None:
                await asyncio.to_thread(self.open)
                committer = self._committer
                assert committer is not None
            stored = await self._enqueue(committer, self._incoming(*decoded))
        except Exception as exc:
            return self._store_failed(exc)
        return self._stored(decoded[0], stored)

    def _enqueue(self, committer: GroupCommitter, item: inbox.Incoming) -> asyncio.Future[Any]:
        # Requests decoded in the same turn of the event loop go to the writer as one job:
        # a few multi-row statements for all of them, and one wake-up of this loop after
        # the commit instead of one per request.
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        batch = self._batches.get(loop)
        if batch is None:
            batch = self._batches[loop] = []
            loop.call_soon(self._flush, loop, committer)
        batch.append((item, future))
        return future

    def _flush(self, loop: asyncio.AbstractEventLoop, committer: GroupCommitter) -> None:
        batch = self._batches.pop(loop, [])
        if not batch:
            return
        items = [item for item, _ in batch]
        futures = [future for _, future in batch]
        job = partial(_store_batch, items=items, now=self._clock())
        if isinstance(committer, SqliteWalWriter):
            written = committer.submit_inline(job)
        else:
            written = committer.submit(job)

        def resolve(done: Future[list[inbox.Stored | Exception]]) -> None:
            error = done.exception()
            results: list[Any] = [error] * len(futures) if error else done.result()
            for future, result in zip(futures, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
            if not error:
                self._log_events(items, results)

        def on_commit(done: Future[list[inbox.Stored | Exception]]) -> None:
            try:
                loop.call_soon_threadsafe(resolve, done)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                pass

        written.add_done_callback(on_commit)

    def receive_sync(self, headers: Mapping[str, str], body: bytes) -> Reply:
        """``receive`` for WSGI frameworks: blocks this thread until the commit."""
        decoded = self._decode(headers, body)
        if isinstance(decoded, Reply):
            return decoded
        try:
            self.open()
            assert self._committer is not None
            job = partial(_store_batch, items=[self._incoming(*decoded)], now=self._clock())
            [stored] = self._committer.call(job)
            if isinstance(stored, Exception):
                raise stored
        except Exception as exc:
            return self._store_failed(exc)
        self._log_events(job.keywords["items"], [stored])
        return self._stored(decoded[0], stored, numbered=True)

    def _decode(
        self, headers: Mapping[str, str], body: bytes
    ) -> Reply | tuple[WebhookEvent | UnknownEvent, str | None]:
        try:
            event = decode_request(headers, body, self.options, self._clock())
        except WebhookRejected as exc:
            return Reply.error(exc.status_code, exc.message)
        webhook_id = _header(headers, "webhook-id")
        if webhook_id is not None and (len(webhook_id) > _MAX_WEBHOOK_ID or "\x00" in webhook_id):
            return BAD_WEBHOOK_ID
        return event, webhook_id or None

    def _incoming(
        self, event: WebhookEvent | UnknownEvent, webhook_id: str | None
    ) -> inbox.Incoming:
        return inbox.Incoming(
            event,
            webhook_id,
            self.handlers.for_event(event),
            self.handlers.change_names,
        )

    def _log_events(
        self, items: Sequence[inbox.Incoming], results: Sequence[inbox.Stored | Exception]
    ) -> None:
        # One line per event, made once per commit: a LogRecord per request cost ~10 us of
        # the event loop's time (a tenth of a durable request) when the CLI logged that way.
        sink = self._event_log
        if sink is None and not log.isEnabledFor(logging.INFO):
            return
        lines = [
            _event_line(item.event, result)
            for item, result in zip(items, results, strict=True)
            if not isinstance(result, Exception)
        ]
        if not lines:
            return
        if sink is not None:
            sink(lines)
        else:
            for line in lines:
                log.info("%s", line)

    def _stored(
        self, event: WebhookEvent | UnknownEvent, stored: inbox.Stored, *, numbered: bool = False
    ) -> Reply:
        if stored.duplicate:
            reply = DUPLICATE
        else:
            reply = STORED
            dispatcher = self._dispatcher
            if dispatcher is not None and (
                self.handlers.for_event(event) or (stored.changed and self.handlers.change_names)
            ):
                dispatcher.wake()
        return replace(reply, seq=stored.seq) if numbered else reply

    def _store_failed(self, exc: Exception) -> Reply:
        if isinstance(exc, StoreUnavailable):
            log.warning("store unavailable: %s", exc)
        else:
            log.error("store write failed: %s", type(exc).__name__, exc_info=exc)
        return UNAVAILABLE

    # -- queries -------------------------------------------------------------------------

    def recent_events(self, limit: int = 50) -> list[inbox.InboxEvent]:
        return self._read(partial(inbox.recent_events, limit=limit))

    def failed_runs(self, limit: int = 100) -> list[inbox.HandlerRun]:
        return self._read(partial(inbox.failed_runs, limit=limit))

    def state(self, key: str) -> VerificationState | None:
        """The reconciled state of one verification, or None when nothing was received."""
        return self._read(partial(inbox.get_state, key=key.lower()))

    def history(self, key: str) -> list[inbox.InboxEvent]:
        """Every event received for one verification, in arrival order."""
        return self._read(partial(inbox.event_history, key=key.lower()))

    def runs(self, event_seq: int) -> list[inbox.HandlerRun]:
        return self._read(partial(inbox.runs_for_event, event_seq=event_seq))

    def retry(self, event_seq: int, handler: str) -> None:
        """Run a failed handler again, with a fresh count of attempts. NotFound otherwise."""
        self.open()
        assert self._committer is not None
        now = self._clock()
        self._committer.call(
            partial(inbox.retry_run, event_seq=event_seq, handler=handler, now=now)
        )
        if self._dispatcher is not None:
            self._dispatcher.wake()

    def retry_all_failed(self) -> int:
        """``retry`` every failed run; returns how many were queued again."""
        self.open()
        assert self._committer is not None
        count = self._committer.call(partial(inbox.retry_failed_runs, now=self._clock()))
        if count and self._dispatcher is not None:
            self._dispatcher.wake()
        return count

    def prune(self, older_than_seconds: float, include_failed: bool = False) -> int:
        """Delete events received more than ``older_than_seconds`` ago whose handler runs
        all succeeded (or failed too, with ``include_failed``), and their runs, in one
        transaction; returns how many events went. Reconciled states are kept.

        A duplicate of a pruned event arriving later is stored again as a new event (its
        ``on(...)`` handlers run again) but, being no newer than the state it already
        made, changes no state and fires no ``on_change``. See ``inbox.prune_events``.
        """
        if not older_than_seconds >= 0:  # NaN too
            raise InvalidInput("older_than_seconds must be a number of seconds >= 0")
        self.open()
        before = self._clock() - older_than_seconds
        # Its own connection, not the writer's queue: a large prune would hold up every
        # webhook's commit batched behind it (on PostgreSQL it need not wait at all).
        with self.database.connection() as conn, conn.transaction():
            return inbox.prune_events(conn, before=before, include_failed=include_failed)

    def _read(self, query: Callable[[Connection], T]) -> T:
        # Reads use their own short-lived connection: the writer is for writes, and a WAL
        # reader never waits on it.
        self.open()
        with self.database.connection() as conn:
            return query(conn)

    # -- serving -------------------------------------------------------------------------

    def asgi_app(self) -> ReceiverApp:
        """A raw ASGI app: POST /webhooks, GET /events, /verifications/{key}, /healthz."""
        from verihook.receiver.app import ReceiverApp

        return ReceiverApp(self)


_TUNED: weakref.WeakSet[Connection] = weakref.WeakSet()


def _store_batch(
    conn: Connection, items: list[inbox.Incoming], now: float
) -> list[inbox.Stored | Exception]:
    """Store a batch; if it fails for a reason other than the store, store item by item, so
    one poison request answers 503 alone instead of failing its neighbours forever."""
    if conn.dialect == "sqlite" and conn not in _TUNED:
        _tune_writer(conn)
        _TUNED.add(conn)
    try:
        with conn.savepoint():
            return list(inbox.store_events(conn, items, now))
    except StoreUnavailable:
        raise
    except Exception:
        if len(items) == 1:
            raise
    results: list[inbox.Stored | Exception] = []
    for item in items:
        try:
            with conn.savepoint():
                results.extend(inbox.store_events(conn, [item], now))
        except StoreUnavailable:
            raise
        except Exception as exc:
            results.append(exc)
    return results


def _event_line(event: WebhookEvent | UnknownEvent, stored: inbox.Stored) -> str:
    outcome = "duplicate" if stored.duplicate else "stored"
    if isinstance(event, WebhookEvent):
        return (
            f"{outcome} {event.event.value} key={event.key} status={event.status.value}"
            f" seq={stored.seq}"
        )
    # An unknown event's name and key are the sender's: one line stays one line.
    name, key = _printable(event.event), _printable(event.key or "")
    return f"{outcome} {name} key={key or None} status=- seq={stored.seq}"


def _printable(text: str) -> str:
    text = text[:200]
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def _tune_writer(conn: Connection) -> None:
    """The inbox writer's SQLite connection; durability is untouched (synchronous=FULL)."""
    # Checkpoint every ~40 MB of WAL rather than every 4 MB: pages written again in
    # between (B-tree interiors, the tables' last pages) are copied to the database once.
    conn.execute("PRAGMA wal_autocheckpoint=10000")
    # Every event lands on a random page of the dedup index and of the states table; with
    # the default 2 MB cache those pages are evicted and read back (a pread each) before
    # the next event touches them. 64 MB (allocated only as used) keeps them in memory.
    conn.execute("PRAGMA cache_size=-65536")
    conn.execute("PRAGMA temp_store=MEMORY")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None
