"""What an ACME CA says, turned into what to do (pure: the library's own values), and the
chain taken among those the CA offers."""

from __future__ import annotations

import datetime as dt

import pytest
from acme import errors as acme_errors
from acme import messages
from differ_fixtures import registry

from wlbplan.acme import chains, problems
from wlbplan.errors import AcmeError

NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
DIRECTORY = "https://ca.example.com/dir"


def _error(code: str, detail: str, **kw: object) -> messages.Error:
    return messages.Error.with_code(code, detail=detail, **kw)


def test_rate_limited_says_when_to_try_again_from_retry_after_seconds() -> None:
    problem = _error("rateLimited", "too many certificates for wlb.example.com")
    problem.retry_after = "3600"
    said = str(problems.explain(problem, DIRECTORY, NOW))
    assert said == (f"the CA at {DIRECTORY} said: urn:ietf:params:acme:error:rateLimited: too "
                    "many certificates for wlb.example.com (the CA's rate limit was reached: "
                    "try again after 2026-05-01 13:00:00 UTC (in 3600 s))")


def test_retry_after_as_an_http_date_or_missing() -> None:
    assert problems.retry_text("Fri, 01 May 2026 12:30:00 GMT", NOW) == \
        "try again after 2026-05-01 12:30:00 UTC (in 1800 s)"
    assert problems.retry_text(None, NOW) == "try again later (the CA gave no Retry-After)"
    assert problems.retry_text("soon", NOW) == "try again later"


def test_rejected_identifier_with_its_subproblems() -> None:
    sub = messages.Error.from_json({
        "type": "urn:ietf:params:acme:error:rejectedIdentifier",
        "detail": "forbidden by policy", "identifier": {"type": "dns", "value": "x.test"}})
    problem = _error("rejectedIdentifier", "order refused", subproblems=(sub,))
    said = str(problems.explain(problem, DIRECTORY))
    assert "urn:ietf:params:acme:error:rejectedIdentifier: order refused; " \
           "urn:ietf:params:acme:error:rejectedIdentifier for x.test: forbidden by policy" in said
    assert said.endswith("(the CA will not issue for this name by its policy: use names it "
                         "accepts in certificate.request (common_name, alt_names))")


def test_a_failed_challenge_names_the_name_and_the_cas_words() -> None:
    challenge = messages.ChallengeBody.from_json({
        "type": "dns-01", "url": "https://ca/chall/1", "status": "invalid", "token": "t" * 43,
        "error": {"type": "urn:ietf:params:acme:error:unauthorized",
                  "detail": "Correct value not found for DNS challenge"}})
    authz = messages.AuthorizationResource(uri="https://ca/authz/1", body=messages.Authorization(
        identifier=messages.Identifier(typ=messages.IDENTIFIER_FQDN, value="wlb.example.com"),
        challenges=[challenge], status=messages.STATUS_INVALID))
    said = str(problems.explain(acme_errors.ValidationError([authz]), DIRECTORY))
    assert said.startswith(f"the CA at {DIRECTORY} refused the challenge: wlb.example.com: "
                           "urn:ietf:params:acme:error:unauthorized: Correct value not found")
    assert "check that the challenge's set hook publishes the TXT record" in said


def test_a_timeout_and_host_text_are_said_safely() -> None:
    assert "did not complete in time" in str(problems.explain(acme_errors.TimeoutError(),
                                                              DIRECTORY))
    said = str(problems.explain(_error("malformed", "bad\x1b[31m\nline"), DIRECTORY))
    assert "\x1b" not in said
    assert "\n" not in said


def test_the_chain_that_ends_at_the_root_is_taken() -> None:
    reg = registry()
    other = reg.pem("other_leaf") + reg.pem("other_intermediate")
    ours = reg.pem("leaf") + reg.pem("intermediate")
    chosen = chains.choose([other, ours], reg.issued["root"].cert, "root.pem")
    assert chosen == (reg.pem("leaf"), reg.pem("intermediate"))
    with pytest.raises(AcmeError, match=r"none of the 1 chain\(s\) the CA offered ends at "
                                        r"acme.root \(root.pem: 'CN=wlbplan Test Root CA'\); "
                                        r"they end at: CN=wlbplan Other Root CA"):
        chains.choose([other], reg.issued["root"].cert, "root.pem")
