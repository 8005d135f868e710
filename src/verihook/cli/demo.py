"""``verihook demo``: both ends of the system, once, end to end, on this machine alone.

A receiver listens on a free 127.0.0.1 port; a provider registers it as an encrypted, signed
endpoint; verifications are completed (auto-approved, auto-declined, left for review) and one
is reviewed by hand; a worker delivers every event; the receiver's handlers print what they
see; and the two ends' views are compared. Everything lives in one temporary directory.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from verihook.cli.errors import fail, reports_errors

if TYPE_CHECKING:
    from verihook.format import WebhookEvent
    from verihook.provider import SyncProvider
    from verihook.receiver import Receiver, VerificationState

__all__ = ["demo"]

# (score, manual review or None): one verification per automation outcome.
_SCENARIOS: list[tuple[float, str | None]] = [
    (0.97, None),  # over the approve threshold: COMPLETED(approved) + REVIEWED(approved)
    (0.05, None),  # under the decline threshold: COMPLETED(declined) + REVIEWED(declined)
    (0.60, "approve"),  # in between: COMPLETED(pending), then a manual review
    (0.55, None),  # in between, never reviewed: stays pending
]


@reports_errors
def demo(
    keep: Annotated[
        Path | None,
        typer.Option(
            "--keep",
            help="Keep the databases in this directory instead of a temporary one.",
            file_okay=False,
        ),
    ] = None,
) -> None:
    """Run a receiver, a provider and a worker together, end to end, and show the result.

    Example: verihook demo
    """
    console = Console()
    directory = keep if keep is not None else Path(tempfile.mkdtemp(prefix="verihook-demo-"))
    try:
        directory.mkdir(parents=True, exist_ok=True)
        matched = asyncio.run(_run(directory, console))
    finally:
        if keep is None:
            shutil.rmtree(directory, ignore_errors=True)
    if not matched:
        fail("the receiver's view differs from the provider's")


async def _run(directory: Path, console: Console) -> bool:
    # Imported here: every other command would pay for them at start-up.
    import uvicorn

    from verihook.delivery.worker import Worker
    from verihook.provider import SyncProvider
    from verihook.receiver import Receiver

    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/webhooks"

    provider = SyncProvider(f"sqlite:///{directory / 'provider.db'}", allow_private_networks=True)
    endpoint = provider.add_endpoint(url)
    assert endpoint.encryption_secret is not None
    provider.set_thresholds(approve=0.9, decline=0.2)
    console.print(f"[bold]provider[/]  endpoint {endpoint.id} -> {url} (encrypted, signed)")

    receiver = Receiver(
        endpoint.encryption_secret,
        signing_secrets=[endpoint.signing_secret],
        database_url=f"sqlite:///{directory / 'receiver.db'}",
    )
    seen: list[str] = []

    @receiver.on_change
    def changed(old: VerificationState | None, new: VerificationState) -> None:
        before = old.status.value if old is not None else "-"
        seen.append(new.key)
        console.print(
            f"[bold]receiver[/]  {new.key[:8]}  {before} -> [bold]{new.status.value}[/]"
            f"  ({new.event.value})"
        )

    @receiver.on("VERIFICATION_REVIEWED")
    def reviewed(event: WebhookEvent) -> None:
        console.print(f"[bold]receiver[/]  {event.key[:8]}  reviewed: {event.status.value}")

    config = uvicorn.Config(
        receiver.asgi_app(), lifespan="on", access_log=False, log_level="warning"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        keys = []
        for score, decision in _SCENARIOS:
            verification = provider.create_verification()
            provider.complete(verification.key, score)
            if decision is not None:
                provider.review(verification.key, decision)
            keys.append(verification.key)
            note = f", then {decision}d by hand" if decision else ""
            console.print(
                f"[bold]provider[/]  {verification.key[:8]}  completed with score {score}{note}"
            )
        async with Worker(
            f"sqlite:///{directory / 'provider.db'}", allow_private_networks=True
        ) as worker:
            await worker.run_until_idle()
        # Handlers run after the 200, from the receiver's inbox: wait for them (bounded).
        for _ in range(200):
            if len(receiver.failed_runs()) == 0 and set(keys) <= set(seen):
                break
            await asyncio.sleep(0.05)
        return _compare(console, provider, receiver, keys)
    finally:
        server.should_exit = True
        await serving
        provider.close()


def _compare(console: Console, provider: SyncProvider, receiver: Receiver, keys: list[str]) -> bool:
    table = Table(title="Both ends agree", title_justify="left")
    for column in ("verification", "score", "provider", "receiver", "events received"):
        table.add_column(column)
    matched = True
    for key in keys:
        sent = provider.get_verification(key)
        state = receiver.state(key)
        received = state.status.value if state is not None else "(nothing)"
        matched &= received == sent.status.value
        history: list[Any] = receiver.history(key)
        table.add_row(
            key[:8],
            f"{sent.score:.2f}" if sent.score is not None else "",
            sent.status.value,
            received,
            str(len(history)),
        )
    if not matched:
        table.title = "The two ends DISAGREE"
    console.print(table)
    return matched
