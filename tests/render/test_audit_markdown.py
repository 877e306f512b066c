"""Audit markdown: the result first, unreachable targets in a CAUTION block, a summary table
worst first, each target's findings in its own <details>, accepted findings marked, every
text escaped, and never over GitHub's comment limit, for one pool or a fleet."""

from __future__ import annotations

import re

from audit_samples import (
    ACCEPT_VERIFY_OFF,
    accepted,
    clean,
    clean_target,
    fleet,
    make_audit,
    sample,
    unreachable,
)

from wlbplan.core.findings import Finding, TargetAudit
from wlbplan.core.ignores import accept
from wlbplan.model.ignore import Ignore
from wlbplan.render import audit_markdown
from wlbplan.render.markdown import LIMIT

UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")
GITHUB_COMMENT_CHARS = 65_536
LEFT_OUT = re.compile(r"_(\d+) findings? left out to fit the comment")


def tables(out: str) -> list[list[str]]:
    """Every table's body rows (head and delimiter row dropped), in order."""
    found: list[list[str]] = []
    current: list[str] | None = None
    for line in out.splitlines():
        if line.startswith("| "):
            if current is None:
                current = []
                found.append(current)
            current.append(line)
        else:
            current = None
    return [table[2:] for table in found]


def summary_rows(out: str) -> list[list[str]]:
    return [cells(r) for r in tables(out)[0]]


def finding_rows(out: str) -> list[list[str]]:
    return [cells(r) for table in tables(out)[1:] for r in table]


def cells(row: str) -> list[str]:
    return [c.strip() for c in UNESCAPED_PIPE.split(row)[1:-1]]


def fits(out: str) -> None:
    assert len(out) <= GITHUB_COMMENT_CHARS
    assert len(out.encode("utf-8")) <= LIMIT


def test_first_line_is_the_result() -> None:
    lines = audit_markdown.render(sample()).splitlines()
    assert lines[0] == "**Audit:** 3 errors, 2 warnings, 1 note on 3 targets (1 unreachable)"
    assert audit_markdown.render(clean()).splitlines()[0] == "**Audit:** no findings on 2 targets"
    assert audit_markdown.render(accepted()).splitlines()[0] == (
        "**Audit:** 2 errors, 1 warning, 2 notes on 3 targets (1 unreachable); 2 accepted")


def test_clean_audit_has_no_table_and_names_the_clean_targets() -> None:
    out = audit_markdown.render(clean())
    assert out == ("**Audit:** no findings on 2 targets\n\n"
                   "No findings for **pool1**, **pool\\_2**.\n")


def test_unreachable_targets_are_in_a_caution_block() -> None:
    out = audit_markdown.render(sample())
    block = out.split("\n\n")[1].splitlines()
    assert block[0] == "> [!CAUTION]"
    assert block[1] == "> Could not inspect 1 target; nothing else was checked there:"
    assert block[2] == "> - **pool3**: ssh: connect to host 10.0.0.9 port 22: Connection refused"
    assert "[!CAUTION]" not in audit_markdown.render(make_audit(clean_target()))
    # Accepted as unreachable: said in the summary table, not as a caution.
    assert "[!CAUTION]" not in audit_markdown.render(accepted())


def test_the_summary_table_comes_first_worst_first() -> None:
    out = audit_markdown.render(sample())
    assert out.index("| Target | Errors | Warnings | Notes | Accepted |") < out.index("<details")
    assert summary_rows(out) == [["**pool1**", "**2**", "2", "1", "0"],
                                 ["**pool3** (unreachable)", "**1**", "0", "0", "0"]]
    worse = make_audit(TargetAudit("a", (Finding("WLB-TRUST-LEFTOVER", "note", "a", "m"),)),
                       TargetAudit("b", (Finding("WLB-CERT-EXPIRED", "error", "b", "m"),)))
    assert [row[0] for row in summary_rows(audit_markdown.render(worse))] == ["**b**", "**a**"]


