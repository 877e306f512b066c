"""Changes → ordered steps (DESIGN §5), and the plan file that carries them for review.

A plan records the spec's digest and, per target, the digest of what was observed, so
that applying a saved plan can refuse when either has moved since.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from wlbplan import __version__, certs
from wlbplan.core import gate, trusted
from wlbplan.core.desired import Desired, desired_state
from wlbplan.core.diff import Change, diff, observed_view
from wlbplan.core.steps import Step
from wlbplan.core.steps import acme as acme_steps
from wlbplan.core.steps import appliance as appliance_steps
from wlbplan.core.steps import pool as pool_steps
from wlbplan.errors import VerifyError
from wlbplan.limits import PEM, TooLarge, read_file
from wlbplan.model.observed import ApplianceFacts, Observed
from wlbplan.model.spec import CertificateRequest, Spec, Target

FORMAT_VERSION = "1.2"
_TIME = "%Y-%m-%dT%H:%M:%SZ"

Failure = Literal["refused", "unreachable"]
Status = Literal["planned", "no_changes", "waiting", "refused", "unreachable"]


@dataclass(frozen=True)
class TargetPlan:
    target: str
    observed_digest: str
    stage: str
    changes: tuple[Change, ...]
    steps: tuple[Step, ...]
    notes: tuple[str, ...] = ()
    observed: dict[str, Any] = field(default_factory=dict, hash=False)
    """What was seen (fingerprints, names, flags), to say what moved when a plan is stale."""
    failure: Failure | None = None
    """Why no plan could be made: the gate refused it, or the hosts could not be reached."""
    reason: str = ""
    """For a failure, why; for a target that is waiting, what the operator must do."""
    blockers: tuple[str, ...] = ()
    """What would make an apply refuse or fail whatever the steps (a held lock, a pending
    journal, WLB not serving, a key that does not match): the audit's words."""

    @property
    def status(self) -> Status:
        """One verdict per target, the words every format uses."""
        if self.failure is not None:
            return self.failure
        if self.steps:
            return "planned"
        return "waiting" if self.reason else "no_changes"

    @classmethod
    def failed(cls, name: str, failure: Failure, reason: str) -> TargetPlan:
        return cls(target=name, observed_digest="", stage="none", changes=(), steps=(),
                   failure=failure, reason=reason)
    facts: dict[str, Any] = field(default_factory=dict, hash=False)
    """Everything that was seen (``Observed.to_json()``, public data only): with the spec,
    ``replace`` and ``time`` it renders this plan again, to check a saved one."""
    replace: bool = False
    """``--replace``: a new pending key and CSR even if matching ones exist."""
    issued: tuple[str, ...] = ()
    """ACME: the chain this apply's order returned, which this (install) plan installs."""
    time: str = ""
    """The clock the steps were made with (timestamped backup names), RFC 3339 UTC."""

    @property
    def removes_trust(self) -> bool:
        return any(c.action == "delete" and c.path.startswith("pool.trust") for c in self.changes)


@dataclass(frozen=True)
class Plan:
    spec_path: str
    spec_digest: str
    created: str
    targets: tuple[TargetPlan, ...]
    tool_version: str = __version__
    format_version: str = FORMAT_VERSION

    def counts(self) -> dict[str, int]:
        actions = [c.action for t in self.targets for c in t.changes]
        return {
            "add": actions.count("create"),
            "change": actions.count("update"),
            "remove": actions.count("delete"),
        }

    @property
    def has_changes(self) -> bool:
        return any(t.steps for t in self.targets)

    @property
    def needs_action(self) -> bool:
        """Something to do: steps to apply, or a target waiting on the operator (a CI gate
        must not read a pending CSR as converged)."""
        return any(t.status in ("planned", "waiting") for t in self.targets)

    @property
    def failed(self) -> tuple[TargetPlan, ...]:
        return tuple(t for t in self.targets if t.failure is not None)


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).strftime(_TIME)


def parse_time(text: str) -> dt.datetime:
    """``now_utc()``'s form read back; ValueError for anything else."""
    return dt.datetime.strptime(text, _TIME).replace(tzinfo=dt.UTC)


def make_plan(spec: Spec, targets: list[TargetPlan], created: str | None = None) -> Plan:
    return Plan(spec_path=os.path.abspath(spec.path), spec_digest=spec.digest,
                created=created or now_utc(), targets=tuple(targets))


