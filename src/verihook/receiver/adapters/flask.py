"""Flask: a view, or a blueprint, that hands each POST to ``Receiver.receive_sync``.

    from verihook.receiver.adapters.flask import blueprint

    app.register_blueprint(blueprint(receiver), url_prefix="/passbase")
    receiver.start()                   # run handlers in the background

The view answers every method itself (405 with ``Allow: POST``, as JSON) so its answers are
the ASGI app's, and reads at most 64 KiB + 1 byte of a body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Request, Response, request

from verihook.receiver.adapters.body import (
    METHOD_NOT_ALLOWED,
    declared_too_large,
    lowercase_headers,
    read_capped,
    too_large,
)
from verihook.receiver.receiver import Receiver, Reply

__all__ = ["blueprint", "handle_request", "read_request", "to_response", "webhook_view"]

# Answered by the view, not by Flask, so even a refusal has our JSON body.
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def read_request(receiver: Receiver, req: Request) -> Reply | tuple[Mapping[str, str], bytes]:
    """The headers and capped body of a POST, or the refusal; shared with Cloud Functions."""
    if req.method != "POST":
        return METHOD_NOT_ALLOWED
    limit = receiver.options.max_body_size
    if declared_too_large(req.headers.get("content-length"), limit):
        return too_large(limit)
    body = read_capped(req.stream.read, limit)
    if body is None:
        return too_large(limit)
    return lowercase_headers(req.headers.items()), body


def handle_request(receiver: Receiver, req: Request) -> Reply:
    read = read_request(receiver, req)
    if isinstance(read, Reply):
        return read
    return receiver.receive_sync(*read)


def to_response(reply: Reply) -> Response:
    response = Response(reply.body, status=reply.status, content_type=reply.content_type)
    for name, value in reply.headers:
        response.headers[name] = value
    return response


def webhook_view(receiver: Receiver) -> Any:
    """A view function; ``app.add_url_rule("/webhooks", view_func=webhook_view(receiver))``."""

    def verihook_webhook() -> Response:
        return to_response(handle_request(receiver, request))

    # Read by add_url_rule: route every method here, and no automatic OPTIONS answer.
    verihook_webhook.methods = _ALL_METHODS  # type: ignore[attr-defined]
    verihook_webhook.provide_automatic_options = False  # type: ignore[attr-defined]
    return verihook_webhook


def blueprint(
    receiver: Receiver, *, name: str = "verihook", url_prefix: str | None = None
) -> Blueprint:
    """Webhooks at ``<url_prefix>/`` and ``<url_prefix>/webhooks``, like the ASGI app."""
    bp = Blueprint(name, __name__, url_prefix=url_prefix)
    view = webhook_view(receiver)
    bp.add_url_rule("/", "webhook", view, strict_slashes=False)
    bp.add_url_rule("/webhooks", "webhooks", view)
    return bp
