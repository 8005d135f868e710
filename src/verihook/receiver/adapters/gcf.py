"""Google Cloud Functions: an HTTP function for functions-framework.

    # main.py, deployed with --entry-point=webhook
    from verihook import Receiver
    from verihook.receiver.adapters.gcf import make_function

    receiver = Receiver(os.environ["VERIHOOK_SECRET"], database_url=os.environ["DATABASE_URL"])
    webhook = make_function(receiver)

Cloud Functions throttles an instance's CPU once it has answered, so handlers run before the
answer (see ``serverless``); the request itself is read exactly as the Flask adapter does.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Request, Response

from verihook.receiver.adapters.flask import read_request, to_response
from verihook.receiver.adapters.serverless import HandlerPolicy
from verihook.receiver.receiver import Receiver, Reply

__all__ = ["make_function"]


def make_function(
    receiver: Receiver, *, run_handlers: bool = True, handler_wait: float = 10.0
) -> Callable[[Request], Response]:
    """``function(request) -> Response``; ``run_handlers=False`` only stores."""
    policy = HandlerPolicy(receiver, run_handlers=run_handlers, handler_wait=handler_wait)

    def function(request: Request) -> Response:
        read = read_request(receiver, request)
        if isinstance(read, Reply):
            return to_response(read)
        headers, body = read
        policy.before()
        reply = receiver.receive_sync(headers, body)
        policy.after(headers, body, reply, handler_wait)
        return to_response(reply)

    return function