def plan_one(spec: Spec, target: Target, observed: Observed, *, replace: bool = False,
             stamp: dt.datetime | None = None, issued: tuple[str, ...] = ()) -> TargetPlan:
    """Desired state, the gate (VerifyError when the pool would refuse WLB), diff, steps.
    ``issued``: the chain an ACME order of this apply returned, to install."""
    clock = _clock(stamp)
    desired = desired_state(target, observed, replace=replace, now=clock, issued=issued)
    verdict = gate.check(target, observed, desired, spec.policy)
    if verdict.refusal is not None:
        raise VerifyError(verdict.refusal)
    made = plan_target(spec, target, observed, desired, diff(desired, observed), clock)
    waiting = "" if made.steps else _waiting(spec, target, observed, desired)
    return dataclasses.replace(made, notes=made.notes + verdict.warnings, reason=waiting,
                               replace=replace, issued=issued)


def _clock(stamp: dt.datetime | None) -> dt.datetime:
    # To the second, as recorded: the same record renders the same backup names.
    return (stamp or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)


def _waiting(spec: Spec, target: Target, observed: Observed, desired: Desired) -> str:
    """Nothing to apply, yet not converged: what the operator must do next."""
    if desired.stage == "request":
        return next_step(spec, target) or ""
    if target.certificate.source == "ca-signed" and observed.appliance.pending_key:
        return (f"a rotation is under way: a new key waits on the appliance. Send "
                f"{csr_path(spec, target)} to your CA, then set certificate.signed in "
                f"{spec.path} to the new certificate and run `wlbplan plan` again.")
    return ""


def plan_or_refusal(spec: Spec, target: Target, observed: Observed, *,
                    replace: bool = False, stamp: dt.datetime | None = None) -> TargetPlan:
    """``plan_one``, with the gate's refusal as the target's verdict instead of an error."""
    try:
        return plan_one(spec, target, observed, replace=replace, stamp=stamp)
    except VerifyError as err:
        return TargetPlan.failed(target.name, "refused", str(err))


def next_step(spec: Spec, target: Target) -> str | None:
    """After a request stage: what the operator does next, in one sentence."""
    cert = target.certificate
    if cert.source != "ca-signed":
        return None
    if cert.signer is not None and cert.signed is not None and cert.signed.exists():
        return (f"the signer wrote {cert.signed}; run `wlbplan apply "
                f"{shlex.quote(str(spec.path))}` again to install it.")
    if cert.signed is None or not cert.signed.exists():
        return (f"waiting for the signed certificate: send {csr_path(spec, target)} to your "
                f"CA; then set certificate.signed (and intermediates, root) in {spec.path} "
                "and run `wlbplan plan` again.")
    return None


def plan_target(spec: Spec, target: Target, observed: Observed, desired: Desired,
                changes: tuple[Change, ...], stamp: dt.datetime | None = None) -> TargetPlan:
    clock = _clock(stamp)
    if desired.stage == "request":
        steps = _request_steps(spec, target, observed, changes)
    elif desired.order is not None:
        steps = _order_steps(target, observed, desired, changes)
    else:
        steps = _steps(spec, target, observed, desired, changes, clock)
    notes = desired.notes + ((acme_steps.then(desired.order),) if desired.order else ())
    return TargetPlan(target=target.name, observed_digest=observed.digest(), stage=desired.stage,
                      changes=changes, steps=tuple(steps), notes=notes,
                      observed=observed_view(observed),
                      facts=json.loads(json.dumps(observed.to_json())),  # lists, as read back
                      replace=desired.pending is not None and desired.pending.replace,
                      time=clock.strftime(_TIME))


def render_again(spec: Spec, target: Target, saved: TargetPlan,
                 observed: Observed) -> TargetPlan:
    """What this wlbplan makes of ``saved``'s own record (``observed`` = its facts): a
    saved plan is run only when its steps are exactly these."""
    return plan_one(spec, target, observed, replace=saved.replace,
                    stamp=parse_time(saved.time), issued=saved.issued)


def csr_path(spec: Spec, target: Target) -> Path:
    request = target.certificate.request
    default = spec.path.parent / f"{target.name}.csr"
    return request.csr_out if request is not None and request.csr_out else default


def _key_and_csr(target: Target, request: CertificateRequest, app: ApplianceFacts,
                 changes: tuple[Change, ...]) -> list[Step]:
    """A new key when the diff wants one, and a CSR for a new key or a changed request."""
    paths = {c.path for c in changes}
    steps: list[Step] = []
    if "appliance.pending_key" in paths:
        steps.append(appliance_steps.generate_key(target, request,
                                                  replace=app.pending_key is not None))
    if steps or "appliance.csr" in paths:
        steps.append(appliance_steps.make_csr(target, request,
                                              replace=app.pending_csr is not None))
    return steps


