"""What an ACME CA said, in words an operator can act on: the problem document's type and
detail, and what to do about it. Pure: tested on the library's own exception values."""

from __future__ import annotations

import datetime as dt
from email.utils import parsedate_to_datetime

from acme import errors as acme_errors
from acme import messages

from wlbplan.errors import AcmeError
from wlbplan.model.text import visible

# What to do, by the problem's code (RFC 8555 §6.7 and the CAs' usage).
_ADVICE = {
    "rejectedIdentifier": "the CA will not issue for this name by its policy: use names it "
                          "accepts in certificate.request (common_name, alt_names)",
    "unsupportedIdentifier": "the CA does not issue for this kind of name",
    "caa": "a CAA record of the name forbids this CA: add the CA to the name's CAA records",
    "externalAccountRequired": "the CA requires external account binding: set acme.eab "
                               "(kid_env, hmac_env) and export the key id and HMAC key it "
                               "gave you in those variables",
    "unauthorized": "the CA did not accept the proof: check that the challenge's set hook "
                    "publishes the TXT record where the CA looks (and, with eab, that the "
                    "key id and HMAC key are the ones the CA gave)",
    "incorrectResponse": "the TXT record did not hold the value the CA expected: check the "
                         "challenge's set hook",
    "dns": "the CA could not look the TXT record up: check the DNS zone the hooks change",
    "connection": "the CA could not reach what it had to check",
    "badCSR": "the CA refused the CSR: check certificate.request (key type and size, names)",
    "badSignatureAlgorithm": "the CA does not accept the account key's algorithm",
    "badPublicKey": "the CA does not accept this key: check certificate.request.key",
    "userActionRequired": "the CA needs you to act first (e.g. accept new terms): see its "
                          "instance URL",
    "accountDoesNotExist": "the CA does not know this account key",
    "invalidContact": "the CA refused the account's contact: check acme.account.email",
    "unsupportedContact": "the CA refused the account's contact: check acme.account.email",
    "serverInternal": "the CA failed: try again later",
    "malformed": "the CA could not read the request",
    "orderNotReady": "the order was not ready to be finalized",
}


def explain(err: BaseException, directory: str, now: dt.datetime | None = None,
            timeout: int | None = None) -> AcmeError:
    """One AcmeError for whatever the library raised (or ``err`` itself if it is one);
    ``timeout``: the order's bound (acme.order_timeout), for a timed-out order."""
    if isinstance(err, AcmeError):
        return err
    if isinstance(err, acme_errors.ValidationError):
        return AcmeError(f"the CA at {directory} refused the challenge: "
                         + "; ".join(_failed_authz(a) for a in err.failed_authzrs))
    if isinstance(err, acme_errors.IssuanceError):
        return AcmeError(f"the order failed at {directory}: {problem_text(err.error, now)}")
    if isinstance(err, messages.Error):
        return AcmeError(f"the CA at {directory} said: {problem_text(err, now)}")
    if isinstance(err, acme_errors.TimeoutError):
        within = f"within {timeout} s (acme.order_timeout)" if timeout else "in time"
        return AcmeError(f"the order at {directory} did not complete {within}: the CA kept "
                         "it pending or processing, or asked (Retry-After) to be polled again "
                         "only later. Nothing was installed; try again later, or raise "
                         "acme.order_timeout")
    return AcmeError(f"the ACME exchange with {directory} failed: "
                     f"{visible(str(err) or type(err).__name__)}")


def problem_text(problem: messages.Error, now: dt.datetime | None = None) -> str:
    """``type: detail (what to do)``, with its subproblems and, for rateLimited, when to
    try again (its Retry-After)."""
    code = problem.code or ""
    text = problem.typ + (f": {problem.detail}" if problem.detail else "")
    for sub in problem.subproblems or ():
        where = f" for {sub.identifier.value}" if sub.identifier is not None else ""
        text += f"; {sub.typ}{where}: {sub.detail or ''}".rstrip(": ")
    advice = _ADVICE.get(code)
    if code == "rateLimited":
        advice = "the CA's rate limit was reached: " + retry_text(
            getattr(problem, "retry_after", None), now)
    return visible(text + (f" ({advice})" if advice else ""))


def retry_text(header: str | None, now: dt.datetime | None = None) -> str:
    """When the CA says to try again, from its Retry-After (seconds or an HTTP date)."""
    now = now or dt.datetime.now(dt.UTC)
    if not header:
        return "try again later (the CA gave no Retry-After)"
    when: dt.datetime | None
    if header.strip().isdigit():
        when = now + dt.timedelta(seconds=int(header))
    else:
        try:
            when = parsedate_to_datetime(header)
        except (TypeError, ValueError):
            when = None
    if when is None:
        return "try again later"
    wait = max(0, int((when - now).total_seconds()))
    return f"try again after {when.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC (in {wait} s)"


def _failed_authz(authzr: messages.AuthorizationResource) -> str:
    name = authzr.body.identifier.value
    said = [problem_text(c.error) for c in authzr.body.challenges if c.error is not None]
    return f"{name}: " + ("; ".join(said) or f"authorization {authzr.body.status}")
