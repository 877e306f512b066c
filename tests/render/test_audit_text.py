"""Audit text: per target its findings worst first with the hint below, then one line."""

from __future__ import annotations

import re

import pytest
from audit_samples import (
    NASTY,
    POOL1_SORTED,
    UNREACHABLE_ERROR,
    accepted,
    clean,
    clean_target,
    fleet,
    make_audit,
    sample,
    unreachable,
    warnings_only,
)

from wlbplan.core.findings import Finding, TargetAudit
from wlbplan.core.ignores import accept
from wlbplan.model.ignore import Ignore
from wlbplan.render import AUDIT_FORMATS, audit_text, render_audit
from wlbplan.render.console import want_color


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
@pytest.mark.parametrize("make", [sample, clean, accepted])
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


# ------------------------------------------------------------------ accepted findings


def test_accepted_findings_are_counted_apart_with_their_reason() -> None:
    lines = lines_of(audit_text.render(accepted()))
    assert lines[-1] == ("Audit: 2 errors, 1 warning, 2 notes on 3 targets (1 unreachable); "
                         "2 accepted.")
    assert "pool1: 2 errors, 1 warning, 1 note (1 accepted)" in lines
    assert "pool3: unreachable, could not be inspected (1 accepted)" in lines
    # Not listed with the findings that count: one line per acceptance, with its count.
    assert not any("WLB-POOL-VERIFY-OFF" in line for line in lines if line.startswith("  w"))
    at = lines.index("Accepted, not counted:")
    assert lines[at + 1:at + 3] == [
        "  1  WLB-POOL-VERIFY-OFF     until 2025-06-01: lab pool <b>: verification | later "
        "(audit.ignore, line 4)",
        "  1  WLB-TARGET-UNREACHABLE  no end date (--ignore)"]


def test_an_expired_acceptance_is_said_under_the_finding_it_no_longer_hides() -> None:
    lines = lines_of(audit_text.render(accepted()))
    at = lines.index("  error    WLB-CERT-EXPIRED  CN=wlb.example.com expired on 2025-01-01")
    assert lines[at + 2] == ("           acceptance expired on 2025-01-31 (it held until "
                             "2025-01-30: renewal ordered)")


def test_the_findings_on_no_target_have_their_own_group() -> None:
    lines = lines_of(audit_text.render(accepted()))
    at = lines.index("ignore list: 0 errors, 0 warnings, 1 note")
    assert lines[at + 1] == ("  note     WLB-IGNORE-UNUSED  WLB-KEY-MISMATCH (--ignore) "
                             "matched no finding")


def test_one_acceptance_over_a_fleet_is_one_line() -> None:
    audit = accept(make_audit(*fleet(200)), [Ignore("WLB-CERT-NO-SAN", reason="replaced")])
    lines = lines_of(audit_text.render(audit))
    at = lines.index("Accepted, not counted:")
    assert lines[at + 1] == "  40  WLB-CERT-NO-SAN  no end date: replaced (--ignore)"
    assert lines[at + 2] == ""


def test_a_reason_cannot_forge_lines_or_styles() -> None:
    hostile = Ignore("WLB-POOL-VERIFY-OFF", reason="ok\n  error    WLB-FAKE  [red]x\x1b[2J")
    out = audit_text.render(accept(warnings_only(), [hostile]), color=True)
    assert "\x1b[2J" not in out
    assert "ok\\n  error    WLB-FAKE  [red]x\\x1b[2J (--ignore)" in ANSI.sub("", out)


# ----------------------------------------------------------------- colour and groups


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_colour_is_by_level_and_only_colour() -> None:
    plain = audit_text.render(accepted())
    coloured = audit_text.render(accepted(), color=True)
    assert ANSI.sub("", coloured) == plain
    assert "\x1b[31merror" in coloured
    assert "\x1b[33mwarning" in coloured
    assert "\x1b[36mnote" in coloured


def test_findings_are_grouped_under_their_target() -> None:
    lines = lines_of(audit_text.render(make_audit(*fleet(20))))
    heads = [line.split(":")[0] for line in lines if line.startswith("pool-")]
    assert heads == [f"pool-{n:03d}" for n in range(20)]
    at = lines.index("pool-010: 1 error, 2 warnings, 1 note")
    block = lines[at + 1:lines.index("", at)]
    assert [line.split()[1] for line in block if not line.startswith("           ")] == [
        "WLB-CERT-EXPIRED", "WLB-CERT-SELF-SIGNED-CA", "WLB-POOL-VERIFY-OFF",
        "WLB-TRUST-LEFTOVER"]


class _Stream:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_colour_for_a_terminal_only_and_never_with_no_color(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert want_color(_Stream(tty=True))
    assert not want_color(_Stream(tty=False))  # a pipe, a file, a CI log
    assert not want_color(object())  # no isatty at all
    monkeypatch.setenv("NO_COLOR", "1")
    assert not want_color(_Stream(tty=True))
    monkeypatch.setenv("NO_COLOR", "")  # no-color.org: set at all, whatever its value
    assert not want_color(_Stream(tty=True))
