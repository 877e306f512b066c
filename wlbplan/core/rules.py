"""The catalogue of rule ids wlbplan reports: one place, stable ids, what each means.

The ids are a contract: SARIF ``ruleId``, JUnit test case names, suppressions and
dashboards key on them, so an id is never renamed or reused. ``level`` is the default
(a finding may be raised or lowered, e.g. ``WLB-POOL-VERIFY-OFF`` is a note when the
spec itself asks for ``verify: false``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Level = Literal["error", "warning", "note"]
LEVELS: Final[tuple[Level, ...]] = ("note", "warning", "error")


@dataclass(frozen=True)
class Rule:
    id: str
    level: Level
    title: str
    """One line: what is wrong (SARIF shortDescription)."""
    help: str
    """Why it matters and how to fix it (SARIF help / fullDescription)."""

    @property
    def name(self) -> str:
        """SARIF's ``name``: the id as an identifier, e.g. ``WlbPoolByIp``."""
        return "".join(part.capitalize() for part in self.id.lower().split("-"))


def _rules(*rules: Rule) -> dict[str, Rule]:
    return {rule.id: rule for rule in rules}


CATALOGUE: Final[dict[str, Rule]] = _rules(
    # --- reaching the target
    Rule("WLB-TARGET-UNREACHABLE", "error", "the target could not be inspected",
         "wlbplan could not read the pool or the appliance (SSH, xe or the appliance's "
         "files); nothing else was checked on it. Fix access and audit again."),
    # --- the pool's WLB connection
    Rule("WLB-POOL-NO-WLB", "warning", "the pool is not connected to a WLB appliance",
         "wlb-url is empty: run xe pool-initialize-wlb, then wlbplan apply."),
    Rule("WLB-POOL-BY-IP", "warning", "the pool reaches WLB by IP address",
         "xapi checks WLB's certificate with stunnel checkHost = the host part of wlb-url, "
         "and OpenSSL's host check never matches an IP against IP subjectAltNames: "
         "verification cannot succeed. Reconnect the pool by the FQDN the certificate "
         "names (xe pool-initialize-wlb wlb_url=<fqdn>:<port> …, or give "
         "wlb.credentials in the spec and let wlbplan apply do it)."),
    Rule("WLB-POOL-ADDRESS-MISMATCH", "warning",
         "the pool's wlb-url is not the spec's wlb.address and port",
         "The pool talks to another address than the spec describes: fix the spec, or "
         "reconnect the pool (xe pool-initialize-wlb)."),
    Rule("WLB-POOL-VERIFY-OFF", "warning", "the pool does not verify WLB's certificate",
         "With wlb-verify-cert=false anyone on the path can impersonate WLB to the pool. "
         "wlbplan plan/apply turns verification on safely (trust, preflight, then the "
         "flag)."),
    Rule("WLB-POOL-REFUSES-WLB", "error",
         "the pool verifies WLB and refuses the certificate WLB serves",
         "With verification on, xapi's stunnel refuses this chain (OpenSSL's verdict is "
         "quoted): the pool cannot talk to WLB now. wlbplan plan shows the fix; wlbplan "
         "rollback settles an interrupted apply."),
    Rule("WLB-POOL-WLB-UNRESOLVED", "error", "the coordinator cannot resolve WLB's host name",
         "`getent hosts` on the coordinator does not know the host of the pool's wlb-url, so "
         "xapi fails every WLB call with WLB_UNKNOWN_HOST. Add the name to the DNS the "
         "coordinator uses (or to dom0's /etc/hosts on every host). Read in the coordinator's "
         "inspection command over SSH; a pool reached through XenAPI offers no way to ask, "
         "and the rule is not checked there."),
    Rule("WLB-POOL-WLB-RESOLVES-ELSEWHERE", "warning",
         "the coordinator resolves WLB's name to another address than WLB's",
         "None of the addresses `getent hosts` gives on the coordinator is where WLB answers: "
         "the spec's resolve entry for the name (where wlbplan itself connects), or one of "
         "the addresses the appliance reports for itself (hostname -I). A stale DNS or "
         "/etc/hosts entry sends the pool to another machine; behind NAT the two "
         "legitimately differ (accept it with audit.ignore). Checked over SSH only, as "
         "WLB-POOL-WLB-UNRESOLVED."),
    Rule("WLB-POOL-LOCKED", "warning", "an apply holds the pool's lock",
         "An apply is running now, or died and left its lock on the coordinator (and its "
         "journal on the machine that ran it), possibly half-way. If it is not running, on "
         "that machine: wlbplan rollback SPEC --target NAME to undo it, or wlbplan apply "
         "SPEC --resume to finish it; wlbplan force-unlock only when the journal is lost."),
    Rule("WLB-TRUST-UNREADABLE", "warning", "an installed CA certificate cannot be read",
         "The pool lists a CA certificate whose file could not be read or parsed on the "
         "coordinator; check the trust folder (pool.trust_dir/certs)."),
    Rule("WLB-TRUST-LEFTOVER", "note", "trust wlbplan installed is no longer needed",
         "A CA certificate named with wlbplan's prefix does not anchor what WLB serves; "
         "wlbplan apply removes it once the spec no longer needs it."),
    Rule("WLB-SPEC-DRIFT", "warning", "the pool or the appliance differs from the spec",
         "wlbplan plan would change something: review it and apply, or change the spec."),
    Rule("WLB-SPEC-UNPLANNABLE", "error", "no safe plan can be made for the spec",
         "wlbplan plan refuses this target (the message says why): fix the spec or the "
         "certificate files first."),
    # --- the appliance
    Rule("WLB-APPLIANCE-NOT-SERVING", "error", "WLB's TLS port does not complete a handshake",
         "stunnel on the appliance is down or refuses TLS; the pool cannot reach WLB. "
         "Check stunnel's configuration and log, then restart it."),
    Rule("WLB-FILE-UNREADABLE", "error",
         "the appliance's certificate or key file is missing or unreadable",
         "stunnel will not start again with it: restore the file (wlbplan keeps backups as "
         "*_orig)."),
    Rule("WLB-SERVED-NOT-INSTALLED", "warning",
         "WLB serves another certificate than the one in its certificate file",
         "A restart is pending, or stunnel reads another file: the next stunnel restart "
         "changes what the pool sees. Restart it in a maintenance window, or check "
         "wlb.paths in the spec."),
    Rule("WLB-KEY-MISMATCH", "error", "the key file does not match the certificate file",
         "stunnel refuses to start with a key that is not the certificate's: the next "
         "restart takes WLB down. Put back the matching key (or certificate)."),
    Rule("WLB-STUNNEL-CONF-MISMATCH", "error",
         "stunnel.conf loads other files than the spec's wlb.paths",
         "wlb.stunnel_conf names the appliance's stunnel configuration; the service on WLB's "
         "port loads other certificate or key files than wlb.paths (or none can be told), "
         "so what wlbplan installs would not be served. Set wlb.paths to the files "
         "stunnel.conf names, or fix stunnel.conf."),
    Rule("WLB-KEY-PERMISSIONS", "error", "the private key is readable by group or others",
         "The key of WLB's certificate must be mode 0600 (or stricter): chmod 600 it."),
    Rule("WLB-REQUEST-PENDING", "note", "a pending key is waiting for its signed certificate",
         "A CA-signed request stage is in progress on the appliance: send the CSR to the "
         "CA and install the signed certificate (certificate.signed), or remove the "
         "pending key."),
    Rule("WLB-APPLIANCE-LEFTOVERS", "note",
         "old backups or a pending key are left on the appliance",
         "Backups (*_orig), files a --replace set aside (*.wlbplan-old) and a pending key "
         "older than audit.leftover_days (default 30), by the appliance's own clock: a "
         "finished rotation's or an abandoned request's. Each holds a key or certificate "
         "that is no longer served; remove it on the appliance once no rollback needs it."),
    # --- certificate policy (wlbplan.certs.policy_findings)
    Rule("WLB-CERT-EXPIRED", "error", "a certificate has expired",
         "TLS clients refuse an expired certificate: renew it."),
    Rule("WLB-CERT-NOT-YET-VALID", "error", "a certificate is not valid yet",
         "TLS clients refuse it until its notBefore: check the clocks or reissue it."),
    Rule("WLB-CERT-EXPIRING", "warning", "a certificate expires within policy.min_days_left",
         "Renew it before it expires (wlbplan plan/apply installs the new one)."),
    Rule("WLB-CERT-RENEW-SOON", "note",
         "a certificate enters the policy.min_days_left window before the next one ends",
         "It has at least policy.min_days_left days left today, but fewer than twice that: "
         "on the date given (its notAfter minus min_days_left) it becomes WLB-CERT-EXPIRING. "
         "Renew it before that date. Not raised for an ACME certificate (WLB-ACME-RENEWAL "
         "dates its renewal) nor when min_days_left is 0."),
    Rule("WLB-CERT-RSA-WEAK", "warning", "an RSA key is smaller than policy.min_rsa_bits",
         "Reissue the certificate with a larger RSA key."),
    Rule("WLB-CERT-KEY-NOT-RSA", "error", "WLB's key is not RSA",
         "xapi's stunnel client offers ECDHE-RSA cipher suites only, so the pool cannot "
         "complete a handshake with a non-RSA WLB certificate: reissue it with RSA."),
    Rule("WLB-CERT-SHA1-SIGNATURE", "warning", "a certificate is signed with SHA-1 (or MD5)",
         "Collisions make SHA-1 signatures forgeable: have it reissued with SHA-256."),
    Rule("WLB-CHAIN-ROOT-NOT-CA", "warning", "the chain's root does not assert CA:TRUE",
         "Reissue the root with basicConstraints CA:TRUE."),
    Rule("WLB-CHAIN-INTERMEDIATE-NOT-CA", "warning", "an intermediate does not assert CA:TRUE",
         "OpenSSL refuses such a chain: reissue the intermediate with CA:TRUE."),
    Rule("WLB-CERT-EKU-NO-SERVERAUTH", "error", "extendedKeyUsage is present without serverAuth",
         "TLS clients refuse it (unsuitable certificate purpose): reissue it with "
         "extendedKeyUsage=serverAuth, or without extendedKeyUsage."),
    # --- modern policy (cryptography.x509.verification; warnings only)
    Rule("WLB-CERT-NO-SAN", "warning", "the certificate has no subjectAltName",
         "The pool accepts it through OpenSSL's CN fallback; RFC 6125 clients do not. "
         "Reissue it with the FQDN as a DNS subjectAltName."),
    Rule("WLB-CERT-SELF-SIGNED-CA", "warning", "the self-signed certificate asserts CA:TRUE",
         "openssl req -x509's default; the pool trusts it as an anchor, RFC 5280 clients "
         "refuse it as a server certificate. Regenerate it with CA:FALSE, or use a "
         "CA-signed certificate."),
    Rule("WLB-CHAIN-CA-NO-KEY-USAGE", "warning", "a CA certificate has no keyUsage extension",
         "OpenSSL accepts it, RFC 5280 does not: reissue the CA with "
         "keyUsage=critical,keyCertSign,cRLSign."),
    Rule("WLB-CHAIN-MODERN-REJECT", "warning",
         "a strict RFC 5280 / CA/Browser verifier rejects the chain",
         "cryptography's verifier objects (the message says why); the pool's own verdict "
         "is reported separately."),
    # --- ACME (certificate.source: acme)
    Rule("WLB-ACME-RENEWAL", "note", "when the ACME certificate is next renewed",
         "The date from which `wlbplan apply` orders a new certificate (renew_before_days "
         "before the served one expires). Run `wlbplan apply SPEC --auto-approve` nightly "
         "(cron or CI): it does nothing until then, then renews."),
    Rule("WLB-ACME-RENEWAL-OVERDUE", "warning",
         "the ACME certificate should have been renewed by now",
         "Its renewal has been due for more than a day: the nightly apply is not running, "
         "or its order fails (its error says why: the CA's problem, the challenge hook, "
         "the account). Run `wlbplan apply SPEC` and read what it says."),
    Rule("WLB-ACME-RENEWAL-FAILING", "warning", "the last ACME order failed",
         "The newest apply that ordered a certificate (the state folder's history) was "
         "rolled back: the finding quotes its error (the CA's problem, the challenge hook, "
         "the account, a timeout). Fix that and run `wlbplan apply SPEC`; the finding goes "
         "once an order succeeds. Audit reads the state folder beside the spec, or "
         "--state-dir."),
    # --- the audit's own settings
    Rule("WLB-IGNORE-UNUSED", "note", "an ignore matches no finding",
         "An accepted finding (--ignore, or audit.ignore in the spec) matched nothing on the "
         "targets inspected: what it accepted is fixed, or its rule id or target is not the "
         "finding's. Remove the entry so that it cannot hide a finding that comes back."),
)


def rule(rule_id: str) -> Rule:
    """The catalogue entry; a KeyError here is a bug (an id used but not documented)."""
    return CATALOGUE[rule_id]


def at_least(level: Level, threshold: Level) -> bool:
    return LEVELS.index(level) >= LEVELS.index(threshold)
