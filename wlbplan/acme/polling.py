"""Waiting for the CA to check the challenges, bounded by the order's deadline and paced
by the CA's Retry-After.

The ``acme`` library's ``poll_authorizations`` sleeps a fixed second between polls and
ignores Retry-After (its ``poll_finalization`` honours it, and is used as it is). This is
that loop with the pace the CA asks for, through the library's own ``poll`` and
``retry_after``: no request or header parsing of its own.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from acme import client, messages
from acme import errors as acme_errors

Clock = Callable[[], dt.datetime]
Sleep = Callable[[float], None]

DEFAULT_WAIT = 1
"""Seconds between polls when the CA gives no Retry-After (the library's pace)."""


def authorizations(acme_client: client.ClientV2, order: messages.OrderResource,
                   deadline: dt.datetime, *, now: Clock = dt.datetime.now,
                   sleep: Sleep = time.sleep) -> messages.OrderResource:
    """The order with every authorization no longer pending. ValidationError (as the
    library raises it) when one failed; TimeoutError when ``deadline`` came first."""
    done = [_settled(acme_client, authz, deadline, now, sleep)
            for authz in order.authorizations]
    failed = [a for a in done if a.body.status != messages.STATUS_VALID]
    if failed:
        raise acme_errors.ValidationError(failed)
    updated: messages.OrderResource = order.update(authorizations=done)
    return updated


def _settled(acme_client: client.ClientV2, authz: messages.AuthorizationResource,
             deadline: dt.datetime, now: Clock, sleep: Sleep
             ) -> messages.AuthorizationResource:
    while True:
        authz, response = acme_client.poll(authz)
        if authz.body.status != messages.STATUS_PENDING:
            return authz
        wake = client.ClientV2.retry_after(response, DEFAULT_WAIT)
        if wake >= deadline:  # not waited for: the order would be over by then
            raise acme_errors.TimeoutError()
        sleep(max(0.0, (wake - now()).total_seconds()))
