"""Passbase webhooks in Django, as a single file: settings, URLconf and the view.

VERIHOOK_SECRET=... python examples/django_app.py runserver 127.0.0.1:8000 --noreload
# webhooks: POST http://127.0.0.1:8000/passbase/webhooks
"""

from __future__ import annotations

import os
import sys

from django.conf import settings

settings.configure(
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "change-me"),
    MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],  # the view is exempt
)

from django.urls import path  # noqa: E402  (needs the settings above)

from verihook import Receiver  # noqa: E402
from verihook.format import WebhookEvent  # noqa: E402
from verihook.receiver.adapters.django import webhook_view  # noqa: E402

receiver = Receiver(
    os.environ.get("VERIHOOK_SECRET"),  # unset: plain JSON webhooks
    database_url=os.environ.get("VERIHOOK_DATABASE_URL", "sqlite:///verihook.db"),
)


@receiver.on("VERIFICATION_REVIEWED")
def reviewed(event: WebhookEvent) -> None:
    print(f"reviewed {event.key}: {event.status.value}", flush=True)


urlpatterns = [path("passbase/webhooks", webhook_view(receiver))]

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    receiver.start()  # handlers run in a background thread, after each 200
    execute_from_command_line(sys.argv)
