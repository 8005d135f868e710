"""Fixtures for the format core's tests: sample events and secrets, no I/O."""

from __future__ import annotations

import pytest

from verihook.format import EventType, SigningSecret, Status, WebhookEvent, WebhookSecret

KEY = "b76e244e-26a3-49ef-9c72-3e599bf0b5f2"


@pytest.fixture
def event() -> WebhookEvent:
    return WebhookEvent(
        event=EventType.VERIFICATION_COMPLETED,
        key=KEY,
        status=Status.PENDING,
        created=1582628711,
        updated=1582628999,
        processed=1582628999,
    )


@pytest.fixture
def secret() -> WebhookSecret:
    return WebhookSecret("YOUR_WEBHOOK_SECRET_32_BYTES_KEY")


@pytest.fixture
def signing_secret() -> SigningSecret:
    # The Standard Webhooks specification's published test secret.
    return SigningSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
