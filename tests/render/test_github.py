"""GitHub workflow commands: one annotation per finding, escaped as @actions/core does."""

from __future__ import annotations

import re

from audit_samples import accepted, clean, make_audit, sample
from hypothesis import given
from hypothesis import strategies as st

from wlbplan.core.findings import Finding, TargetAudit
from wlbplan.render import github, render_audit

COMMAND = re.compile(r"^::(error|warning|notice) (?P<props>[^:]*)::(?P<data>.*)$")


def unescape_data(text: str) -> str:
    """The runner's reverse mapping (ActionCommand.cs), in its order."""
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def unescape_property(text: str) -> str:
    return (text.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":")
            .replace("%2C", ",").replace("%25", "%"))


def test_one_line_per_finding_in_order() -> None:
    lines = github.render(sample()).splitlines()
    assert lines == [
        "::error file=specs/prod.yaml,line=12,title=WLB-CERT-EXPIRED (pool1)::"
        "CN=wlb.example.com expired on 2025-01-01 — renew it",
        "::error file=specs/prod.yaml,line=5,title=WLB-KEY-PERMISSIONS (pool1)::"
        "/etc/ssl/certs/server.key has mode 0644",
        "::warning file=specs/prod.yaml,line=12,title=WLB-CERT-EXPIRING (pool1)::"
        "100%25 sure: a,b:c%0Asecond | line <script>alert(1)</script> `rm -rf /` *x* _y_ "
        "[red]z[/red] #1 ~~s~~ &amp; — renew: `wlbplan apply`, 100%25",
        "::warning file=specs/prod.yaml,line=9,title=WLB-POOL-VERIFY-OFF (pool1)::"
        "wlb-verify-cert is false: the pool does not verify WLB's certificate — "
        "wlbplan plan shows the steps",
        "::notice file=specs/prod.yaml,title=WLB-TRUST-LEFTOVER (pool1)::"
        "wlbplan-wlb-2222.pem was installed by wlbplan but does not anchor what WLB serves now"
        " — wlbplan apply removes it",
        "::error file=specs/prod.yaml,line=30,title=WLB-TARGET-UNREACHABLE (pool3)::"
        "ssh: connect to host 10.0.0.9 port 22: Connection refused — check SSH access "
        "(host, user, key, known_hosts) and the xe path; then audit again",
    ]


def test_every_line_is_one_well_formed_command() -> None:
    out = render_audit(sample(), "github")
    assert out.endswith("\n")
    for line in out.splitlines():
        assert COMMAND.match(line), line


def test_properties_are_escaped() -> None:
    odd = Finding("WLB-POOL-NO-WLB", "warning", "pool1", "m\r\nn", line=7)
    audit = make_audit(TargetAudit("pool1", (odd,)), spec="C:/specs,100%/a:b.yaml")
    assert github.render(audit) == (
        "::warning file=C%3A/specs%2C100%25/a%3Ab.yaml,line=7,"
        "title=WLB-POOL-NO-WLB (pool1)::m%0D%0An\n")


def test_escaping_matches_the_toolkit() -> None:
    assert github.escape_data("a%b\r\nc:d,e") == "a%25b%0D%0Ac:d,e"
    assert github.escape_property("a%b\r\nc:d,e") == "a%25b%0D%0Ac%3Ad%2Ce"
    assert github.escape_data("%0A") == "%250A"  # an escape in the text stays text


PRINTABLE_OR_CRLF = st.text(st.characters(
    codec="utf-8", categories=("L", "M", "N", "P", "S"), include_characters=" \r\n"))


@given(PRINTABLE_OR_CRLF)
def test_escaped_text_round_trips_and_stays_on_one_line(text: str) -> None:
    data, prop = github.escape_data(text), github.escape_property(text)
    assert not {"\n", "\r"} & set(data)
    assert not {"\n", "\r", ":", ","} & set(prop)
    assert unescape_data(data) == text
    assert unescape_property(prop) == text


@given(st.text())
def test_no_unprintable_character_reaches_the_log(text: str) -> None:
    """The runner ends a command at NEL or U+2028 too, and BEL, VT, FF, ESC reach the log
    as they are: only printable characters may leave the escape."""
    assert github.escape_data(text).isprintable()
    assert github.escape_property(text).isprintable()


def test_controls_beyond_cr_and_lf_are_escaped_visibly() -> None:
    hostile = "a\x07b\x0bc\x0cd\x85e\u2028f\u2029g\x1b[31mh\r\n::error::x"
    assert github.escape_data(hostile) == (
        "a\\x07b\\x0bc\\x0cd\\u0085e\\u2028f\\u2029g\\x1b[31mh%0D%0A::error::x")


def test_no_file_or_line_when_unknown() -> None:
    bare = Finding("WLB-POOL-NO-WLB", "note", "p", "m")
    assert github.render(make_audit(TargetAudit("p", (bare,)), spec="")) == (
        "::notice title=WLB-POOL-NO-WLB (p)::m\n")


def test_clean_audit_prints_no_command() -> None:
    assert github.render(clean()) == "\n"


def test_accepted_findings_get_no_annotation_an_expired_acceptance_is_said() -> None:
    lines = github.render(accepted()).splitlines()
    titles = [COMMAND.match(line)["props"].split("title=")[1] for line in lines]
    assert titles == ["WLB-CERT-EXPIRED (pool1)", "WLB-KEY-PERMISSIONS (pool1)",
                      "WLB-CERT-EXPIRING (pool1)", "WLB-TRUST-LEFTOVER (pool1)",
                      "WLB-IGNORE-UNUSED"]  # no VERIFY-OFF, no pool3
    assert lines[0].endswith(" — renew it — acceptance expired on 2025-01-31 (it held until "
                             "2025-01-30: renewal ordered)")
    assert lines[-1] == ("::notice file=specs/prod.yaml,title=WLB-IGNORE-UNUSED::"
                         "WLB-KEY-MISMATCH (--ignore) matched no finding — remove it, or "
                         "correct its rule id or target")
