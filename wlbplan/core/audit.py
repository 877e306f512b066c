"""Policy rules over what was observed → findings with stable rule ids (``wlbplan.core.rules``).

Read-only and pure: it judges facts already gathered. It answers the nightly questions —
can the pool talk to WLB now, is that connection verified, will the next restart or
expiry break it, and does reality still match the spec — where ``plan`` answers "what
would fix it". "Will the pool accept it" is OpenSSL's verdict (``certs.pool_accepts``),
the same as plan's gate; cryptography's stricter verifier only adds warnings.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from cryptography import x509

from wlbplan import certs
from wlbplan.core import gate, trusted
from wlbplan.core.desired import managed
from wlbplan.core.findings import Audit, Finding, TargetAudit
from wlbplan.core.plan import TargetPlan, now_utc, plan_one
from wlbplan.core.rules import Level, rule
from wlbplan.core.stunnel_conf import Served as StunnelServes
from wlbplan.errors import VerifyError, WlbplanError
from wlbplan.limits import PEM, read_file
from wlbplan.model.checks import ApplianceChecks, NameLookup
from wlbplan.model.history import LastOrder
from wlbplan.model.lock import LockInfo
from wlbplan.model.observed import Observed
from wlbplan.model.spec import Policy, Spec, Target, cli_command, is_ip_literal


def make_audit(spec: Spec, targets: Sequence[TargetAudit], created: str | None = None) -> Audit:
    """``created``: RFC 3339 in UTC (``now_utc()`` by default)."""
    return Audit(spec_path=str(spec.path), created=created or now_utc(), targets=tuple(targets))


def unreachable(spec: Spec, target: Target, error: str) -> TargetAudit:
    finding = _Where(spec, target).finding(
        "WLB-TARGET-UNREACHABLE", error, about="target", where="pool",
        hint="check SSH access (host, user, key, known_hosts) and the xe path; then audit again")
    return TargetAudit(target.name, (finding,), target.line(), error)


def audit_target(spec: Spec, target: Target, observed: Observed, *,
                 lock: LockInfo | None = None, lock_owner_alive: bool | None = None,
                 conf: StunnelServes | None = None, at: dt.datetime | None = None,
                 last_order: LastOrder | None = None, lookup: NameLookup | None = None,
                 checks: ApplianceChecks | None = None) -> TargetAudit:
    """``lock``: the apply lock found on the coordinator (None: not locked);
    ``lock_owner_alive``: whether its process runs (None: it ran on another machine);
    ``last_order``: how the newest apply with an ACME order ended (the state folder's
    history; None: none there); ``lookup``: how the coordinator resolves WLB's name
    (None: not asked); ``checks``: the appliance's leftovers and addresses."""
    seen = _Seen.of(target, observed)
    planned = _plan(spec, seen)
    where = _Where(spec, target, plannable=not isinstance(planned, str))
    checks = checks or ApplianceChecks()
    found = [*_locked(lock, lock_owner_alive, where), *_pool(seen, where, at),
             *_resolution(lookup, checks, where), *_trust(seen, where),
             *_appliance(seen, where), *_leftovers(checks, where), *_conf(conf, where),
             *_certificates(seen, where, spec.policy, at), *_renew_soon(seen, where, at),
             *_acme(seen, where, at), *_order_failed(last_order, where),
             *_drift(planned, where)]
    return TargetAudit(target.name, tuple(_unique(found)), target.line())


# What makes an apply refuse, or fail half-way, whatever the plan says: plan shows these
# from the audit's own findings, so that plan and audit never tell it two ways.
BLOCKING_RULES = frozenset({"WLB-POOL-LOCKED", "WLB-APPLIANCE-NOT-SERVING", "WLB-KEY-MISMATCH",
                            "WLB-FILE-UNREADABLE", "WLB-STUNNEL-CONF-MISMATCH"})


def blockers(spec: Spec, target: Target, observed: Observed, *,
             lock: LockInfo | None = None, lock_owner_alive: bool | None = None,
             conf: StunnelServes | None = None) -> tuple[Finding, ...]:
    """The findings that stand in the way of an apply of ``target``."""
    seen = _Seen.of(target, observed)
    where = _Where(spec, target)
    found = [*_locked(lock, lock_owner_alive, where), *_appliance(seen, where),
             *_conf(conf, where)]
    return tuple(f for f in _unique(found) if f.rule_id in BLOCKING_RULES)


