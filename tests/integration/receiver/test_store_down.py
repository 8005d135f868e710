"""The store goes away under a running receiver: 503 (with Retry-After), no crash, and the
receiver recovers by itself when the store is back. Real failures, no mocks:
SQLite made immutable with ``chattr +i`` (root ignores file modes, not that), PostgreSQL
reached through a TCP proxy that is cut and restored.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from receiver_factories import SECRET, LiveServer, encrypted, make_event, wait_for

from verihook import Receiver


def post(url: str, updated: int, msg_id: str) -> httpx.Response:
    headers, body = encrypted(make_event(updated=updated), msg_id)
    return httpx.post(url + "/webhooks", headers=headers, content=body, timeout=30)


def check_outage_and_recovery(
    url: str, cut: Callable[[], object], restore: Callable[[], object]
) -> None:
    assert post(url, 100, "before").status_code == 200
    cut()
    try:
        for i in range(3):
            reply = post(url, 110 + i, f"during-{i}")
            assert reply.status_code == 503, reply.text
            assert reply.headers["retry-after"] == "5"
            assert reply.json() == {"error": "store unavailable, retry later"}
    finally:
        restore()
    # The sender retries; once the store is back, the same event is stored (not a duplicate).
    reply = wait_for(
        lambda: (r := post(url, 110, "during-0")).status_code == 200 and r, 20, "recovery"
    )
    assert reply.json() == {"status": "stored"}
    events = httpx.get(url + "/events", timeout=10).json()
    assert [e["webhook_id"] for e in events] == ["during-0", "before"]


@pytest.fixture
def immutable(tmp_path: Path) -> Iterator[None]:
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    probe = tmp_path / "probe"
    probe.write_text("x")
    done = subprocess.run(["chattr", "+i", str(probe)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"chattr +i does not work here: {done.stderr.decode().strip()}")
    subprocess.run(["chattr", "-i", str(probe)], check=True)
    yield
    subprocess.run(["chattr", "-R", "-i", str(tmp_path)], check=False)


def test_sqlite_made_unwritable_answers_503_then_recovers(tmp_path: Path, immutable: None) -> None:
    db = tmp_path / "store.db"
    receiver = Receiver(SECRET, database_url=f"sqlite:///{db}")
    files = [str(db), f"{db}-wal"]
    with LiveServer(receiver.asgi_app()) as server:
        check_outage_and_recovery(
            server.url,
            lambda: subprocess.run(["chattr", "+i", *files], check=True),
            lambda: subprocess.run(["chattr", "-i", *files], check=True),
        )


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; ``cut()`` drops every connection and refuses new
    ones (as a stopped server would), ``restore()`` listens again on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            for sock in self._open:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.mark.postgres
def test_postgres_connection_lost_answers_503_then_recovers(postgres_url: str) -> None:
    proxy = TcpProxy(("127.0.0.1", 5432))
    proxy.restore()
    try:
        assert "127.0.0.1:5432" in postgres_url
        url = postgres_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        receiver = Receiver(SECRET, database_url=url)
        with LiveServer(receiver.asgi_app()) as server:
            check_outage_and_recovery(server.url, proxy.cut, proxy.restore)
            assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200
            proxy.cut()
            assert httpx.get(server.url + "/healthz", timeout=30).status_code == 503
            proxy.restore()
    finally:
        proxy.cut()
