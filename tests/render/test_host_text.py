"""Text the hosts choose (certificate names, subjects, issuers, xe and OpenSSL errors) in
every human-facing format: shown, escaped visibly by the one function, never writing a
line of its own (a forged plan line, or a GitHub workflow command in a CI log), never a
live @mention, never hiding a whole target because it is large."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import xml.etree.ElementTree as ET

import pytest
from audit_samples import make_audit
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from wlbplan.core.diff import Change, cert_summary
from wlbplan.core.findings import Finding, TargetAudit
from wlbplan.core.ignores import accept
from wlbplan.core.plan import Plan, TargetPlan
from wlbplan.core.steps import Step
from wlbplan.errors import RemoteCommandError, SpecError, StalePlanError
from wlbplan.lab import pki
from wlbplan.model.command import Command
from wlbplan.model.events import TargetOutcome
from wlbplan.model.ignore import Ignore
from wlbplan.model.observed import (
    ApplianceFacts,
    CertFile,
    KeyFile,
    Observed,
    PoolFacts,
    Served,
    TrustedCert,
)
from wlbplan.render import AUDIT_FORMATS, PLAN_FORMATS, inspection, markdown, render_audit
from wlbplan.render import render_plan as render_plan_as
from wlbplan.render.audit_markdown import render as audit_markdown
from wlbplan.render.events import EventWriter

# Each piece once slipped through some format: forged lines (LF, CR, VT, FF, NEL, U+2028,
# U+2029), workflow commands, terminal escapes (OSC title, clear screen, BEL), a mention,
# rich markup, a Markdown diff prefix.
HOSTILE = ("evil\n::error file=a,line=1::forged\r\n  ::add-mask::secret\x0b\x0cvt\x85nel"
           "\u2028ls\u2029ps\x1b]0;title\x07\x1b[2J @org/team [bold]b[/bold]\n+ fake line")
MARKERS = ("::error", "::add-mask", "+ fake line")
WORKFLOW = re.compile(r"^\s*::")


def hostile_cert(text: str = HOSTILE) -> str:
    key = pki.make_key("ec", 256)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wlb.example.com"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, text)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(pki.now()).not_valid_after(pki.now() + dt.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def assert_contained(out: str, *, commands: bool = False) -> None:
    """Every line printable (no raw CR, VT, FF, NEL, U+2028/9, ESC, BEL); no line a
    workflow command unless the format is made of them; the host text still shown."""
    for line in out.split("\n"):
        assert line.isprintable(), repr(line)
        if not commands:
            assert not WORKFLOW.match(line), line
            assert not line.startswith("+ fake line"), line
    assert "forged" in out


@pytest.fixture(scope="module")
def pem() -> str:
    return hostile_cert()


@pytest.fixture(scope="module")
def plan(pem: str) -> Plan:
    name = f"wlbplan-wlb-\x1b[31m{HOSTILE}.pem"
    summary = {**cert_summary(pem), "name": name, "role": "wlb"}
    changes = (
        Change(f"pool.trust[{name}]", "create", None, summary, f"the appliance said {HOSTILE}"),
        Change("appliance.chain", "update", [cert_summary(pem)], [cert_summary(pem)], "r"),
    )
    command = Command(("xe", "pool-uninstall-ca-certificate", f"name={name}")).display()
    steps = (Step("pool.uninstall_ca", "pool", f"remove {name}", (command,), (command,)),)
    target = TargetPlan("pool1", "sha256:" + "cd" * 32, "trust", changes, steps,
                        (f"note quoting {HOSTILE}",), blockers=(f"WLB serves {HOSTILE}",))
    refused = TargetPlan.failed("pool2", "refused", f"the gate said: {HOSTILE}")
    down = TargetPlan.failed("pool3", "unreachable", f"ssh: {HOSTILE}")
    waiting = TargetPlan("pool4", "sha256:" + "cd" * 32, "request", (), (),
                         reason=f"send the CSR for {HOSTILE}")
    return Plan(spec_path="spec.yaml", spec_digest="ab" * 32, created="2025-01-31T09:30:00Z",
                targets=(target, refused, down, waiting))


@pytest.mark.parametrize("fmt", PLAN_FORMATS)
def test_every_plan_format_contains_host_text(plan: Plan, fmt: str) -> None:
    out = render_plan_as(plan, fmt)
    assert_contained(out)
    if fmt == "json":  # data: the value itself, JSON-escaped
        doc = json.loads(out)
        assert doc["targets"][0]["changes"][0]["reason"] == f"the appliance said {HOSTILE}"


def test_the_text_plan_shows_the_command_that_runs(plan: Plan) -> None:
    out = render_plan_as(plan, "text")
    # bash's $'...' form: the ESC that reaches xe is shown, not stripped.
    assert "xe pool-uninstall-ca-certificate $'name=wlbplan-wlb-\\x1b[31mevil\\n::error" in out


def without_code(text: str) -> str:
    """Markdown outside fences and code spans, where GitHub turns @name into a mention."""
    text = re.sub(r"^(\s*)(`{3,}).*?^\1\2\s*$", "", text, flags=re.S | re.M)
    return re.sub(r"(`+).*?\1", "", text)


def test_markdown_keeps_diff_signs_and_mentions_no_one(plan: Plan) -> None:
    out = markdown.render(plan)
    body = out.split("```diff\n", 1)[1].split("\n```", 1)[0]
    assert {line[:1] for line in body.splitlines()} <= {"+", "-", "~", "#", " ", ""}
    assert "@org/team" not in without_code(out)
    assert "@&#8203;org/team" in out
    assert "\r" not in out


@pytest.fixture(scope="module")
def audit(pem: str):
    subject = cert_summary(pem)["subject"]
    reject = Finding("WLB-CHAIN-MODERN-REJECT", "warning", "pool1",
                     f"a strict RFC 5280 verifier rejects this chain (cryptography's verifier: "
                     f"{subject})", "fix what the message names", subject,
                     "targets[0].certificate", 7)
    named = Finding("WLB-TRUST-LEFTOVER", "note", "pool1", f"{HOSTILE} was installed by "
                    "wlbplan", "wlbplan apply removes it", f"trust:{HOSTILE}")
    down = Finding("WLB-TARGET-UNREACHABLE", "error", "pool2", f"xe said: {HOSTILE}")
    return make_audit(TargetAudit("pool1", (reject, named), 3),
                      TargetAudit("pool2", (down,), 9, f"xe said: {HOSTILE}"))


@pytest.mark.parametrize("fmt", AUDIT_FORMATS)
def test_every_audit_format_contains_host_text(audit, fmt: str) -> None:
    out = render_audit(audit, fmt)
    assert_contained(out, commands=fmt == "github")
    if fmt == "github":
        lines = out.splitlines()
        assert len(lines) == 3  # one command per finding, nothing forged
        assert all(re.match(r"^::(error|warning|notice) [^:]*::", line) for line in lines)
    if fmt == "junit":
        ET.fromstring(out)
    if fmt in ("json", "sarif"):
        json.loads(out)
    if fmt == "markdown":
        assert "@org/team" not in without_code(out)
        assert "\x07" not in out
        assert "\x1b" not in out


@pytest.mark.parametrize("fmt", AUDIT_FORMATS)
def test_every_audit_format_contains_the_reason_of_an_acceptance(audit, fmt: str) -> None:
    """A reason is the spec's text, not a host's, but shown the same way: escaped."""
    made = accept(audit, [
        Ignore("WLB-CHAIN-MODERN-REJECT", reason=HOSTILE),  # in force
        Ignore("WLB-TRUST-LEFTOVER", until=dt.date(2000, 1, 1), reason=HOSTILE),  # expired
    ])
    out = render_audit(made, fmt)
    assert_contained(out, commands=fmt == "github")
    if fmt == "github":
        assert len(out.splitlines()) == 2  # the accepted finding is not annotated


def test_the_modern_reject_message_quotes_the_subject_escaped(audit) -> None:
    row = next(line for line in audit_markdown(audit).splitlines()
               if "WLB-CHAIN-MODERN-REJECT" in line)
    assert "@&#8203;org/team" in row
    # Shown, its backslashes Markdown-escaped (the ; is RFC 4514's own escape).
    assert "\\\\x1b\\]0\\\\;title\\\\x07\\\\x1b\\[2J" in row


def observed(pem: str) -> Observed:
    appliance = ApplianceFacts(
        cert=CertFile(f"/etc/ssl/{HOSTILE}.pem", True, (pem,)),
        key=KeyFile("/etc/ssl/server.key", True, "600", "root", f"g{HOSTILE}",
                    error=f"openssl: {HOSTILE}"),
        served=Served(error=f"s_client: {HOSTILE}"),
        backups=(f"server.pem_{HOSTILE}",), hostname=f"wlb{HOSTILE}")
    pool = PoolFacts("uuid", "xs1", ("xs1",), "25.33.1", f"wlb:8012{HOSTILE}", "u", True, False,
                     (TrustedCert(f"name{HOSTILE}", pem), TrustedCert(f"unread{HOSTILE}")))
    return Observed(target="pool1", appliance=appliance, pool=pool)


@pytest.mark.parametrize("color", [False, True])
def test_inspect_text_contains_host_text(pem: str, color: bool) -> None:
    out = inspection.to_text([observed(pem)], color=color)
    if color:  # the colours are the renderer's own escapes, nothing else is
        out = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert_contained(out)
    assert "[bold]b[/bold]" in out  # not markup: shown as it is


def test_inspect_json_is_data_on_printable_lines(pem: str) -> None:
    out = inspection.to_json([observed(pem)])
    assert all(line.isprintable() for line in out.split("\n"))
    assert json.loads(out)["targets"][0]["appliance"]["served"]["error"] == f"s_client: {HOSTILE}"


def test_progress_lines_contain_host_text() -> None:
    stream = io.StringIO()
    writer = EventWriter(stream, as_json=False)
    writer({"type": "apply_errored", "target": "pool1", "message": f"pool1.01: {HOSTILE}"})
    outcome = TargetOutcome("pool1", "rollback_incomplete", error=f"xe: {HOSTILE}",
                            undo_failures=(f"pool1.01: {HOSTILE}",), journal=f"/j/{HOSTILE}")
    writer.summary([outcome], {"pool1": f"the appliance serves {HOSTILE}"})
    writer.note("pool1", f"sign {HOSTILE}")
    assert_contained(stream.getvalue())


def test_progress_json_lines_stay_one_per_event() -> None:
    stream = io.StringIO()
    writer = EventWriter(stream, as_json=True)
    writer({"type": "apply_errored", "target": "pool1", "message": HOSTILE})
    (line,) = stream.getvalue().splitlines()
    assert json.loads(line)["@message"] == HOSTILE


def test_error_messages_stay_on_their_line() -> None:
    from wlbplan.cli import error_text

    said = error_text(RemoteCommandError(f"pool-certificate-list failed: {HOSTILE}"))
    assert_contained(said)
    assert len(said.splitlines()) == 1
    # Messages made of lines keep them; what they quote is escaped line by line.
    stale = error_text(StalePlanError(f"Saved plan is stale:\n  pool1: subject {HOSTILE!r}"))
    assert stale.split("\n")[0] == "Error: Saved plan is stale:"
    spec = error_text(SpecError("invalid spec s.yaml (1 error):\n  s.yaml:1:1: error: x"))
    assert spec.split("\n")[1] == "  s.yaml:1:1: error: x"


# ---------------------------------------------------------------- one oversized value (#26)

def test_a_huge_subject_does_not_hide_its_target_from_the_pr_comment() -> None:
    huge = hostile_cert("y" * 100_000)
    summary = cert_summary(huge)
    change = Change("pool.trust[wlbplan-wlb-1.pem]", "create", None, summary, "r")
    step = Step("pool.confirm", "pool", "confirm", ("xe pool-retrieve-wlb-configuration",))
    targets = (TargetPlan("big", "sha256:" + "00" * 32, "trust", (change,), (step,)),
               TargetPlan("small", "sha256:" + "00" * 32, "trust",
                          (Change("pool.wlb-verify-cert", "update", False, True, "r"),), (step,)))
    out = markdown.render(Plan("s.yaml", "ab" * 32, "2025-01-31T09:30:00Z", targets))
    assert len(out.encode()) <= markdown.LIMIT
    assert out.count("<details>") == 2  # both targets, in full
    assert "left out" not in out.replace("more characters", "")
    assert "more characters)" in out  # the field says it was cut


def test_a_huge_message_does_not_push_other_findings_out() -> None:
    big = Finding("WLB-CHAIN-MODERN-REJECT", "warning", "pool1", "z" * 100_000)
    others = tuple(Finding("WLB-POOL-VERIFY-OFF", "warning", f"pool{n}", "off")
                   for n in range(2, 6))
    out = audit_markdown(make_audit(TargetAudit("pool1", (big,)),
                                    *(TargetAudit(f.target, (f,)) for f in others)))
    assert len(out.encode()) <= markdown.LIMIT
    assert "left out" not in out
    assert all(f"| **{f.target}** |" in out for f in others)  # in the summary table
    assert out.count("`WLB-POOL-VERIFY-OFF`") == len(others)  # and in full