# ----------------------------------------------------------------------------- context


@dataclass(frozen=True)
class _Where:
    """Builds findings for one target, pointing at the right line of the spec."""

    spec: Spec
    target: Target
    plannable: bool = True
    """Whether a plan can be made for the target (hints offer `wlbplan plan` only then)."""

    def command(self, verb: str, *more: str) -> str:
        """A command line the operator can paste: the real spec path, the target, quoted."""
        return cli_command(verb, str(self.spec.path), *more, "--target", self.target.name)

    def plan_hint(self, what: str) -> str:
        if self.plannable:
            return f"`{self.command('plan')}` shows the steps; {what}"
        return ("no plan can be made as the spec stands (WLB-SPEC-UNPLANNABLE says why): "
                "fix that first")

    def finding(self, rule_id: str, message: str, *, about: str, where: str,
                hint: str | None = None, level: Level | None = None) -> Finding:
        known = rule(rule_id)
        index = self.spec.targets.index(self.target)
        path = f"targets[{index}]" + (f".{where}" if where else "")
        return Finding(rule_id, level or known.level, self.target.name, message,
                       known.help if hint is None else hint, about, path,
                       self.target.line(where))


@dataclass(frozen=True)
class _Seen:
    """The observed facts, parsed once: certificates as objects."""

    target: Target
    observed: Observed
    served: tuple[x509.Certificate, ...]
    in_file: tuple[x509.Certificate, ...]
    trust: tuple[x509.Certificate, ...]

    @classmethod
    def of(cls, target: Target, observed: Observed) -> _Seen:
        app = observed.appliance
        trust = tuple(r.cert for r in trusted.resolve(observed) if r.cert is not None)
        return cls(target, observed, _certs(app.served.chain), _certs(app.cert.chain), trust)

    @property
    def host(self) -> str:
        return self.observed.pool.wlb_host

    @property
    def name_for_policy(self) -> str:
        """The name modern policy checks: the pool's, unless that is an IP the spec names
        (WLB-POOL-BY-IP says so already; the certificate should carry the name)."""
        if is_ip_literal(self.host) and not self.target.wlb.address_is_ip:
            return self.target.wlb.address
        return self.host or self.target.wlb.address


def _cert(pem: str) -> x509.Certificate:
    return certs.parse_pem_bundle(pem.encode())[0]


def _certs(pems: Sequence[str]) -> tuple[x509.Certificate, ...]:
    return tuple(_cert(p) for p in pems)


def _unique(findings: Sequence[Finding]) -> Iterator[Finding]:
    seen: set[tuple[str, str, str]] = set()
    for item in findings:
        key = (item.rule_id, item.about, item.message)
        if key not in seen:
            seen.add(key)
            yield item


# -------------------------------------------------------------------------------- pool


def _locked(held: LockInfo | None, alive: bool | None, where: _Where) -> Iterator[Finding]:
    if held is None:
        return
    if held.unreadable:
        yield where.finding(
            "WLB-POOL-LOCKED", f"the pool is locked: {held.describe()}", about="pool",
            where="pool",
            hint=f"if no apply is running on this pool, remove it with "
                 f"`{where.command('force-unlock')} {held.id}` (then "
                 f"`{where.command('rollback')}` if an apply died here)")
        return
    owner = ("its process is still running on this machine" if alive else
             "its process is gone from this machine" if alive is False else
             "it ran on another machine, where only that machine can tell if it still runs")
    yield where.finding(
        "WLB-POOL-LOCKED",
        f"the pool is locked by an apply: {held.describe()}; {owner}", about="pool",
        where="pool",
        hint=f"if that apply is not running, on {held.owner}: "
             f"`{where.command('rollback')}` (undo) or "
             f"`{where.command('apply', '--resume')}` (finish); "
             f"`{where.command('force-unlock')} {held.id}` only if its journal is lost")


