"""The AWS Lambda handler, invoked with the event shapes API Gateway and function URLs send."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Mapping
from typing import Any

import orjson
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

from verihook import Receiver
from verihook.exceptions import MALFORMED_BODY_MESSAGE
from verihook.receiver.adapters.aws_lambda import make_handler


class LambdaContext:
    """The part of the runtime's context object the handler reads."""

    def __init__(self, remaining_ms: int = 30_000) -> None:
        self.remaining_ms = remaining_ms
        self.aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def rest_v1(method: str, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """API Gateway REST API, proxy integration (payload format 1.0)."""
    titled = {"-".join(p.capitalize() for p in k.split("-")): v for k, v in headers.items()}
    return {
        "resource": "/passbase",
        "path": "/passbase",
        "httpMethod": method,
        "headers": titled or None,
        "multiValueHeaders": {k: [v] for k, v in titled.items()} or None,
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/passbase",
            "httpMethod": method,
            "path": "/prod/passbase",
            "stage": "prod",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {"sourceIp": "203.0.113.7", "userAgent": headers.get("user-agent")},
        },
        "body": body.decode("utf-8") if body else None,
        "isBase64Encoded": False,
    }


def http_v2(method: str, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """HTTP API and Lambda function URLs (payload format 2.0), body base64-encoded."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/passbase",
        "rawQueryString": "",
        "headers": {k.lower(): v for k, v in headers.items()},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abcdefghij",
            "domainName": "abcdefghij.lambda-url.eu-west-1.on.aws",
            "http": {
                "method": method,
                "path": "/passbase",
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": 1_700_000_000_000,
        },
        "body": base64.b64encode(body).decode("ascii") if body else None,
        "isBase64Encoded": bool(body),
    }


SHAPES = {"rest-v1": rest_v1, "http-v2": http_v2}


def lambda_send(
    receiver: Receiver, shape: str, handler: Callable[..., dict[str, Any]] | None = None
) -> Send:
    handler = handler or make_handler(receiver)

    def send(method: str, headers: Mapping[str, str], body: bytes) -> Answer:
        if body:
            headers = {**headers, "content-length": str(len(body))}  # as the gateway forwards
        # Through JSON and back, as the runtime hands the handler its event.
        invocation = orjson.loads(orjson.dumps(SHAPES[shape](method, headers, body)))
        response = handler(invocation, LambdaContext())
        assert response["isBase64Encoded"] is False
        assert isinstance(response["body"], str)
        return Answer(response["statusCode"], response["headers"], response["body"].encode())

    return send


@pytest.fixture(params=sorted(SHAPES))
def shape(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_a_valid_event_is_stored_once(receiver: Receiver, shape: str) -> None:
    check_stored_once(lambda_send(receiver, shape), receiver)


@pytest.mark.parametrize("case", REFUSALS, ids=str)
def test_refusals(receiver: Receiver, shape: str, case: Refusal) -> None:
    check_refusal(lambda_send(receiver, shape), receiver, case)


def test_store_down_is_503_until_it_is_back(
    down: tuple[Receiver, Callable[[], None]], shape: str
) -> None:
    receiver, bring_back = down
    check_store_down(lambda_send(receiver, shape), receiver, bring_back)


def test_handlers_have_run_when_the_function_returns(receiver: Receiver, shape: str) -> None:
    seen: list[str] = []

    @receiver.on("VERIFICATION_REVIEWED")
    def reviewed(ev: Any) -> None:
        seen.append(ev.key)

    @receiver.on_change
    async def changed(old: Any, new: Any) -> None:
        seen.append(new.status.value)

    headers, body = signed(event())
    assert lambda_send(receiver, shape)("POST", headers, body).status == 200
    # No waiting here: the instance may be frozen the moment the handler returns.
    assert sorted(seen) == sorted([event().key, "approved"])
    (stored,) = receiver.recent_events()
    assert [r.state for r in receiver.runs(stored.seq)] == ["succeeded", "succeeded"]


def test_a_slow_handler_holds_the_answer_only_as_long_as_allowed(receiver: Receiver) -> None:
    release = threading.Event()
    done: list[str] = []

    def slow(ev: Any) -> None:
        release.wait(30)
        done.append(ev.key)

    receiver.on("VERIFICATION_REVIEWED")(slow)
    handler = make_handler(receiver, handler_wait=0.2)
    headers, body = signed(event())
    assert lambda_send(receiver, "http-v2", handler)("POST", headers, body).status == 200
    assert done == []  # answered while the handler was still blocked
    release.set()
    (stored,) = receiver.recent_events()
    wait_for(lambda: receiver.runs(stored.seq)[0].state == "succeeded", what="the slow run")
    assert done == [event().key]


def test_with_run_handlers_off_the_function_only_stores(receiver: Receiver) -> None:
    seen: list[Any] = []
    receiver.on("VERIFICATION_REVIEWED")(seen.append)
    handler = make_handler(receiver, run_handlers=False)
    headers, body = signed(event())
    assert lambda_send(receiver, "rest-v1", handler)("POST", headers, body).status == 200
    (stored,) = receiver.recent_events()
    assert [(r.state, r.attempts) for r in receiver.runs(stored.seq)] == [("pending", 0)]
    # Any long-running Receiver on the same store (a worker) runs it.
    receiver.start()
    wait_for(lambda: seen, what="the handler, run by the worker")


@pytest.mark.parametrize(
    "invocation",
    [
        {},
        {"Records": [{"eventSource": "aws:sqs"}]},
        {"httpMethod": 42},
        {"version": "2.0", "requestContext": {"http": {"path": "/"}}},
        {"httpMethod": "POST", "headers": {"content-type": "text/plain"}, "body": {"x": 1}},
        [],
    ],
    ids=["empty", "sqs", "bad-method", "v2-no-method", "body-not-a-string", "not-a-dict"],
)
def test_events_that_are_not_http_requests_are_400(receiver: Receiver, invocation: Any) -> None:
    response = make_handler(receiver)(invocation, LambdaContext())
    assert response["statusCode"] == 400
    assert orjson.loads(response["body"]) == {"error": "not an API Gateway or function URL event"}


def test_a_body_that_is_not_base64_gets_the_uniform_400(receiver: Receiver) -> None:
    invocation = http_v2("POST", signed(event())[0], b"x")
    invocation["body"] = "***not base64***"
    response = make_handler(receiver)(invocation, LambdaContext())
    assert (response["statusCode"], orjson.loads(response["body"])) == (
        400,
        {"error": MALFORMED_BODY_MESSAGE},
    )


def test_an_oversized_base64_body_is_refused_before_decoding(receiver: Receiver) -> None:
    # No content-length header: the encoded length alone gives it away.
    invocation = http_v2("POST", {"content-type": "text/plain"}, b"A" * (64 * 1024 + 1))
    response = make_handler(receiver)(invocation, LambdaContext())
    assert response["statusCode"] == 413


def test_a_failing_handler_is_attempted_once_and_left_for_a_retry(receiver: Receiver) -> None:
    @receiver.on("VERIFICATION_REVIEWED")
    def broken(ev: Any) -> None:
        raise RuntimeError("the integrator's database is down")

    headers, body = signed(event())
    answer = lambda_send(receiver, "http-v2")("POST", headers, body)
    assert (answer.status, answer.json()) == (200, {"status": "stored"})  # stored all the same
    (stored,) = receiver.recent_events()
    (run,) = receiver.runs(stored.seq)
    assert (run.state, run.attempts) == ("pending", 1)
    assert run.last_error == "RuntimeError: the integrator's database is down"
