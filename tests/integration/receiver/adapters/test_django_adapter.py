"""The Django adapter through ``django.test.Client``, CSRF checks on, as a project runs it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import django
import pytest
from adapter_cases import (
    REFUSALS,
    Answer,
    Refusal,
    Send,
    check_refusal,
    check_store_down,
    check_stored_once,
    event,
    signed,
    wait_for,
)
from django.conf import settings
from django.test import Client
from django.urls import clear_url_caches, path

from verihook import Receiver
from verihook.receiver.adapters.django import webhook_view

if not settings.configured:
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF=__name__,
        SECRET_KEY="only-for-these-tests",
        MIDDLEWARE=[
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
        ],
        INSTALLED_APPS=[],
        DATABASES={},
    )
    django.setup()

# This module is the URLconf; each test routes /passbase/webhooks to its own receiver.
urlpatterns: list[Any] = []


@pytest.fixture
def route() -> Iterator[Callable[[Receiver], None]]:
    def install(receiver: Receiver) -> None:
        urlpatterns[:] = [path("passbase/webhooks", webhook_view(receiver))]
        clear_url_caches()

    yield install
    urlpatterns.clear()
    clear_url_caches()


def django_send(receiver: Receiver, route: Callable[[Receiver], None]) -> Send:
    route(receiver)
    # enforce_csrf_checks: the view must be exempt, as a webhook never carries a token.
    client = Client(enforce_csrf_checks=True)

    def send(method: str, headers: Mapping[str, str], body: bytes) -> Answer:
        extra = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        reply = client.generic(
            method,
            "/passbase/webhooks",
            data=body,
            content_type=headers.get("content-type", "application/octet-stream"),
            headers=extra,
        )
        return Answer(
            reply.status_code, {k.lower(): v for k, v in reply.headers.items()}, reply.content
        )

    return send


def test_a_valid_event_is_stored_once(receiver: Receiver, route: Any) -> None:
    check_stored_once(django_send(receiver, route), receiver)


@pytest.mark.parametrize("case", REFUSALS, ids=str)
def test_refusals(receiver: Receiver, route: Any, case: Refusal) -> None:
    check_refusal(django_send(receiver, route), receiver, case)


def test_store_down_is_503_until_it_is_back(
    down: tuple[Receiver, Callable[[], None]], route: Any
) -> None:
    receiver, bring_back = down
    check_store_down(django_send(receiver, route), receiver, bring_back)


def test_handlers_run_in_the_background(receiver: Receiver, route: Any) -> None:
    seen: list[Any] = []
    receiver.on_change(lambda old, new: seen.append((old, new.status.value)))
    receiver.start()
    headers, body = signed(event())
    assert django_send(receiver, route)("POST", headers, body).status == 200
    wait_for(lambda: seen, what="the on_change handler")
    assert seen == [(None, "approved")]
