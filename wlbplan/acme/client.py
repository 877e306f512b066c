"""One ACME order, from the CSR made on the appliance to the chain the CA issued.

Account (registered, or found again by its key), order, dns-01 challenges through the
spec's hooks (cleared again whatever happens), finalize, download; all of it within the
spec's ``acme.order_timeout``, polling paced by the CA's Retry-After.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import requests
from acme import challenges, client, messages
from acme import errors as acme_errors
from cryptography import x509
from josepy.errors import DeserializationError
from josepy.jwk import JWK

from wlbplan import __version__, certs
from wlbplan.acme import account, chains, hooks, polling, problems
from wlbplan.errors import AcmeError, VerifyError
from wlbplan.limits import PEM, read_file
from wlbplan.model.spec import AcmeSpec

NETWORK_TIMEOUT = 30

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Order:
    chain: tuple[str, ...]
    """PEMs, leaf first, up to (not including) the root."""
    offered: int
    """How many chains the CA offered (1 + its alternates)."""


class _Network(client.ClientNetwork):
    """The library's network, keeping each problem's Retry-After (rateLimited says when)."""

    @classmethod
    def _check_response(cls, response: requests.Response,
                        content_type: str | None = None) -> requests.Response:
        try:
            return super()._check_response(response, content_type=content_type)
        except messages.Error as problem:
            problem.retry_after = response.headers.get("Retry-After")
            raise


def issue(acme: AcmeSpec, csr_pem: bytes, *, state_dir: Path, env: Mapping[str, str],
          progress: Progress = lambda _: None) -> Order:
    """Order a certificate for the CSR; AcmeError (what the CA said, what to do) if not."""
    root = _root(acme)
    # Naive local time: the library's deadlines and Retry-After are.
    deadline = dt.datetime.now() + dt.timedelta(seconds=acme.order_timeout)
    try:
        with _session(acme, state_dir) as (acme_client, key):
            _register(acme_client, acme, key, env)
            progress("account ready; ordering")
            finished = _order(acme_client, acme, csr_pem, deadline, progress)
    except (acme_errors.Error, requests.RequestException) as err:
        raise _network_or_problem(err, acme) from None
    offered = [finished.fullchain_pem, *finished.alternative_fullchains_pem]
    return Order(chains.choose(offered, root, str(acme.root)), len(offered))


def _root(acme: AcmeSpec) -> x509.Certificate:
    try:
        return certs.parse_pem_bundle(read_file(acme.root, PEM))[0]
    except (OSError, VerifyError) as err:
        raise AcmeError(f"acme.root {acme.root}: {err}") from None


@contextmanager
def _session(acme: AcmeSpec, state_dir: Path) -> Iterator[tuple[client.ClientV2, JWK]]:
    path = account.key_path(acme, state_dir)
    key, alg = account.load_or_create(path, create=acme.account.key_file is None)
    # requests takes a CA file's path where the library's signature says bool.
    verify = cast(bool, str(acme.ca_file)) if acme.ca_file is not None else True
    net = _Network(key, alg=alg, verify_ssl=verify, user_agent=f"wlbplan/{__version__}",
                   timeout=NETWORK_TIMEOUT)
    try:
        directory = client.ClientV2.get_directory(acme.directory, net)
        yield client.ClientV2(directory, net), key
    finally:
        net.session.close()


def _register(acme_client: client.ClientV2, acme: AcmeSpec, key: JWK,
              env: Mapping[str, str]) -> None:
    """A new account, or the one this key already has (the CA answers with its URL)."""
    extra: dict[str, Any] = {}
    if acme.eab is not None:
        kid, hmac = env_value(env, acme.eab.kid_env), env_value(env, acme.eab.hmac_env)
        try:
            extra["external_account_binding"] = messages.ExternalAccountBinding.from_data(
                account_public_key=key.public_key(), kid=kid, hmac_key=hmac,
                directory=acme_client.directory)
        except (ValueError, DeserializationError):
            # Never the value itself: only the variable that holds it.
            raise AcmeError(f"the EAB HMAC key in ${acme.eab.hmac_env} is not base64url "
                            "text") from None
    elif acme_client.external_account_required():
        raise problems.explain(messages.Error.with_code(
            "externalAccountRequired", detail="the directory requires external account "
            "binding and the spec gives no acme.eab"), acme.directory)
    if acme.account.email:
        extra["email"] = acme.account.email
    registration = messages.NewRegistration.from_data(terms_of_service_agreed=True, **extra)
    try:
        acme_client.new_account(registration)
    except acme_errors.ConflictError as known:
        acme_client.net.account = messages.RegistrationResource(
            uri=known.location, body=messages.Registration())


def env_value(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "")
    if not value:
        raise AcmeError(f"acme.eab names the environment variable {name}, which is not set: "
                        "export the value the CA gave you")
    return value


def _order(acme_client: client.ClientV2, acme: AcmeSpec, csr_pem: bytes,
           deadline: dt.datetime, progress: Progress) -> messages.OrderResource:
    order = acme_client.new_order(csr_pem)
    published: list[hooks.Record] = []
    try:
        for authz in order.authorizations:
            if authz.body.status == messages.STATUS_VALID:
                continue  # the CA still holds a valid proof for this name
            challenge, record = _dns01(authz, acme_client.net.key)
            published.append(record)
            # Within the order's bound (its clear, on the way out, gets its own).
            hooks.run(acme.challenge, "set", record, timeout=_left(deadline))
            progress(f"TXT record {record.name} set; asking the CA to check it")
            acme_client.answer_challenge(challenge, challenge.response(acme_client.net.key))
        order = polling.authorizations(acme_client, order, deadline)
        progress("challenges valid; finalizing")
        return acme_client.finalize_order(order, deadline, fetch_alternative_chains=True)
    finally:
        _clear(acme, published)


def _left(deadline: dt.datetime) -> float:
    """Seconds a set hook may take: what is left of the order's time, at most a hook's."""
    return max(1.0, min(hooks.HOOK_TIMEOUT, (deadline - dt.datetime.now()).total_seconds()))


def _dns01(authz: messages.AuthorizationResource,
           key: JWK | None) -> tuple[messages.ChallengeBody, hooks.Record]:
    assert key is not None  # the network was made with the account key
    domain = authz.body.identifier.value
    for body in authz.body.challenges:
        if isinstance(body.chall, challenges.DNS01):
            value = body.chall.validation(key)
            return body, hooks.Record(domain, body.chall.validation_domain_name(domain), value)
    offered = ", ".join(str(b.chall.typ) for b in authz.body.challenges)
    raise AcmeError(f"the CA offers no dns-01 challenge for {domain} (only: {offered}); "
                    "wlbplan answers dns-01 challenges only")


def _clear(acme: AcmeSpec, published: list[hooks.Record]) -> None:
    """Every record set is cleared, each tried even when one fails; the first failure is
    raised once all were tried (unless the order's own error is already on its way)."""
    failed: list[AcmeError] = []
    for record in published:
        try:
            hooks.run(acme.challenge, "clear", record)
        except AcmeError as err:
            failed.append(err)
    if failed:
        raise failed[0]


def _network_or_problem(err: BaseException, acme: AcmeSpec) -> AcmeError:
    if isinstance(err, requests.exceptions.SSLError):
        trust = f"acme.ca_file ({acme.ca_file})" if acme.ca_file else "the system store"
        return AcmeError(f"the ACME server at {acme.directory} has an HTTPS certificate that "
                         f"{trust} does not trust: set acme.ca_file to the CA that issued it")
    if isinstance(err, requests.exceptions.ConnectionError):
        return AcmeError(f"cannot reach the ACME server at {acme.directory}: is it running, "
                         "and is the URL right? Nothing was ordered")
    if isinstance(err, requests.exceptions.Timeout):
        return AcmeError(f"the ACME server at {acme.directory} did not answer within "
                         f"{NETWORK_TIMEOUT}s")
    if isinstance(err, requests.RequestException):
        return AcmeError(f"the ACME exchange with {acme.directory} failed: {type(err).__name__}")
    return problems.explain(err, acme.directory, timeout=acme.order_timeout)