def _pool(seen: _Seen, where: _Where, at: dt.datetime | None) -> Iterator[Finding]:
    pool, wlb = seen.observed.pool, seen.target.wlb
    if not pool.wlb_url:
        yield where.finding("WLB-POOL-NO-WLB", "the pool's wlb-url is empty", about="pool",
                            where="wlb.address")
        return
    if is_ip_literal(seen.host):
        yield _by_ip(seen, where)
    elif pool.wlb_url.lower() != wlb.url.lower():  # host names are case-insensitive
        yield where.finding(
            "WLB-POOL-ADDRESS-MISMATCH",
            f"the pool's wlb-url is {pool.wlb_url}; the spec says {wlb.url}",
            about="pool", where="wlb.address")
    if not pool.wlb_verify_cert:
        yield _verify_off(seen, where)
    elif seen.served:
        yield from _refused(seen, where, at)


def _by_ip(seen: _Seen, where: _Where) -> Finding:
    wlb = seen.target.wlb
    if wlb.address_is_ip:
        fix = ("set wlb.address in the spec to the FQDN the certificate names, and "
               "reconnect the pool by it")
    elif wlb.credentials is not None:
        fix = f"wlbplan apply reconnects it as {wlb.url} (wlb.credentials are given)"
    else:
        fix = (f"reconnect it by name: xe pool-initialize-wlb wlb_url={wlb.url} "
               "wlb_username=… wlb_password=… xenserver_username=… xenserver_password=… "
               "(or give wlb.credentials in the spec and wlbplan apply does it)")
    return where.finding(
        "WLB-POOL-BY-IP",
        f"the pool reaches WLB by IP address ({seen.observed.pool.wlb_url}); xapi's name "
        "check (stunnel checkHost) never matches an IP, so verification cannot succeed",
        about="pool", where="wlb.address", hint=fix)


def _resolution(lookup: NameLookup | None, checks: ApplianceChecks,
                where: _Where) -> Iterator[Finding]:
    """How the coordinator resolves the host of wlb-url, against where WLB answers."""
    if lookup is None:
        return
    if not lookup.found:
        yield where.finding(
            "WLB-POOL-WLB-UNRESOLVED",
            f"the coordinator cannot resolve {lookup.name} (getent hosts: not found): xapi "
            "fails every WLB call with WLB_UNKNOWN_HOST", about="pool", where="wlb.address",
            hint=f"add {lookup.name} to the DNS the coordinator uses (or to /etc/hosts in "
                 "dom0 of every host), then audit again")
        return
    answers, source = _wlb_addresses(lookup.name, checks, where.spec)
    if not answers or answers & set(lookup.addresses):
        return
    yield where.finding(
        "WLB-POOL-WLB-RESOLVES-ELSEWHERE",
        f"the coordinator resolves {lookup.name} to {', '.join(lookup.addresses)}; WLB "
        f"answers on {', '.join(sorted(answers))} ({source})", about="pool",
        where="wlb.address",
        hint=f"correct the coordinator's DNS or /etc/hosts entry for {lookup.name}; if a "
             "NAT stands between them, accept this finding with audit.ignore")


def _wlb_addresses(name: str, checks: ApplianceChecks, spec: Spec) -> tuple[set[str], str]:
    """Where WLB answers: the spec's resolve entry for ``name`` (where wlbplan connects)
    and the appliance's own addresses; either one the coordinator finds will do (an entry
    may point at a tunnel, an appliance behind NAT has others). With the words for them."""
    found, said = set(checks.addresses), ["the appliance's own addresses"] * bool(checks.addresses)
    given = spec.address_of(name)
    if given != name and is_ip_literal(given):
        found.add(str(ipaddress.ip_address(given)))
        said.insert(0, "the spec's resolve entry")
    return found, " and ".join(said)


def _verify_off(seen: _Seen, where: _Where) -> Finding:
    if seen.target.verify:
        return where.finding(
            "WLB-POOL-VERIFY-OFF",
            "wlb-verify-cert is false: the pool does not verify WLB's certificate, though "
            "the spec asks for verify: true", about="pool", where="verify",
            hint=where.plan_hint("wlbplan apply turns it on after a preflight"))
    return where.finding(
        "WLB-POOL-VERIFY-OFF",
        "wlb-verify-cert is false: the pool does not verify WLB's certificate "
        "(the spec says verify: false)", about="pool", where="verify", level="note",
        hint="set verify: true in the spec once the certificate is in place")


