"""Hand-built audits for the audit renderer tests (no lab, no network).

``sample()``: pool1 has 2 errors, 2 warnings and 1 note, listed out of order and one
of them hostile to every output format; pool_2 is clean; pool3 could not be inspected.
``accepted()``: the same with IGNORES applied on the day it ran.
"""

from __future__ import annotations

import datetime as dt

from wlbplan.core.findings import Audit, Finding, TargetAudit
from wlbplan.core.ignores import accept
from wlbplan.model.ignore import Ignore

SPEC = "specs/prod.yaml"
CREATED = "2025-01-31T09:30:00Z"
# Every character some format treats specially: GitHub commands, markdown, XML, rich.
NASTY = ("100% sure: a,b:c\nsecond | line <script>alert(1)</script> `rm -rf /` *x* _y_ "
         "[red]z[/red] #1 ~~s~~ &amp;")
NASTY_HINT = "renew: `wlbplan apply`, 100%"
UNREACHABLE_ERROR = "ssh: connect to host 10.0.0.9 port 22: Connection refused"

VERIFY_OFF = Finding(
    "WLB-POOL-VERIFY-OFF", "warning", "pool1",
    "wlb-verify-cert is false: the pool does not verify WLB's certificate",
    "wlbplan plan shows the steps", "pool", "targets[0].verify", 9)
EXPIRED = Finding(
    "WLB-CERT-EXPIRED", "error", "pool1", "CN=wlb.example.com expired on 2025-01-01",
    "renew it", "CN=wlb.example.com", "targets[0].certificate", 12)
LEFTOVER = Finding(
    "WLB-TRUST-LEFTOVER", "note", "pool1",
    "wlbplan-wlb-2222.pem was installed by wlbplan but does not anchor what WLB serves now",
    "wlbplan apply removes it", "trust:wlbplan-wlb-2222.pem", "targets[0].pool", None)
EXPIRING = Finding(
    "WLB-CERT-EXPIRING", "warning", "pool1", NASTY, NASTY_HINT, "CN=Int CA",
    "targets[0].certificate", 12)
KEY_MODE = Finding(
    "WLB-KEY-PERMISSIONS", "error", "pool1", "/etc/ssl/certs/server.key has mode 0644", "",
    "file:/etc/ssl/certs/server.key", "targets[0].wlb", 5)
UNREACHABLE = Finding(
    "WLB-TARGET-UNREACHABLE", "error", "pool3", UNREACHABLE_ERROR,
    "check SSH access (host, user, key, known_hosts) and the xe path; then audit again",
    "target", "targets[2].pool", 30)

POOL1_SORTED = ("WLB-CERT-EXPIRED", "WLB-KEY-PERMISSIONS", "WLB-CERT-EXPIRING",
                "WLB-POOL-VERIFY-OFF", "WLB-TRUST-LEFTOVER")


def pool1() -> TargetAudit:
    return TargetAudit("pool1", (VERIFY_OFF, EXPIRED, LEFTOVER, EXPIRING, KEY_MODE), 3)


def clean_target(name: str = "pool_2", line: int | None = 20) -> TargetAudit:
    return TargetAudit(name, (), line)


def unreachable(name: str = "pool3", error: str = UNREACHABLE_ERROR) -> TargetAudit:
    finding = Finding(UNREACHABLE.rule_id, "error", name, error, UNREACHABLE.hint, "target",
                      UNREACHABLE.spec_path, UNREACHABLE.line)
    return TargetAudit(name, (finding,), 30, error)


def make_audit(*targets: TargetAudit, spec: str = SPEC) -> Audit:
    return Audit(spec_path=spec, created=CREATED, targets=targets, tool_version="0.1.0")


def sample() -> Audit:
    """3 errors, 2 warnings, 1 note on 3 targets, 1 unreachable."""
    return make_audit(pool1(), clean_target(), unreachable())


def clean() -> Audit:
    return make_audit(clean_target("pool1", 3), clean_target("pool_2", 20))


def warnings_only() -> Audit:
    return make_audit(TargetAudit("pool1", (VERIFY_OFF, LEFTOVER), 3))


ACCEPT_VERIFY_OFF = Ignore("WLB-POOL-VERIFY-OFF", reason="lab pool <b>: verification | later",
                           until=dt.date(2025, 6, 1), line=4)
ACCEPT_EXPIRED = Ignore("WLB-CERT-EXPIRED", "pool1", until=dt.date(2025, 1, 30),
                        reason="renewal ordered", line=8)
ACCEPT_UNREACHABLE = Ignore("WLB-TARGET-UNREACHABLE", "pool3")  # --ignore: no reason
UNUSED = Ignore("WLB-KEY-MISMATCH")
IGNORES = (ACCEPT_VERIFY_OFF, ACCEPT_EXPIRED, ACCEPT_UNREACHABLE, UNUSED)


def accepted() -> Audit:
    """sample() on 2025-01-31 with IGNORES: VERIFY-OFF and pool3's unreachable accepted,
    EXPIRED's acceptance ended the day before (it counts again), KEY-MISMATCH unused.
    Counted: 2 errors, 1 warning, 2 notes (LEFTOVER, the unused ignore); 2 accepted."""
    return accept(sample(), IGNORES)


def fleet(size: int) -> list[TargetAudit]:
    """``size`` targets with a realistic mix: every one a warning and a note (a fresh lab),
    one in ten an error, one in five an accepted finding; every tenth clean."""
    targets = []
    for n in range(size):
        name = f"pool-{n:03d}"
        if n % 10 == 9:
            targets.append(clean_target(name, None))
            continue
        found = [Finding("WLB-POOL-VERIFY-OFF", "warning", name,
                         "wlb-verify-cert is false: the pool does not verify WLB's certificate",
                         "wlbplan plan shows the steps", "pool"),
                 Finding("WLB-CERT-SELF-SIGNED-CA", "warning", name,
                         f"CN=wlb{n}.example.com is self-signed with CA:TRUE", "", "cert"),
                 Finding("WLB-TRUST-LEFTOVER", "note", name,
                         f"wlbplan-wlb-{n:04d}.pem does not anchor what WLB serves now",
                         "wlbplan apply removes it", f"trust:{n}")]
        if n % 10 == 0:
            found.append(Finding("WLB-CERT-EXPIRED", "error", name,
                                 f"CN=wlb{n}.example.com expired on 2025-01-01", "renew it",
                                 "leaf"))
        if n % 5 == 1:
            found.append(Finding("WLB-CERT-NO-SAN", "warning", name, "no subjectAltName", "",
                                 "leaf"))
        targets.append(TargetAudit(name, tuple(found)))
    return targets
