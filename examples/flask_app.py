"""Passbase webhooks in a Flask app: the verihook blueprint under /passbase.

VERIHOOK_SECRET=... flask --app examples/flask_app.py run --port 8000
# webhooks: POST http://127.0.0.1:8000/passbase/webhooks
"""

from __future__ import annotations

import os

from flask import Flask

from verihook import Receiver
from verihook.format import WebhookEvent
from verihook.receiver import VerificationState
from verihook.receiver.adapters.flask import blueprint

receiver = Receiver(
    os.environ.get("VERIHOOK_SECRET"),  # unset: plain JSON webhooks
    database_url=os.environ.get("VERIHOOK_DATABASE_URL", "sqlite:///verihook.db"),
)


@receiver.on("VERIFICATION_REVIEWED")
def reviewed(event: WebhookEvent) -> None:
    print(f"reviewed {event.key}: {event.status.value}", flush=True)


@receiver.on_change
def changed(old: VerificationState | None, new: VerificationState) -> None:
    print(f"state of {new.key}: {old and old.status.value} -> {new.status.value}", flush=True)


app = Flask(__name__)
app.register_blueprint(blueprint(receiver), url_prefix="/passbase")
receiver.start()  # handlers run in a background thread, after each 200