def _refused(seen: _Seen, where: _Where, at: dt.datetime | None) -> Iterator[Finding]:
    mode = seen.observed.pool.verify_mode
    try:
        verdict = certs.pool_accepts(seen.served, seen.trust, seen.host, mode=mode, at=at)
    except VerifyError as err:
        verdict = certs.Verdict(ok=False, reason=str(err))
    if verdict.ok:
        return
    unseen = trusted.unseen(trusted.resolve(seen.observed))
    caveat = f" ({trusted.unseen_note(unseen)})" if unseen else ""
    yield where.finding(
        "WLB-POOL-REFUSES-WLB",
        f"wlb-verify-cert is true and the pool refuses what WLB serves at {seen.host}: "
        f"{verdict}; the pool cannot talk to WLB{caveat}",
        about="pool", where="verify",
        hint=gate.advice(verdict.reason, seen.host) + " " +
        where.plan_hint("apply it once it is right."))


# ------------------------------------------------------------------------------- trust


def _trust(seen: _Seen, where: _Where) -> Iterator[Finding]:
    needed = _anchoring(seen)
    shorts = {fp.replace(":", "")[:16].lower() for fp in needed}
    for item in seen.observed.pool.trusted:
        fingerprint = trusted.fingerprint_of(item)
        if item.by_name:  # XenAPI before 1.290: unseen, not damaged; wlbplan's by its name
            if seen.served and managed(item.name) and trusted.short_of(item.name) not in shorts:
                yield where.finding(
                    "WLB-TRUST-LEFTOVER",
                    f"{item.name} was installed by wlbplan but does not anchor what WLB "
                    "serves now", about=f"trust:{item.name}", where="pool")
        elif fingerprint is None:
            yield where.finding(
                "WLB-TRUST-UNREADABLE",
                f"the pool lists CA certificate {item.name} but its content could not "
                "be read on the coordinator", about=f"trust:{item.name}", where="pool")
        elif seen.served and managed(item.name) and fingerprint not in needed:
            yield where.finding(
                "WLB-TRUST-LEFTOVER",
                f"{item.name} was installed by wlbplan but does not anchor what WLB "
                "serves now", about=f"trust:{item.name}", where="pool")


def _anchoring(seen: _Seen) -> set[str]:
    """Fingerprints of the served certificates and of the trusted ones that issued them."""
    needed = {certs.fingerprint(c) for c in seen.served}
    for anchor in seen.trust:
        if any(certs.issued_by(c, anchor) for c in seen.served):
            needed.add(certs.fingerprint(anchor))
    return needed


# --------------------------------------------------------------------------- appliance


def _appliance(seen: _Seen, where: _Where) -> Iterator[Finding]:
    app = seen.observed.appliance
    if app.served.error or not seen.served:
        yield where.finding(
            "WLB-APPLIANCE-NOT-SERVING",
            f"no TLS handshake on port {seen.target.wlb.port}: "
            f"{app.served.error or 'no certificate served'}", about="appliance", where="wlb")
    yield from _files(seen, where)
    # The key is what waits; the CSR stays behind after an install (public, harmless).
    if app.pending_key is not None:
        yield where.finding(
            "WLB-REQUEST-PENDING",
            "a pending key waits on the appliance for its signed certificate",
            about="appliance", where="certificate")


def _leftovers(checks: ApplianceChecks, where: _Where) -> Iterator[Finding]:
    """Backups and pending keys older than audit.leftover_days, one note each."""
    for item in checks.leftovers:
        if item.age_days > where.spec.leftover_days:
            yield where.finding(
                "WLB-APPLIANCE-LEFTOVERS",
                f"{item.path} ({item.kind}) is {item.age_days} days old",
                about=f"file:{item.path}", where="wlb",
                hint=f"if no rollback or request needs it any more, remove {item.path} on "
                     "the appliance")


def _conf(conf: StunnelServes | None, where: _Where) -> Iterator[Finding]:
    """``conf``: what the appliance's stunnel.conf loads (None: the spec names none)."""
    if conf is None:
        return
    paths = where.target.wlb.paths
    wanted = (str(paths.cert), str(paths.key))
    if conf.problem is not None:
        said = f"{where.target.wlb.stunnel_conf}: {conf.problem}"
    elif (conf.cert, conf.key) != wanted:
        said = (f"{where.target.wlb.stunnel_conf} loads cert {conf.cert} and key {conf.key}; "
                f"the spec installs {wanted[0]} and {wanted[1]}")
    else:
        return
    yield where.finding("WLB-STUNNEL-CONF-MISMATCH", said, about="appliance", where="wlb")


