"""Hand-built audits for the audit renderer tests (no lab, no network).

``sample()``: pool1 has 2 errors, 2 warnings and 1 note, listed out of order and one
of them hostile to every output format; pool_2 is clean; pool3 could not be inspected.
"""

from __future__ import annotations

from wlbplan.core.findings import Audit, Finding, TargetAudit

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
