from __future__ import annotations

from collections.abc import Iterator

import pytest
from delivery_receivers import TestReceiver


@pytest.fixture
def receiver() -> Iterator[TestReceiver]:
    r = TestReceiver().start()
    yield r
    r.stop()