def _files(seen: _Seen, where: _Where) -> Iterator[Finding]:
    app = seen.observed.appliance
    for part in (app.cert, app.key):
        if not part.present or part.error:
            problem = part.error or "missing"
            yield where.finding("WLB-FILE-UNREADABLE", f"{part.path}: {problem}",
                                about=f"file:{part.path}", where="wlb")
    if seen.in_file and seen.served and seen.in_file[0] != seen.served[0]:
        yield where.finding(
            "WLB-SERVED-NOT-INSTALLED",
            f"WLB serves {certs.fingerprint(seen.served[0])}, {app.cert.path} holds "
            f"{certs.fingerprint(seen.in_file[0])}", about="appliance", where="wlb")
    public = app.key.public_key
    if seen.in_file and public and not certs.key_matches(seen.in_file[0], public.encode()):
        yield where.finding(
            "WLB-KEY-MISMATCH", f"{app.key.path} is not the key of {app.cert.path}'s "
            "certificate", about=f"file:{app.key.path}", where="wlb")
    if _loose(app.key.mode):
        yield where.finding(
            "WLB-KEY-PERMISSIONS", f"{app.key.path} has mode {app.key.mode}",
            about=f"file:{app.key.path}", where="wlb", hint=f"chmod 600 {app.key.path}")


def _loose(mode: str | None) -> bool:
    try:
        return mode is not None and int(mode, 8) & 0o077 != 0
    except ValueError:
        return False


# ------------------------------------------------------------------------ certificates


_DATES = frozenset({"WLB-CERT-EXPIRED", "WLB-CERT-NOT-YET-VALID"})


def _certificates(seen: _Seen, where: _Where, policy: Policy,
                  at: dt.datetime | None) -> Iterator[Finding]:
    """Policy on the chain the pool sees: what WLB serves, up to the anchor it trusts."""
    if not seen.served:
        return
    ordered = certs.order_chain(seen.served[0], [*seen.served[1:], *seen.trust]).certs
    found = certs.policy_findings(
        ordered, min_days_left=policy.min_days_left, min_rsa_bits=policy.min_rsa_bits,
        forbid_sha1=policy.forbid_sha1, at=at)
    if not any(f.rule_id in _DATES for f in found):
        # An expired chain is already an error; the strict verifier would only repeat it.
        anchors = list(seen.trust)
        if certs.is_self_signed(ordered[-1]) and ordered[-1] not in anchors:
            anchors.append(ordered[-1])  # what the pool trusts once the plan is applied
        found += certs.modern_policy_findings(ordered, anchors, seen.name_for_policy, at=at)
    leaf = ordered[0]
    for item in found:
        hint = item.hint
        if item.rule_id in _RENEWALS and item.subject == leaf.subject.rfc4514_string():
            hint = _renewal(where, leaf.not_valid_after_utc)
        yield where.finding(item.rule_id, item.message, about=item.subject or "certificate",
                            where="certificate", hint=hint, level=item.severity)


_RENEWALS = frozenset({"WLB-CERT-EXPIRED", "WLB-CERT-EXPIRING"})


def _renewal(where: _Where, not_after: dt.datetime) -> str:
    """How to renew WLB's certificate, with the date it must happen by."""
    return f"renew it before {not_after:%Y-%m-%d %H:%M UTC}: {_how_to_renew(where)}"


def _how_to_renew(where: _Where) -> str:
    target = where.target
    if target.certificate.source == "ca-signed":
        return (f"`{where.command('apply', '--replace')}` makes a new key and CSR (a "
                "rotation), then set certificate.signed to the new certificate and run "
                f"`{where.command('apply')}`")
    return (f"make a new self-signed certificate on the appliance (into "
            f"{target.wlb.paths.cert} and {target.wlb.paths.key}), then "
            f"`{where.command('apply')}` makes the pool trust it")