def test_each_target_has_its_findings_in_details_worst_first() -> None:
    out = audit_markdown.render(sample())
    assert "<details><summary><b>pool1</b>: 2 errors, 2 warnings, 1 note</summary>\n\n" in out
    assert "<details><summary><b>pool3</b>: unreachable</summary>" in out
    assert out.count("<details>") == out.count("</details>") == 2
    assert "| Level | Rule | Finding |\n| --- | --- | --- |" in out
    rows = finding_rows(out)
    assert all(len(row) == 3 for row in rows)
    assert [(row[0], row[1]) for row in rows] == [
        ("**error**", "`WLB-CERT-EXPIRED`"), ("**error**", "`WLB-KEY-PERMISSIONS`"),
        ("warning", "`WLB-CERT-EXPIRING`"), ("warning", "`WLB-POOL-VERIFY-OFF`"),
        ("note", "`WLB-TRUST-LEFTOVER`"), ("**error**", "`WLB-TARGET-UNREACHABLE`")]
    assert rows[0][2] == "CN=wlb.example.com expired on 2025-01-01<br>*Hint:* renew it"
    assert rows[1][2] == "/etc/ssl/certs/server.key has mode 0644"  # no hint, no label


def test_one_target_alone_is_open() -> None:
    out = audit_markdown.render(make_audit(TargetAudit("pool1", (ACCEPTED_LEFTOVER,))))
    assert "<details open><summary>" in out


ACCEPTED_LEFTOVER = Finding("WLB-TRUST-LEFTOVER", "note", "pool1", "old trust")


def test_accepted_findings_come_last_marked_with_their_reason() -> None:
    out = audit_markdown.render(accepted())
    assert summary_rows(out) == [["**pool1**", "**2**", "1", "1", "1"],
                                 ["**pool3** (unreachable, accepted)", "0", "0", "0", "1"],
                                 ["_ignore list_", "0", "0", "1", "0"]]
    rows = finding_rows(out)
    pool1 = rows[:5]
    assert [row[0] for row in pool1] == ["**error**", "**error**", "warning", "note",
                                         "accepted (warning)"]
    assert pool1[4][2].endswith(
        "<br>*Accepted* until 2025-06-01: lab pool \\<b\\>: verification \\| later "
        "(audit.ignore, line 4)")
    assert pool1[0][2].endswith("<br>***acceptance expired on 2025-01-31 (it held until "
                                "2025-01-30: renewal ordered)***")
    assert rows[5][0] == "accepted (error)"
    assert rows[5][2].endswith("<br>*Accepted* no end date (--ignore)")
    assert rows[6][:2] == ["note", "`WLB-IGNORE-UNUSED`"]
    assert "<summary><b>pool1</b>: 2 errors, 1 warning, 1 note (1 accepted)</summary>" in out
    assert "<summary>ignore list: 0 errors, 0 warnings, 1 note</summary>" in out


def test_messages_are_escaped_and_cannot_break_the_table() -> None:
    out = audit_markdown.render(sample())
    row = next(r for r in finding_rows(out) if r[1] == "`WLB-CERT-EXPIRING`")
    # The message's line break is shown as \n (a Markdown-escaped backslash), not as a line.
    assert row[2] == (
        "100% sure: a,b:c\\\\nsecond \\| line \\<script\\>alert(1)\\</script\\> "
        "\\`rm -rf /\\` \\*x\\* \\_y\\_ \\[red\\]z\\[/red\\] \\#1 \\~\\~s\\~\\~ \\&amp;"
        "<br>*Hint:* renew: \\`wlbplan apply\\`, 100%")
    assert "<script>" not in out
    assert "No findings for **pool\\_2**." in out


def test_names_are_escaped_everywhere() -> None:
    out = audit_markdown.render(make_audit(unreachable("pool_<b>", "a|b\nc")))
    assert "> - **pool\\_\\<b\\>**: a\\|b\\\\nc" in out
    assert summary_rows(out)[0][0] == "**pool\\_\\<b\\>** (unreachable)"
    # Inside <summary> the name is HTML-escaped, Markdown's backslashes would show there.
    assert "<summary><b>pool_&lt;b&gt;</b>: unreachable</summary>" in out


def many_findings(count: int, size: int, target: str = "pool1") -> TargetAudit:
    findings = tuple(Finding("WLB-CERT-EXPIRING" if n % 2 else "WLB-CERT-EXPIRED",
                             "warning" if n % 2 else "error", target,
                             f"finding {n:05d} " + "x" * size, "renew it", f"cert{n}")
                     for n in range(count))
    return TargetAudit(target, findings)


def test_a_large_audit_is_cut_to_fit_and_says_how_many_rows_were_left_out() -> None:
    audit = make_audit(many_findings(2000, 100), unreachable(), clean_target())
    out = audit_markdown.render(audit)
    fits(out)
    kept = finding_rows(out)
    left = LEFT_OUT.search(out)
    assert left is not None
    assert len(kept) + int(left.group(1)) == 2001
    assert len(kept) > 300  # ~170 bytes a row: the budget is used, not wasted
    # Errors first: the rows kept are every error before any warning.
    assert {row[0] for row in kept} == {"**error**"}
    assert "_and 1000 less severe findings, left out to fit the comment_" not in out
    assert "> - **pool3**" in out
    assert out.endswith("No findings for **pool\\_2**.\n")


