"""Audit text: per target its findings worst first with the hint below, then one line."""

from __future__ import annotations

import pytest
from audit_samples import (
    NASTY,
    POOL1_SORTED,
    UNREACHABLE_ERROR,
    clean,
    clean_target,
    make_audit,
    sample,
    unreachable,
)

from wlbplan.core.findings import Finding, TargetAudit
from wlbplan.render import AUDIT_FORMATS, audit_text, render_audit


def lines_of(out: str) -> list[str]:
    return out.splitlines()


def test_summary_line_counts_every_level_and_the_unreachable() -> None:
    out = audit_text.render(sample())
    assert lines_of(out)[-1] == "Audit: 3 errors, 2 warnings, 1 note on 3 targets (1 unreachable)."


def test_summary_line_without_findings() -> None:
    assert lines_of(audit_text.render(clean()))[-1] == "Audit: no findings on 2 targets."
    one = make_audit(clean_target("pool1"))
    assert audit_text.summary_line(one) == "Audit: no findings on 1 target."


def test_summary_line_keeps_zero_counts() -> None:
    only = make_audit(TargetAudit("p", (Finding("WLB-POOL-NO-WLB", "warning", "p", "m"),)))
    assert audit_text.summary_line(only) == "Audit: 0 errors, 1 warning, 0 notes on 1 target."


def test_findings_are_sorted_by_level_then_rule_id() -> None:
    out = audit_text.render(sample())
    ids = [w for line in lines_of(out) for w in line.split() if w.startswith("WLB-")]
    assert ids == [*POOL1_SORTED, "WLB-TARGET-UNREACHABLE"]


def test_each_target_has_a_heading() -> None:
    lines = lines_of(audit_text.render(sample()))
    assert "pool1: 2 errors, 2 warnings, 1 note" in lines
    assert "pool_2: no findings" in lines
    assert "pool3: unreachable, could not be inspected" in lines


def test_a_finding_shows_level_rule_message_and_the_hint_below_it() -> None:
    lines = lines_of(audit_text.render(sample()))
    at = lines.index("  error    WLB-CERT-EXPIRED  CN=wlb.example.com expired on 2025-01-01")
    assert lines[at + 1] == "           hint: renew it"
    # No hint: the next line is the next finding.
    at = lines.index("  error    WLB-KEY-PERMISSIONS  /etc/ssl/certs/server.key has mode 0644")
    assert lines[at + 1].startswith("  warning  WLB-CERT-EXPIRING  ")


def test_unreachable_target_shows_why() -> None:
    lines = lines_of(audit_text.render(sample()))
    at = lines.index("pool3: unreachable, could not be inspected")
    assert lines[at + 1] == f"  error    WLB-TARGET-UNREACHABLE  {UNREACHABLE_ERROR}"
    assert lines[at + 2].startswith("           hint: check SSH access")


def test_user_text_is_printed_literally_and_a_message_stays_on_its_line() -> None:
    lines = lines_of(audit_text.render(sample()))
    first, second = NASTY.split("\n")
    # [red]…[/red] is not markup here; the line break shows as \n, never as a new line.
    at = lines.index(f"  warning  WLB-CERT-EXPIRING  {first}\\n{second}")
    assert lines[at + 1] == "           hint: renew: `wlbplan apply`, 100%"


def test_markup_in_names_and_control_characters_do_not_style_the_output() -> None:
    audit = make_audit(unreachable("[bold]x", "boom \x1b[31mred"))
    out = audit_text.render(audit, color=False)
    assert "[bold]x: unreachable" in out
    assert "\x1b" not in out


def test_colour_only_when_asked() -> None:
    assert "\x1b[" not in audit_text.render(sample(), color=False)
    assert "\x1b[" in audit_text.render(sample(), color=True)


@pytest.mark.parametrize("fmt", AUDIT_FORMATS)
@pytest.mark.parametrize("make", [sample, clean])
def test_every_format_ends_with_a_newline(fmt: str, make) -> None:
    out = render_audit(make(), fmt)
    assert out.endswith("\n")
    assert "-----BEGIN" not in out


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown audit format 'yaml'"):
        render_audit(sample(), "yaml")


def test_pems_in_messages_are_redacted_in_every_format() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----\n"
    leaky = make_audit(unreachable("pool3", f"oops {pem} end"))
    for fmt in AUDIT_FORMATS:
        out = render_audit(leaky, fmt)
        assert "MIIEv" not in out, fmt
        assert "PRIVATE KEY" not in out, fmt
