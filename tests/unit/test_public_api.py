"""``__all__`` is the public API: exactly the public names, each one importable."""

from __future__ import annotations

import inspect
import types

import pytest

import verihook
import verihook._version
import verihook.exceptions
import verihook.format

PACKAGE_API = {
    "DecodeOptions",
    "DecryptionError",
    "EventType",
    "InvalidEvent",
    "InvalidInput",
    "InvalidSecret",
    "MalformedBody",
    "PayloadTooLarge",
    "Provider",
    "Receiver",
    "SignatureError",
    "SigningSecret",
    "Status",
    "StoreUnavailable",
    "SyncProvider",
    "UnknownEvent",
    "UnsupportedContentType",
    "VerihookError",
    "WebhookEvent",
    "WebhookRejected",
    "WebhookSecret",
    "__version__",
    "decode_request",
    "decrypt",
    "encode_request",
    "encrypt",
    "parse_event",
    "sign",
    "verify",
}

FORMAT_API = {
    "DEFAULT_TOLERANCE",
    "JSON_CONTENT_TYPE",
    "MAX_BODY_SIZE",
    "TEXT_CONTENT_TYPE",
    "USER_AGENT",
    "DecodeOptions",
    "EventType",
    "SigningSecret",
    "Status",
    "UnknownEvent",
    "WebhookEvent",
    "WebhookSecret",
    "decode_request",
    "decrypt",
    "encode_request",
    "encrypt",
    "parse_event",
    "parse_event_object",
    "sign",
    "verify",
}


def public_names(module: types.ModuleType) -> set[str]:
    """What the module defines or imports for its users: no modules, no _private names."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }


@pytest.mark.parametrize(
    ("module", "expected"),
    [(verihook, PACKAGE_API - {"__version__"}), (verihook.format, FORMAT_API)],
)
def test_all_lists_exactly_the_public_names(module: types.ModuleType, expected: set[str]) -> None:
    assert set(module.__all__) - {"__version__"} == expected
    assert public_names(module) == expected
    assert len(module.__all__) == len(set(module.__all__))


@pytest.mark.parametrize("module", [verihook, verihook.format, verihook.exceptions])
def test_every_name_in_all_resolves(module: types.ModuleType) -> None:
    namespace: dict[str, object] = {}
    exec(f"from {module.__name__} import *", namespace)
    for name in module.__all__:
        assert namespace[name] is getattr(module, name)


def test_package_all_is_the_documented_api() -> None:
    assert set(verihook.__all__) == PACKAGE_API
    assert verihook.__version__ == verihook._version.__version__


def test_every_exception_is_one_of_ours() -> None:
    for name in verihook.exceptions.__all__:
        error = getattr(verihook.exceptions, name)
        assert issubclass(error, verihook.exceptions.VerihookError)
        assert getattr(verihook, name, error) is error


def test_the_async_provider_has_every_method_of_the_sync_one() -> None:
    def public(cls: type) -> set[str]:
        return {n for n, v in vars(cls).items() if callable(v) and not n.startswith("_")}

    assert public(verihook.SyncProvider) <= public(verihook.Provider)
    for name in public(verihook.SyncProvider):
        assert inspect.iscoroutinefunction(getattr(verihook.Provider, name)), name
        assert (
            getattr(verihook.Provider, name).__doc__ == getattr(verihook.SyncProvider, name).__doc__
        )