def test_an_audit_that_fits_is_not_cut() -> None:
    out = audit_markdown.render(make_audit(many_findings(50, 100)))
    assert len(finding_rows(out)) == 50
    assert "left out" not in out


def test_a_200_target_fleet_fits_a_comment_summary_first_least_severe_cut() -> None:
    ignores = [Ignore("WLB-CERT-NO-SAN", reason="old appliances, replaced in Q3")]
    audit = accept(make_audit(*fleet(200)), ignores)
    total = len(audit.findings)
    out = audit_markdown.render(audit)
    fits(out)
    assert out.splitlines()[0] == ("**Audit:** 20 errors, 360 warnings, 180 notes on "
                                   "200 targets; 40 accepted")
    # The whole summary table, before any details: errors first.
    summary = summary_rows(out)
    assert len(summary) == 180
    assert [row[1] for row in summary[:21]] == ["**1**"] * 20 + ["0"]
    assert out.index("| Target |") < out.index("<details>")
    # Rows left out are the least severe: every accepted one, then notes, never an error.
    kept = finding_rows(out)
    left = LEFT_OUT.search(out)
    assert left is not None
    assert len(kept) + int(left.group(1)) == total
    levels = [row[0] for row in kept]
    assert levels.count("**error**") == 20
    assert not any(level.startswith("accepted") for level in levels)
    assert "note" not in levels or levels.count("warning") == 360
    # A target cut says so in its details; one cut whole has only its summary row; the
    # counts add up to the footer's.
    said = sum(int(n) for n in re.findall(r"_and (\d+) less severe findings?, left out", out))
    detailed = set(re.findall(r"<summary><b>([^<]+)</b>", out))
    whole = sum(len(t.findings) for t in audit.targets if t.findings and t.target not in detailed)
    assert said + whole == int(left.group(1))
    assert whole > 0
    assert said > 0
    assert out.count("<details>") == out.count("</details>") == len(detailed) > 100
    assert "No findings for **pool-009**, " in out


def test_many_unreachable_targets_are_cut_too() -> None:
    targets = [unreachable(f"pool{n}", "e" * 250) for n in range(400)]
    out = audit_markdown.render(make_audit(*targets))
    fits(out)
    listed = out.count("> - **pool")
    more = re.search(r"> - _and (\d+) more targets, left out to fit the comment_", out)
    assert more is not None
    assert listed + int(more.group(1)) == 400


def test_thousands_of_targets_cut_the_summary_and_the_clean_list() -> None:
    noisy = [TargetAudit(f"pool{n}", (Finding("WLB-POOL-NO-WLB", "warning", f"pool{n}", "m"),))
             for n in range(3000)]
    quiet = [clean_target(f"quiet{n}", None) for n in range(3000)]
    out = audit_markdown.render(make_audit(*noisy, *quiet))
    fits(out)
    more = re.search(r"\| _and (\d+) more targets, left out to fit the comment_ \|", out)
    assert more is not None
    assert len(summary_rows(out)) - 1 + int(more.group(1)) == 3000
    clean_line = re.search(r"No findings for .* and (\d+) more targets\.\n$", out)
    assert clean_line is not None


def test_long_unreachable_reasons_are_shortened() -> None:
    out = audit_markdown.render(make_audit(unreachable("p", "y" * 1000)))
    line = next(x for x in out.splitlines() if x.startswith("> - **p**"))
    assert line == "> - **p**: " + "y" * 300 + "… (700 more characters)"


def test_accepting_everything_leaves_a_summary_without_cautions() -> None:
    audit = accept(make_audit(TargetAudit("pool1", (ACCEPTED_LEFTOVER,))),
                   [Ignore("WLB-TRUST-LEFTOVER", reason="kept on purpose")])
    out = audit_markdown.render(audit)
    assert out.splitlines()[0] == "**Audit:** no findings on 1 target; 1 accepted"
    assert summary_rows(out) == [["**pool1**", "0", "0", "0", "1"]]
    assert "<summary><b>pool1</b>: no findings (1 accepted)</summary>" in out
    unused = audit_markdown.render(accept(audit, [ACCEPT_VERIFY_OFF]))
    assert "`WLB-IGNORE-UNUSED`" in unused  # VERIFY-OFF matched nothing
