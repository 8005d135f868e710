"""Passbase webhooks in a FastAPI app: the receiver's ASGI app mounted under /passbase.

VERIHOOK_SECRET=... uvicorn --app-dir examples fastapi_app:app --port 8000
# webhooks: POST http://127.0.0.1:8000/passbase/webhooks  (also GET /passbase/events)
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from verihook import Receiver
from verihook.format import WebhookEvent
from verihook.receiver import VerificationState

receiver = Receiver(
    os.environ.get("VERIHOOK_SECRET"),  # unset: plain JSON webhooks
    database_url=os.environ.get("VERIHOOK_DATABASE_URL", "sqlite:///verihook.db"),
)


@receiver.on("VERIFICATION_REVIEWED")
def reviewed(event: WebhookEvent) -> None:
    print(f"reviewed {event.key}: {event.status.value}", flush=True)


@receiver.on_change
async def changed(old: VerificationState | None, new: VerificationState) -> None:
    print(f"state of {new.key}: {old and old.status.value} -> {new.status.value}", flush=True)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # A mounted app gets no lifespan of its own: start the handlers here.
    async with receiver:
        yield


app = FastAPI(lifespan=lifespan)
app.mount("/passbase", receiver.asgi_app())