def _request_steps(spec: Spec, target: Target, observed: Observed,
                   changes: tuple[Change, ...]) -> list[Step]:
    """Key (if needed), CSR (if needed), CSR saved locally (if not already), signer."""
    request = target.certificate.request
    assert request is not None  # the spec loader requires it for ca-signed
    app = observed.appliance
    steps = _key_and_csr(target, request, app, changes)
    out = csr_path(spec, target)
    if steps or not _csr_saved(out, app.pending_csr):
        steps.append(appliance_steps.fetch_csr(target, out))
    signer = target.certificate.signer
    if signer is not None and target.certificate.signed is not None:
        steps.append(appliance_steps.sign(target, signer, out, target.certificate.signed))
    return steps


def _order_steps(target: Target, observed: Observed, desired: Desired,
                 changes: tuple[Change, ...]) -> list[Step]:
    """Key and CSR on the appliance (unless matching ones wait there), the ACME order. The
    install steps follow in the same apply once the chain is issued (``then``)."""
    request, order = target.certificate.request, desired.order
    assert request is not None  # the spec loader requires it for source: acme
    assert order is not None
    # The CSR lists the CN among its names: a CA issues for exactly what it lists there.
    request = dataclasses.replace(request, alt_names=tuple(
        f"DNS:{name}" for name in order.names))
    steps = _key_and_csr(target, request, observed.appliance, changes)
    steps.append(acme_steps.order(target, order))
    return steps


def _csr_saved(path: Path, pending: str | None) -> bool:
    """Is the appliance's CSR already saved where the spec says (byte for byte)?"""
    if pending is None:
        return False
    try:
        return read_file(path, PEM) == pending.encode()
    except (OSError, TooLarge):
        return False


def _steps(spec: Spec, target: Target, observed: Observed, desired: Desired,
           changes: tuple[Change, ...], stamp: dt.datetime) -> list[Step]:
    installs = [c for c in changes if c.path.startswith("pool.trust") and c.action != "delete"]
    removals = [c for c in changes if c.path.startswith("pool.trust") and c.action == "delete"]
    chain_changes = any(c.path == "appliance.chain" for c in changes)
    url_changes = any(c.path == "pool.wlb-url" for c in changes)
    verify_changes = any(c.path == "pool.wlb-verify-cert" for c in changes)
    steps: list[Step] = []
    if verify_changes and not desired.verify:
        # Turning verification off goes first: nothing after it can break the connection.
        steps.append(pool_steps.set_verify(target, observed.pool, False))
    for change in installs:
        name = change.after["name"]
        anchor = next(a for a in desired.trust if a.install_name == name)
        if change.action == "update":  # unreadable on the coordinator: remove, then install
            steps.append(pool_steps.uninstall_ca(target, observed.pool, name, None, None))
        steps.append(pool_steps.install_ca(target, observed.pool, anchor))
    if installs:
        steps.append(pool_steps.certificate_sync(target))
    if chain_changes:
        steps += _install_chain_steps(target, observed, desired, stamp)
    if url_changes:
        steps.append(pool_steps.reconnect(target, observed.pool, desired.wlb_url))
    if desired.verify and (installs or chain_changes or verify_changes or url_changes):
        host = desired.wlb_host or observed.pool.wlb_host or target.wlb.address
        bundle = tuple(certs.to_pem([c]).decode() for c in gate.trust_after(desired, observed)) \
            if pool_steps.api(target) else ()
        steps.append(pool_steps.preflight(target, observed.pool, host, spec.address_of(host),
                                          bundle))
        if verify_changes:
            steps.append(pool_steps.set_verify(target, observed.pool, True))
        steps.append(pool_steps.confirm(target))
    contents = _trusted_pems(observed, desired) if removals else {}
    for change in removals:
        name = change.before["name"]
        steps.append(pool_steps.uninstall_ca(target, observed.pool, name, contents.get(name),
                                             change.before.get("fingerprint")))
    if removals:
        steps.append(pool_steps.certificate_sync(target))
    return steps


def _trusted_pems(observed: Observed, desired: Desired) -> dict[str, str]:
    """The content of each trusted certificate wlbplan knows (read, or matched by the
    fingerprint the pool reports): what an uninstall's undo puts back."""
    resolved = trusted.resolve(observed, desired.chain, [a.pem for a in desired.trust])
    return {r.item.name: r.item.pem or certs.to_pem([r.cert]).decode()
            for r in resolved if r.cert is not None}


def _install_chain_steps(target: Target, observed: Observed, desired: Desired,
                         stamp: dt.datetime) -> list[Step]:
    from wlbplan.core.diff import cert_summary

    backup = appliance_steps.backup(target, observed.appliance.backups, stamp)
    leaf = cert_summary(desired.chain[0])["fingerprint"]
    steps = [
        backup,
        appliance_steps.install_chain(target, desired.chain, backup.params["backups"],
                                      desired.key_source),
        appliance_steps.restart(target, leaf),
    ]
    if desired.key_source == "pending" and observed.appliance.pending_csr:
        steps.append(appliance_steps.clear_request(target, observed.appliance.pending_csr))
    return steps
