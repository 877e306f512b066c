"""Polling the CA: paced by its Retry-After, bounded by acme.order_timeout (the set hook
too); a rateLimited answer, as the CA sends it (status 429, a problem document,
Retry-After), becomes when to try again. The CA's answers are captured documents fed to
the library's own code."""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from acme import errors as acme_errors
from acme import messages

from wlbplan.acme import client, hooks, polling, problems
from wlbplan.acme.client import _Network
from wlbplan.errors import AcmeError
from wlbplan.model.spec import ChallengeHooks

DIRECTORY = "https://ca.example.com/dir"
AUTHZ_URL = "https://ca.example.com/authz/1"


def _response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.headers.update({"Content-Type": content_type, **(headers or {})})
    response.url = AUTHZ_URL
    return response


def _authz(status: str, error: dict[str, Any] | None = None) -> messages.AuthorizationResource:
    challenge: dict[str, Any] = {"type": "dns-01", "url": "https://ca.example.com/chall/1",
                                 "status": status, "token": "a" * 43}
    if error is not None:
        challenge["error"] = error
    body = messages.Authorization.from_json({
        "identifier": {"type": "dns", "value": "wlb.example.com"}, "status": status,
        "challenges": [challenge]})
    return messages.AuthorizationResource(body=body, uri=AUTHZ_URL)


@dataclass
class _CA:
    """Answers each poll with the next (status, Retry-After) of its script."""

    script: list[tuple[str, str | None]]
    polls: int = 0
    slept: list[float] = field(default_factory=list)

    def poll(self, authz: messages.AuthorizationResource
             ) -> tuple[messages.AuthorizationResource, requests.Response]:
        status, retry = self.script[min(self.polls, len(self.script) - 1)]
        self.polls += 1
        error = {"type": "urn:ietf:params:acme:error:unauthorized",
                 "detail": "Correct value not found"} if status == "invalid" else None
        headers = {"Retry-After": retry} if retry is not None else {}
        return _authz(status, error), _response(200, {}, headers)


def _order(ca: _CA, seconds: float) -> messages.OrderResource:
    order = messages.OrderResource(body=messages.Order(authorizations=[AUTHZ_URL]),
                                   authorizations=[_authz("pending")])
    deadline = dt.datetime.now() + dt.timedelta(seconds=seconds)
    return polling.authorizations(ca, order, deadline,  # type: ignore[arg-type]
                                  sleep=ca.slept.append)


def test_the_pace_is_the_cas_retry_after() -> None:
    """The library's poll_authorizations sleeps 1 s whatever the CA says."""
    ca = _CA([("pending", "7"), ("pending", None), ("valid", None)])
    done = _order(ca, 60)
    assert [a.body.status for a in done.authorizations] == [messages.STATUS_VALID]
    assert ca.polls == 3
    assert 6 < ca.slept[0] <= 7
    assert 0 < ca.slept[1] <= polling.DEFAULT_WAIT


def test_a_retry_after_past_the_deadline_ends_the_order_at_once() -> None:
    """Not waited for (and not polled again): the order would be over by then."""
    ca = _CA([("pending", "120")])
    with pytest.raises(acme_errors.TimeoutError) as raised:
        _order(ca, 30)
    assert (ca.polls, ca.slept) == (1, [])
    said = str(problems.explain(raised.value, DIRECTORY, timeout=30))
    assert said.startswith(f"the order at {DIRECTORY} did not complete within 30 s "
                           "(acme.order_timeout)")
    assert "raise acme.order_timeout" in said


def test_polling_stops_at_the_deadline() -> None:
    ca = _CA([("pending", None)])
    with pytest.raises(acme_errors.TimeoutError):
        _order(ca, 0)
    assert ca.polls == 1


def test_a_failed_authorization_is_the_cas_refusal() -> None:
    ca = _CA([("pending", "1"), ("invalid", None)])
    with pytest.raises(acme_errors.ValidationError) as raised:
        _order(ca, 60)
    said = str(problems.explain(raised.value, DIRECTORY))
    assert "wlb.example.com: urn:ietf:params:acme:error:unauthorized: Correct value not " \
           "found" in said


def test_rate_limited_as_the_ca_sends_it_says_when_to_try_again() -> None:
    """A 429 with a problem document and Retry-After, through the library's response
    check: the error says when to try again."""
    answer = _response(429, {"type": "urn:ietf:params:acme:error:rateLimited",
                             "detail": "too many new orders recently"},
                       {"Retry-After": "3600"}, content_type="application/problem+json")
    with pytest.raises(messages.Error) as raised:
        _Network._check_response(answer)
    now = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
    said = str(problems.explain(raised.value, DIRECTORY, now))
    assert said == (f"the CA at {DIRECTORY} said: urn:ietf:params:acme:error:rateLimited: too "
                    "many new orders recently (the CA's rate limit was reached: try again "
                    "after 2026-05-01 13:00:00 UTC (in 3600 s))")


def test_a_set_hook_gets_what_is_left_of_the_order_at_most() -> None:
    now = dt.datetime.now()
    assert client._left(now + dt.timedelta(seconds=5)) <= 5
    assert client._left(now - dt.timedelta(seconds=5)) == 1.0  # past: a last second
    assert client._left(now + dt.timedelta(hours=1)) == hooks.HOOK_TIMEOUT
    slow = ChallengeHooks(set=("sleep", "5", "{value}"), clear=("true",))
    started = time.monotonic()
    with pytest.raises(AcmeError, match=r"the challenge's set hook \(sleep\) for "
                                        r"_acme-challenge.wlb.example.com: did not finish "
                                        r"within 0.2s"):
        hooks.run(slow, "set", hooks.Record("wlb.example.com",
                                            "_acme-challenge.wlb.example.com", "1"), 0.2)
    assert time.monotonic() - started < 3
