"""``XenAPI.Failure`` → wlbplan's error tree: xapi's code kept, a message that says what to
do. Pure: the details are the pool's words (escaped, secrets masked), nothing is called.

The codes and their parameters are xapi's (ocaml/idl/datamodel_errors.ml; the lab's
conformance table, tests/lab/XENAPI_CONFORMANCE.md, cites the lines).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from wlbplan.errors import WlbplanError, XapiError, XapiLoginError
from wlbplan.model.text import visible

MASK = "***"
# datamodel_roles.ml, most privileged first; client-cert is internal to xapi.
ROLES = ("pool-admin", "pool-operator", "vm-power-admin", "vm-admin", "vm-operator",
         "read-only")
_LISTED = re.compile(r"Roles with this permission: ([^)]*)\)")
_LOGIN_CODES = frozenset({"SESSION_AUTHENTICATION_FAILED", "SESSION_AUTHORIZATION_FAILED",
                          "HOST_IS_SLAVE"})


@dataclass(frozen=True)
class CallContext:
    """Who called what, for the message: never the password (only what masks it)."""

    target: str
    call: str
    user: str
    url: str
    login_hint: str = "the password"
    """Where the password comes from, e.g. ``$XS_PASS (pool.credentials.password_env)``."""
    secrets: tuple[str, ...] = ()


def clean_params(details: Sequence[Any], secrets: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """The code and parameters as text: each escaped, a secret anywhere in one masked."""
    items = [str(item) for item in details] or ["UNKNOWN_ERROR"]
    masked = []
    for item in items:
        for secret in secrets:
            if secret:
                item = item.replace(secret, MASK)
        masked.append(visible(item))
    return masked[0], tuple(masked[1:])


def role_needed(message: str) -> str | None:
    """The least role xapi lists as holding a permission (its RBAC_PERMISSION_DENIED
    message: "Roles with this permission: pool-admin, pool-operator, client-cert")."""
    found = _LISTED.search(message)
    if found is None:
        return None
    listed = {r.strip() for r in found.group(1).split(",")}
    public = [r for r in ROLES if r in listed]
    return public[-1] if public else None


def _p(params: tuple[str, ...], index: int) -> str:
    return params[index] if len(params) > index else "?"


Say = Callable[[CallContext, tuple[str, ...]], str]

_SAY: dict[str, Say] = {
    "SESSION_AUTHENTICATION_FAILED": lambda c, p: (
        f"the pool refused the XenAPI login of {c.user!r} ({_p(p, 1)}): check the user and "
        f"{c.login_hint}"),
    "SESSION_AUTHORIZATION_FAILED": lambda c, p: (
        f"{c.user!r} may not log in to this pool ({_p(p, 1)}): with external authentication "
        "only the pool's subjects may; add it (XenCenter: Pool > Users) with the "
        "pool-operator role"),
    "HOST_IS_SLAVE": lambda c, p: (
        f"{c.url} is a pool member, not the coordinator ({_p(p, 0)} is): set pool.url to "
        f"https://{_p(p, 0)}"),
    "SESSION_INVALID": lambda c, p: (
        "the pool ended wlbplan's session (xapi restarted, or the session timed out): run "
        "again"),
    "CERTIFICATE_NAME_INVALID": lambda c, p: (
        f"the pool refused the certificate name {_p(p, 0)!r}: xapi takes letters, digits, "
        "'.', '_' and '-', ending in .pem and not starting with '.'"),
    "CERTIFICATE_ALREADY_EXISTS": lambda c, p: (
        f"the pool already holds a CA certificate named {_p(p, 0)!r}, installed since the "
        "plan was made: run `wlbplan plan` again"),
    "CERTIFICATE_DOES_NOT_EXIST": lambda c, p: (
        f"the pool holds no CA certificate named {_p(p, 0)!r} (removed since the plan was "
        "made): run `wlbplan plan` again"),
    "CERTIFICATE_CORRUPT": lambda c, p: (
        f"the coordinator could not read or remove its copy of {_p(p, 0)!r}: check "
        "/etc/stunnel/certs on the coordinator, then `xe pool-certificate-sync`"),
    "CERTIFICATE_LIBRARY_CORRUPT": lambda c, p: (
        "the coordinator's trust store (/etc/stunnel/certs) could not be written: check its "
        "disk and that folder, then `xe pool-certificate-sync`"),
    "CA_CERTIFICATE_INVALID": lambda c, p: (
        "the pool refused the certificate: xapi takes exactly one PEM certificate per call"),
    "CA_CERTIFICATE_EXPIRED": lambda c, p: (
        f"the pool refused an expired certificate (now {_p(p, 0)}, it ended {_p(p, 1)}): "
        "renew it first"),
    "CA_CERTIFICATE_NOT_VALID_YET": lambda c, p: (
        f"the pool refused a certificate not valid yet (now {_p(p, 0)}, it starts "
        f"{_p(p, 1)}): check the clocks of the CA and of the pool"),
    "SSL_VERIFY_ERROR": lambda c, p: (
        f"the pool refused WLB's certificate ({_p(p, 0)}): what the pool trusts does not "
        "anchor what WLB serves for the name in its wlb_url"),
    "WLB_NOT_INITIALIZED": lambda c, p: (
        "the pool has no WLB connection (wlb_url is empty): connect it to WLB first "
        "(pool-initialize-wlb, or wlb.credentials in the spec)"),
    "WLB_AUTHENTICATION_FAILED": lambda c, p: (
        "WLB refused the login the pool holds for it: reconnect the pool with the right WLB "
        "user and password"),
    "WLB_CONNECTION_REFUSED": lambda c, p: (
        "WLB refused the pool's connection: is WLB's stunnel running on the port in "
        "wlb_url?"),
    "WLB_UNKNOWN_HOST": lambda c, p: (
        "the pool cannot resolve WLB's host name (its DNS), or has no route to it"),
    "WLB_CONNECTION_RESET": lambda c, p: (
        "the connection from the pool to WLB was reset: a failed TLS handshake (xapi's "
        "client offers ECDHE-RSA only) or WLB's stunnel restarting"),
    "WLB_TIMEOUT": lambda c, p: (
        f"WLB did not answer the pool within {_p(p, 0)} s (other-config:wlb_timeout)"),
    "WLB_URL_INVALID": lambda c, p: (
        f"the pool refused the WLB URL {_p(p, 0)!r}: it must be host:port"),
    "MESSAGE_METHOD_UNKNOWN": lambda c, p: (
        f"this pool's xapi has no {_p(p, 0)}: it is older than that call"),
    "MESSAGE_PARAMETER_COUNT_MISMATCH": lambda c, p: (
        f"this pool's xapi takes {_p(p, 1)} parameter(s) for {_p(p, 0)}, not {_p(p, 2)}: "
        "its version differs from what wlbplan saw; run `wlbplan plan` again"),
    "MAP_DUPLICATE_KEY": lambda c, p: (
        f"the pool's {_p(p, 1)} already has the key {_p(p, 3)!r}"),
}


def _rbac(context: CallContext, params: tuple[str, ...]) -> str:
    role = role_needed(_p(params, 1))
    needs = f"it needs the {role} role" if role else "its account lacks the permission"
    return (f"the pool refused {_p(params, 0)} to {context.user!r}: {needs} (xapi: "
            f"{_p(params, 1)}). Give {context.user!r} that role (XenCenter: Pool > Users), "
            "or log in with an account that has it; plan and audit need only read-only")


def from_failure(details: Sequence[Any], context: CallContext) -> WlbplanError:
    """The wlbplan error for ``XenAPI.Failure(details)`` raised by ``context.call``."""
    code, params = clean_params(details, context.secrets)
    # The user and URL come from the operator's environment and spec: shown escaped too.
    context = dataclasses.replace(context, user=visible(context.user), url=visible(context.url))
    if code == "RBAC_PERMISSION_DENIED":
        said = _rbac(context, params)
    elif code in _SAY:
        said = _SAY[code](context, params)
    else:
        shown = f" [{', '.join(params)}]" if params else ""
        said = f"XenAPI {context.call} failed: {code}{shown}"
    message = f"{context.target}: {said} ({code})"
    if code in _LOGIN_CODES:
        return XapiLoginError(message, code, params)
    return XapiError(message, code, params)
