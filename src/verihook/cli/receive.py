"""``verihook receive``: the standalone receiver on uvicorn (uvloop + httptools)."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from verihook.cli.errors import fail, reports_errors
from verihook.cli.gc_tuning import tune_gc_for_serving
from verihook.exceptions import InvalidInput
from verihook.receiver import Handlers, Receiver
from verihook.store import DEFAULT_DATABASE_URL

__all__ = ["load_handlers", "receive"]


@reports_errors
def receive(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port (0: any free port).")
    ] = 8000,
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret",
            envvar="VERIHOOK_SECRET",
            help="Webhook secret (32 bytes of UTF-8): bodies must be encrypted with it.",
            show_default=False,
        ),
    ] = None,
    signing_secrets: Annotated[
        list[str] | None,
        typer.Option(
            "--signing-secret",
            envvar="VERIHOOK_SIGNING_SECRET",
            help="whsec_ signing secret; repeat while rotating (env: space-separated).",
            show_default=False,
        ),
    ] = None,
    db: Annotated[
        str, typer.Option("--db", envvar="VERIHOOK_DATABASE_URL", help="Store URL.")
    ] = DEFAULT_DATABASE_URL,
    allow_unencrypted: Annotated[
        bool,
        typer.Option("--allow-unencrypted", help="Accept plain JSON even though a secret is set."),
    ] = False,
    handlers: Annotated[
        str | None,
        typer.Option(
            "--handlers",
            metavar="MODULE:NAME",
            help="Handlers to run: a verihook Handlers (or Receiver) object in a module.",
        ),
    ] = None,
    handler_timeout: Annotated[
        float, typer.Option("--handler-timeout", min=0.1, help="Seconds a handler may run.")
    ] = 30.0,
) -> None:
    """Receive webhooks at POST /webhooks and store them durably.

    Also serves GET /events, GET /verifications/{key} and GET /healthz.

    Example: verihook receive --secret YOUR_WEBHOOK_SECRET_32_BYTES_KEY --port 8000
    """
    import uvicorn

    _Server = _server_class()
    log_handler = _log_events_to_stderr()
    receiver = Receiver(
        secret,
        signing_secrets=signing_secrets or (),
        database_url=db,
        allow_unencrypted=True if allow_unencrypted else None,
        handler_timeout=handler_timeout,
        handlers=load_handlers(handlers) if handlers else None,
        event_log=log_handler.write_event_lines,
    )
    # Fail now, in one line, rather than on the first webhook: a bad URL or a store that
    # is not there is a configuration error.
    receiver.open()
    try:
        sock = socket.create_server((host, port), reuse_port=False)
    except OSError as exc:
        receiver.stop()
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    bound = sock.getsockname()[1]
    mode = "encrypted" if receiver.options.secret is not None else "plain JSON"
    if receiver.options.signing_secrets:
        mode += f", signed ({len(receiver.options.signing_secrets)} signing secrets)"
    typer.echo(
        f"verihook: receiving on http://{host}:{bound}/webhooks ({mode});"
        f" store {receiver.database.safe_url}",
        err=True,
    )
    config = uvicorn.Config(
        receiver.asgi_app(),
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        # Not behind a proxy by default; the middleware would cost every request.
        proxy_headers=False,
        # Let in-flight requests finish (their commits included) on SIGTERM/SIGINT.
        timeout_graceful_shutdown=10,
    )
    try:
        tune_gc_for_serving()
        _Server(config).run(sockets=[sock])
    finally:
        receiver.stop()
        sock.close()
        for handler in logging.getLogger("verihook").handlers:
            handler.close()
    typer.echo("verihook: receiver stopped", err=True)


def _server_class() -> type[Any]:
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # As uvicorn, minus re-raising the signal after the graceful shutdown: a receiver
            # that stopped cleanly on SIGTERM/SIGINT exits 0 and says so.
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            handled = (signal.SIGINT, signal.SIGTERM)
            original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

    return Server


def load_handlers(target: str) -> Handlers:
    """``package.module:name`` -> its Handlers (a Receiver's handlers are taken as well)."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise InvalidInput("--handlers must look like package.module:name")
    # As uvicorn does: modules in the current directory can be named.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidInput(f"cannot import handlers module {module_name!r}: {exc}") from None
    value = getattr(module, attribute, None)
    if isinstance(value, Receiver):
        return value.handlers
    if isinstance(value, Handlers):
        return value
    raise InvalidInput(f"{target} is not a verihook Handlers or Receiver object")


def _log_events_to_stderr() -> _BufferedStderrHandler:
    handler = _BufferedStderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("verihook")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return handler


class _BufferedStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """One line per event, written in bulk: a write (and flush) per line costs a syscall and
    hands the GIL to the store's writer thread on every request. Lines reach stderr within
    ``interval`` seconds, at once for warnings, and all of them on a clean exit."""

    def __init__(self, interval: float = 0.2) -> None:
        stream = open(sys.stderr.fileno(), "w", buffering=1 << 16, closefd=False)
        super().__init__(stream)
        self._stop = threading.Event()
        self._interval = interval
        threading.Thread(target=self._flush_now_and_then, name="verihook-log", daemon=True).start()

    def write_event_lines(self, lines: list[str]) -> None:
        """The receiver's per-event lines, formatted as records would be, minus the records:
        one timestamp per commit and one buffered write for all of them."""
        now = time.time()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
        prefix = f"{stamp},{int(now * 1000) % 1000:03d} INFO verihook.receiver: "
        text = "".join([prefix + line + "\n" for line in lines])
        with self.lock:  # type: ignore[union-attr]
            try:
                self.stream.write(text)
            except (OSError, ValueError):  # stderr is gone or closed: nothing to tell
                pass

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        if record.levelno >= logging.WARNING:
            self._flush_now()

    def flush(self) -> None:
        # Called by StreamHandler.emit after every record: deliberately nothing here.
        pass

    def close(self) -> None:
        self._stop.set()
        self._flush_now()
        super().close()

    def _flush_now(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            try:
                self.stream.flush()
            except (OSError, ValueError):
                pass

    def _flush_now_and_then(self) -> None:
        while not self._stop.wait(self._interval):
            self._flush_now()