def _renew_soon(seen: _Seen, where: _Where, at: dt.datetime | None) -> Iterator[Finding]:
    """A certificate the pool relies on that is still outside the min_days_left window but
    enters it before the next window ends: the date it does, as the date to renew by."""
    window = dt.timedelta(days=where.spec.policy.min_days_left)
    if not seen.served or not window:
        return
    now = at or dt.datetime.now(dt.UTC)
    acme = where.target.certificate.source == "acme"
    ordered = certs.order_chain(seen.served[0], [*seen.served[1:], *seen.trust]).certs
    for position, cert in enumerate(ordered):
        enters = cert.not_valid_after_utc - window
        if (acme and position == 0) or not now <= enters < now + window:
            continue
        subject = cert.subject.rfc4514_string()
        yield where.finding(
            "WLB-CERT-RENEW-SOON",
            f"{subject}: expires {cert.not_valid_after_utc:%Y-%m-%d}, and is inside "
            f"policy.min_days_left ({window.days} days) from {enters:%Y-%m-%d}",
            about=subject or "certificate", where="certificate",
            hint=f"renew before {enters:%Y-%m-%d}: " + (
                _how_to_renew(where) if position == 0 else
                f"have it reissued, then `{where.command('plan')}` shows the steps"))


# ------------------------------------------------------------------------------- ACME

_OVERDUE = dt.timedelta(days=1)
"""Due for longer than this, a renewal is overdue: a nightly apply would have run."""


def _acme(seen: _Seen, where: _Where, at: dt.datetime | None) -> Iterator[Finding]:
    """When the served ACME certificate is renewed, and whether that is overdue. One that
    is not the spec's at all (another CA, other names) is drift, reported as such."""
    from wlbplan.core.renewal import renewal

    acme = where.target.certificate.acme
    if acme is None or not seen.in_file:
        return
    try:
        root = certs.parse_pem_bundle(read_file(acme.root, PEM))[0]
    except (OSError, WlbplanError):
        return  # the plan cannot be made either: WLB-SPEC-UNPLANNABLE says why
    now = at or dt.datetime.now(dt.UTC)
    found = renewal(where.target, seen.observed, root, now)
    if found.next_due is None:
        return
    when = f"{found.next_due:%Y-%m-%d}"
    expires = seen.in_file[0].not_valid_after_utc
    if now - found.next_due > _OVERDUE:
        yield where.finding(
            "WLB-ACME-RENEWAL-OVERDUE",
            f"renewal was due on {when} and the certificate still served expires "
            f"{expires:%Y-%m-%d}: the nightly apply is not running or its order fails",
            about="certificate", where="certificate",
            hint=f"run `{where.command('apply')}` and read what it says")
        return
    said = "is due now" if now >= found.next_due else f"is due on {when}"
    yield where.finding(
        "WLB-ACME-RENEWAL", f"the next renewal {said} (renew_before_days: "
        f"{acme.renew_before_days} before it expires {expires:%Y-%m-%d})",
        about="certificate", where="certificate",
        hint=f"`{where.command('apply', '--auto-approve')}` renews it from then on")


def _order_failed(last: LastOrder | None, where: _Where) -> Iterator[Finding]:
    """The newest ACME order did not get its certificate installed: the renewal (or first
    issuance) is failing, whatever the date says."""
    if last is None or not last.failed or where.target.certificate.acme is None:
        return
    why = last.reason or "the reason was not recorded: the run was stopped and rolled " \
                         "back later"
    yield where.finding(
        "WLB-ACME-RENEWAL-FAILING",
        f"the last ACME order, in the apply of {last.ended:%Y-%m-%d %H:%M} UTC, failed and "
        f"was {last.outcome.replace('_', ' ')}: {why}",
        about="certificate", where="certificate",
        hint=f"run `{where.command('apply')}` and fix what its error says")


# ------------------------------------------------------------------------------- drift


def _plan(spec: Spec, seen: _Seen) -> TargetPlan | str:
    """The plan ``plan`` would make, or its refusal in words (the target's name left out:
    the finding names it)."""
    try:
        return plan_one(spec, seen.target, seen.observed)
    except WlbplanError as err:
        return str(err).removeprefix(f"{seen.target.name}: ")


def _drift(made: TargetPlan | str, where: _Where) -> Iterator[Finding]:
    if isinstance(made, str):
        yield where.finding("WLB-SPEC-UNPLANNABLE", made, about="plan", where="certificate")
        return
    if not made.changes:
        return
    changes = "; ".join(f"{c.action} {c.path}" for c in made.changes)
    yield where.finding(
        "WLB-SPEC-DRIFT", f"{len(made.changes)} change(s) to match the spec: {changes}",
        about="plan", where="", hint=f"review `{where.command('plan')}` and apply it, or "
        "change the spec")
