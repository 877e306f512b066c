"""Audit markdown: the result first, unreachable targets in a CAUTION block, one table of
findings worst first, every message escaped, and never over GitHub's comment limit."""

from __future__ import annotations

import re

from audit_samples import clean, clean_target, make_audit, sample, unreachable

from wlbplan.core.findings import Finding, TargetAudit
from wlbplan.render import audit_markdown
from wlbplan.render.markdown import LIMIT

UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def rows(out: str) -> list[str]:
    table = [line for line in out.splitlines() if line.startswith("| ")]
    return table[2:]  # header and delimiter row


def cells(row: str) -> list[str]:
    return [c.strip() for c in UNESCAPED_PIPE.split(row)[1:-1]]


def test_first_line_is_the_result() -> None:
    lines = audit_markdown.render(sample()).splitlines()
    assert lines[0] == "**Audit:** 3 errors, 2 warnings, 1 note on 3 targets (1 unreachable)"
    assert audit_markdown.render(clean()).splitlines()[0] == "**Audit:** no findings on 2 targets"


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


def test_one_table_worst_first_with_four_cells_per_row() -> None:
    out = audit_markdown.render(sample())
    assert "| Level | Rule | Target | Finding |\n| --- | --- | --- | --- |" in out
    table = [cells(r) for r in rows(out)]
    assert all(len(row) == 4 for row in table)
    assert [(row[0], row[1], row[2]) for row in table] == [
        ("**error**", "`WLB-CERT-EXPIRED`", "pool1"),
        ("**error**", "`WLB-KEY-PERMISSIONS`", "pool1"),
        ("**error**", "`WLB-TARGET-UNREACHABLE`", "pool3"),
        ("warning", "`WLB-CERT-EXPIRING`", "pool1"),
        ("warning", "`WLB-POOL-VERIFY-OFF`", "pool1"),
        ("note", "`WLB-TRUST-LEFTOVER`", "pool1"),
    ]
    assert table[0][3] == "CN=wlb.example.com expired on 2025-01-01<br>*Hint:* renew it"
    assert table[1][3] == "/etc/ssl/certs/server.key has mode 0644"  # no hint, no label


def test_messages_are_escaped_and_cannot_break_the_table() -> None:
    out = audit_markdown.render(sample())
    row = next(r for r in rows(out) if "WLB-CERT-EXPIRING" in r)
    # The message's line break is shown as \n (a Markdown-escaped backslash), not as a line.
    assert cells(row)[3] == (
        "100% sure: a,b:c\\\\nsecond \\| line \\<script\\>alert(1)\\</script\\> "
        "\\`rm -rf /\\` \\*x\\* \\_y\\_ \\[red\\]z\\[/red\\] \\#1 \\~\\~s\\~\\~ \\&amp;"
        "<br>*Hint:* renew: \\`wlbplan apply\\`, 100%")
    assert "<script>" not in out
    assert "No findings for **pool\\_2**." in out


def test_names_are_escaped_everywhere() -> None:
    out = audit_markdown.render(make_audit(unreachable("pool_<b>", "a|b\nc")))
    assert "> - **pool\\_\\<b\\>**: a\\|b\\\\nc" in out
    assert cells(rows(out)[0])[2] == "pool\\_\\<b\\>"


def many_findings(count: int, size: int) -> TargetAudit:
    findings = tuple(Finding("WLB-CERT-EXPIRING" if n % 2 else "WLB-CERT-EXPIRED",
                             "warning" if n % 2 else "error", "pool1",
                             f"finding {n:05d} " + "x" * size, "renew it", f"cert{n}")
                     for n in range(count))
    return TargetAudit("pool1", findings)


def test_a_large_audit_is_cut_to_fit_and_says_how_many_rows_were_left_out() -> None:
    audit = make_audit(many_findings(2000, 100), unreachable(), clean_target())
    out = audit_markdown.render(audit)
    assert len(out.encode("utf-8")) <= LIMIT
    kept = rows(out)
    left = re.search(r"_(\d+) findings left out to fit the comment", out)
    assert left is not None
    assert len(kept) + int(left.group(1)) == 2001
    assert len(kept) > 300  # ~170 bytes a row: the budget is used, not wasted
    # Errors first: the rows kept are every error before any warning.
    levels = [cells(r)[0] for r in kept]
    assert levels == sorted(levels, key=lambda lv: lv != "**error**")
    assert "> - **pool3**" in out
    assert out.endswith("No findings for **pool\\_2**.\n")


def test_an_audit_that_fits_is_not_cut() -> None:
    out = audit_markdown.render(make_audit(many_findings(50, 100)))
    assert len(rows(out)) == 50
    assert "left out" not in out


def test_many_unreachable_targets_are_cut_too() -> None:
    targets = [unreachable(f"pool{n}", "e" * 250) for n in range(400)]
    out = audit_markdown.render(make_audit(*targets))
    assert len(out.encode("utf-8")) <= LIMIT
    listed = out.count("> - **pool")
    more = re.search(r"> - _and (\d+) more targets, left out to fit the comment_", out)
    assert more is not None
    assert listed + int(more.group(1)) == 400


def test_long_unreachable_reasons_are_shortened() -> None:
    out = audit_markdown.render(make_audit(unreachable("p", "y" * 1000)))
    line = next(x for x in out.splitlines() if x.startswith("> - **p**"))
    assert line == "> - **p**: " + "y" * 300 + "… (700 more characters)"
