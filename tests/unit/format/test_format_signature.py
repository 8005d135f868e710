from __future__ import annotations

import base64

import pytest

from verihook.exceptions import SignatureError
from verihook.format import DEFAULT_TOLERANCE, SigningSecret, sign, verify

# The Standard Webhooks specification's published test vector.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

OTHER = SigningSecret("whsec_" + base64.b64encode(b"another secret, 32 bytes long!!!").decode())


def check(
    header: str | None,
    secrets: tuple[SigningSecret, ...],
    *,
    msg_id: str | None = SPEC_ID,
    timestamp: str | None = str(SPEC_TIMESTAMP),
    body: bytes = SPEC_BODY,
    now: float = SPEC_TIMESTAMP,
    tolerance: int = DEFAULT_TOLERANCE,
) -> None:
    verify(msg_id, timestamp, header, body, secrets, now, tolerance)


def test_spec_vector_signs_exactly(signing_secret: SigningSecret) -> None:
    assert sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY, signing_secret) == SPEC_SIGNATURE
    assert sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY, [signing_secret]) == SPEC_SIGNATURE


def test_spec_vector_verifies(signing_secret: SigningSecret) -> None:
    check(SPEC_SIGNATURE, (signing_secret,))


def test_one_signature_per_secret_space_separated(signing_secret: SigningSecret) -> None:
    header = sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY, [OTHER, signing_secret])
    first, second = header.split(" ")
    assert second == SPEC_SIGNATURE
    assert first.startswith("v1,") and first != second


@pytest.mark.parametrize(
    "header",
    [
        f"v1,bm9wZQ== {SPEC_SIGNATURE}",
        f"{SPEC_SIGNATURE} v1,bm9wZQ==",
        f"v1a,whatever v2,xyz {SPEC_SIGNATURE}",
        f"v1,not*base64 {SPEC_SIGNATURE}",
    ],
)
def test_any_matching_signature_among_several(header: str, signing_secret: SigningSecret) -> None:
    check(header, (signing_secret,))


def test_rotation_old_and_new_secret_both_verify(signing_secret: SigningSecret) -> None:
    # Sender signs with both during rotation; a receiver that knows either one accepts.
    header = sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY, [signing_secret, OTHER])
    check(header, (signing_secret,))
    check(header, (OTHER,))
    # A receiver configured with both accepts a sender that only knows one.
    check(SPEC_SIGNATURE, (OTHER, signing_secret))


def test_wrong_secret_is_refused(signing_secret: SigningSecret) -> None:
    with pytest.raises(SignatureError, match="no signature matches") as caught:
        check(SPEC_SIGNATURE, (OTHER,))
    assert caught.value.status_code == 401


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"body": b'{"test": 2432232315}'}, "no signature matches"),
        ({"msg_id": "msg_other"}, "no signature matches"),
        ({"timestamp": str(SPEC_TIMESTAMP + 1), "now": SPEC_TIMESTAMP + 1}, "no signature"),
    ],
)
def test_any_change_breaks_the_signature(
    changes: dict[str, object], reason: str, signing_secret: SigningSecret
) -> None:
    with pytest.raises(SignatureError, match=reason):
        check(SPEC_SIGNATURE, (signing_secret,), **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("skew", [-DEFAULT_TOLERANCE, 0, DEFAULT_TOLERANCE])
def test_within_tolerance_both_ways(skew: int, signing_secret: SigningSecret) -> None:
    check(SPEC_SIGNATURE, (signing_secret,), now=SPEC_TIMESTAMP + skew)


@pytest.mark.parametrize("skew", [-DEFAULT_TOLERANCE - 1, DEFAULT_TOLERANCE + 1, 86400])
def test_outside_tolerance_past_and_future(skew: int, signing_secret: SigningSecret) -> None:
    # A positive skew: the message is stale. A negative one: it claims to come from the future.
    with pytest.raises(SignatureError, match="tolerance"):
        check(SPEC_SIGNATURE, (signing_secret,), now=SPEC_TIMESTAMP + skew)


def test_tolerance_is_configurable(signing_secret: SigningSecret) -> None:
    check(SPEC_SIGNATURE, (signing_secret,), now=SPEC_TIMESTAMP + 600, tolerance=600)
    with pytest.raises(SignatureError, match="tolerance"):
        check(SPEC_SIGNATURE, (signing_secret,), now=SPEC_TIMESTAMP + 11, tolerance=10)


@pytest.mark.parametrize(
    "changes",
    [{"msg_id": None}, {"msg_id": ""}, {"timestamp": None}, {"timestamp": ""}],
)
def test_missing_headers(changes: dict[str, object], signing_secret: SigningSecret) -> None:
    with pytest.raises(SignatureError, match="missing"):
        check(SPEC_SIGNATURE, (signing_secret,), **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("header", [None, ""])
def test_missing_signature(header: str | None, signing_secret: SigningSecret) -> None:
    with pytest.raises(SignatureError, match="missing"):
        check(header, (signing_secret,))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"timestamp": "1614265330.0"}, "malformed webhook-timestamp"),
        ({"timestamp": "-1614265330"}, "malformed webhook-timestamp"),
        ({"timestamp": "soon"}, "malformed webhook-timestamp"),
        ({"timestamp": "١٦١٤٢٦٥٣٣٠"}, "malformed webhook-timestamp"),  # non-ASCII digits
        ({"timestamp": "9" * 13}, "malformed webhook-timestamp"),
        ({"msg_id": "msg.with.dots"}, "malformed webhook-id"),
        ({"msg_id": "m" * 257}, "malformed webhook-id"),
    ],
)
def test_malformed_headers(
    changes: dict[str, object], reason: str, signing_secret: SigningSecret
) -> None:
    with pytest.raises(SignatureError, match=reason):
        check(SPEC_SIGNATURE, (signing_secret,), **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "header",
    [
        "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",  # no version
        "v1,",
        "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        "v1,%%%",
        "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    ],
)
def test_malformed_signature_header(header: str, signing_secret: SigningSecret) -> None:
    with pytest.raises(SignatureError, match="no v1 signature"):
        check(header, (signing_secret,))


def test_only_the_first_ten_signatures_are_considered(signing_secret: SigningSecret) -> None:
    decoys = " ".join(["v1,bm9wZQ=="] * 10)
    with pytest.raises(SignatureError, match="no signature matches"):
        check(f"{decoys} {SPEC_SIGNATURE}", (signing_secret,))
    check(" ".join(["v1,bm9wZQ=="] * 9 + [SPEC_SIGNATURE]), (signing_secret,))


def test_no_secret_never_verifies() -> None:
    with pytest.raises(SignatureError):
        check(SPEC_SIGNATURE, ())
