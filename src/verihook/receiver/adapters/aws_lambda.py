"""AWS Lambda: a handler for API Gateway REST (v1), HTTP API (v2) and function URL events.

    # app.py, handler "app.handler"
    from verihook import Receiver
    from verihook.receiver.adapters.aws_lambda import make_handler

    receiver = Receiver(os.environ["VERIHOOK_SECRET"], database_url=os.environ["DATABASE_URL"])
    handler = make_handler(receiver)

The answer is the proxy-integration response dict, with the ASGI app's statuses and bodies.
Handlers run before the function returns (see ``serverless``); the database must outlive the
instance, so use PostgreSQL (or SQLite on EFS) rather than the instance's /tmp.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any

from verihook.exceptions import MALFORMED_BODY_MESSAGE
from verihook.receiver.adapters.body import METHOD_NOT_ALLOWED, declared_too_large, too_large
from verihook.receiver.adapters.serverless import HandlerPolicy
from verihook.receiver.receiver import Receiver, Reply

__all__ = ["make_handler"]

LambdaHandler = Callable[[Mapping[str, Any], Any], dict[str, Any]]

_NOT_HTTP = Reply.error(400, "not an API Gateway or function URL event")
_MALFORMED = Reply.error(400, MALFORMED_BODY_MESSAGE)
# Leave the platform this much of its deadline to send the answer.
_MARGIN = 0.5


def make_handler(
    receiver: Receiver, *, run_handlers: bool = True, handler_wait: float = 10.0
) -> LambdaHandler:
    """``handler(event, context)``; ``run_handlers=False`` only stores (see ``serverless``)."""
    policy = HandlerPolicy(receiver, run_handlers=run_handlers, handler_wait=handler_wait)

    def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        request = _request(event, receiver.options.max_body_size)
        if isinstance(request, Reply):
            return _response(request)
        headers, body = request
        policy.before()
        reply = receiver.receive_sync(headers, body)
        policy.after(headers, body, reply, _remaining(context))
        return _response(reply)

    return handler


def _request(event: Mapping[str, Any], limit: int) -> Reply | tuple[dict[str, str], bytes]:
    if not isinstance(event, Mapping):
        return _NOT_HTTP
    context = event.get("requestContext")
    http = context.get("http") if isinstance(context, Mapping) else None
    # v2 (HTTP API, function URL) names the method under requestContext.http; v1 at the top.
    method = http.get("method") if isinstance(http, Mapping) else event.get("httpMethod")
    if not isinstance(method, str):
        return _NOT_HTTP
    if method.upper() != "POST":
        return METHOD_NOT_ALLOWED
    headers = _headers(event)
    if declared_too_large(headers.get("content-length"), limit):
        return too_large(limit)
    raw = event.get("body")
    if raw is None:
        raw = ""
    if not isinstance(raw, str):
        return _NOT_HTTP
    if event.get("isBase64Encoded"):
        # Refuse by the encoded length before decoding anything over the cap.
        if len(raw) > (limit + 2) // 3 * 4 + 4:
            return too_large(limit)
        try:
            body = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            return _MALFORMED
    else:
        if len(raw) > limit:
            return too_large(limit)
        body = raw.encode("utf-8")
    if len(body) > limit:
        return too_large(limit)
    return headers, body


def _headers(event: Mapping[str, Any]) -> dict[str, str]:
    # v1 may give only multiValueHeaders (or null headers); v2 lower-cases names and joins
    # repeated values with commas. Either way: one lower-case name, one value.
    headers: dict[str, str] = {}
    multi = event.get("multiValueHeaders")
    if isinstance(multi, Mapping):
        for name, values in multi.items():
            if isinstance(name, str) and isinstance(values, list) and values:
                headers[name.lower()] = ",".join(str(v) for v in values)
    single = event.get("headers")
    if isinstance(single, Mapping):
        for name, value in single.items():
            if isinstance(name, str) and isinstance(value, str):
                headers[name.lower()] = value
    return headers


def _remaining(context: Any) -> float:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return float("inf")
    return max(0.0, float(remaining()) / 1000 - _MARGIN)


def _response(reply: Reply) -> dict[str, Any]:
    headers = {"content-type": reply.content_type}
    headers.update(reply.headers)
    return {
        "statusCode": reply.status,
        "headers": headers,
        "body": reply.body.decode("utf-8"),
        "isBase64Encoded": False,
    }
