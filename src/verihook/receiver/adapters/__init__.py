"""Framework adapters: each a thin shell that hands (headers, body) to the same ``Receiver``.

- ``flask``: ``webhook_view(receiver)`` and ``blueprint(receiver)``
- ``django``: ``webhook_view(receiver)`` (csrf-exempt, POST only)
- ``aws_lambda``: ``make_handler(receiver)`` for API Gateway REST/HTTP APIs and function URLs
- ``gcf``: ``make_function(receiver)`` for Google Cloud Functions (functions-framework)

ASGI frameworks (Starlette, FastAPI) need no adapter: mount ``receiver.asgi_app()``.
Each module imports its framework, so import the one you use, not this package's contents.
"""

from __future__ import annotations
