"""Django: a csrf-exempt view that hands each POST to ``Receiver.receive_sync``.

    # urls.py
    from verihook.receiver.adapters.django import webhook_view

    urlpatterns = [path("passbase/webhooks", webhook_view(receiver))]

Start ``receiver.start()`` once (e.g. in ``AppConfig.ready``) to run handlers in the
background. The body is read from the request stream, at most 64 KiB + 1 byte, never through
``request.body`` (whose cap, DATA_UPLOAD_MAX_MEMORY_SIZE, answers 400 rather than 413). Under
Django's ASGI handler Django buffers the whole body before any view runs; there, mounting
``receiver.asgi_app()`` in front of Django is the leaner path.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse  # type: ignore[import-untyped]
from django.views.decorators.csrf import csrf_exempt  # type: ignore[import-untyped]

from verihook.receiver.adapters.body import (
    METHOD_NOT_ALLOWED,
    declared_too_large,
    lowercase_headers,
    read_capped,
    too_large,
)
from verihook.receiver.receiver import Receiver, Reply

__all__ = ["webhook_view"]


def webhook_view(receiver: Receiver) -> Callable[[HttpRequest], HttpResponse]:
    # A webhook carries no CSRF token: the sender is a server, authenticated by the
    # encryption secret and the signature, not by a browser session.
    @csrf_exempt  # type: ignore[untyped-decorator]
    def verihook_webhook(request: HttpRequest) -> HttpResponse:
        return _to_response(_handle(receiver, request))

    return verihook_webhook  # type: ignore[no-any-return]


def _handle(receiver: Receiver, request: HttpRequest) -> Reply:
    if request.method != "POST":
        return METHOD_NOT_ALLOWED
    limit = receiver.options.max_body_size
    if declared_too_large(request.META.get("CONTENT_LENGTH"), limit):
        return too_large(limit)
    body = read_capped(request.read, limit)
    if body is None:
        return too_large(limit)
    return receiver.receive_sync(lowercase_headers(request.headers.items()), body)


def _to_response(reply: Reply) -> HttpResponse:
    response = HttpResponse(reply.body, status=reply.status, content_type=reply.content_type)
    for name, value in reply.headers:
        response[name] = value
    return response
