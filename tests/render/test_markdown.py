"""The pull-request comment: summary first, warning banner, collapsed targets, size cap."""

from __future__ import annotations

import dataclasses
import re

from wlbplan.core.diff import Change
from wlbplan.core.plan import Plan, TargetPlan
from wlbplan.core.steps import Step
from wlbplan.render import markdown, render_plan

FENCE = re.compile(r"^\s*(`{3,})(\w*)$")


def fences_balanced(out: str) -> bool:
    """Every opening fence is closed by a fence of the same length."""
    open_fence = None
    for line in out.splitlines():
        m = FENCE.match(line)
        if not m:
            continue
        if open_fence is None:
            open_fence = m.group(1)
        elif m.group(1) == open_fence and not m.group(2):
            open_fence = None
    return open_fence is None


def diff_block(out: str, target: str) -> list[str]:
    section = out.split(f"<summary><b>{target}</b>", 1)[1]
    body = section.split("```diff\n", 1)[1].split("\n```", 1)[0]
    return body.splitlines()


def test_summary_line_first(install_plan: Plan) -> None:
    out = markdown.render(install_plan)
    assert out.splitlines()[0] == "**Plan:** 1 to add, 2 to change, 1 to remove"


def test_warning_when_trust_is_removed(install_plan: Plan) -> None:
    out = markdown.render(install_plan).splitlines()
    banner = out.index("> [!WARNING]")
    assert banner == 2
    assert out[banner + 1] == "> - **pool1** removes trust from the pool: `wlbplan-wlb-2222.pem`"


def test_warning_when_verification_is_turned_off(verify_off_plan: Plan) -> None:
    out = markdown.render(verify_off_plan)
    assert "> [!WARNING]\n> - **pool1** turns certificate verification off " \
           "(`wlb-verify-cert=false`)\n" in out


def test_no_warning_when_nothing_is_removed(trust_plan: Plan) -> None:
    out = markdown.render(trust_plan)
    assert "[!WARNING]" not in out
    assert out.splitlines()[0] == "**Plan:** 1 to add, 1 to change, 0 to remove"


def test_one_details_per_changed_target(install_plan: Plan) -> None:
    out = markdown.render(install_plan)
    assert out.count("<details>") == out.count("</details>") == 1
    assert ("<details><summary><b>pool1</b> (stage: install): 1 to add, 2 to change, "
            "1 to remove</summary>\n\n```diff\n") in out
    assert "No changes for **pool2**." in out


def test_diff_fence_signs(install_plan: Plan) -> None:
    lines = diff_block(markdown.render(install_plan), "pool1")
    assert lines[0] == "+ pool.trust[wlbplan-root-1111.pem]"
    assert "+     role:        root" in lines
    assert "~ appliance.chain" in lines
    assert "~     certificate 1 (leaf)" in lines
    assert "~         issuer:      CN=wlb.example.com → CN=Int CA" in lines
    assert "+     certificate 2 (intermediate)" in lines
    assert "~     wlb-verify-cert: false → true" in lines
    assert "- pool.trust[wlbplan-wlb-2222.pem]" in lines
    assert "-     name:        wlbplan-wlb-2222.pem" in lines
    assert "#     the pool must trust the root CA of the appliance's chain" in lines
    # Inside a diff fence the first character decides the colour: never anything else.
    assert {line[:1] for line in lines} <= {"+", "-", "~", "#", " ", ""}


def test_steps_numbered_with_commands(install_plan: Plan) -> None:
    out = markdown.render(install_plan)
    assert ("1. `pool1.01.pool.install_ca` on pool: trust wlbplan-root-1111.pem on every host "
            "of the pool\n"
            "   ```sh\n"
            "   WLBPLAN_TMP=$(mktemp -d)\n") in out
    assert ("   Undo:\n   ```sh\n   xe pool-uninstall-ca-certificate "
            "name=wlbplan-root-1111.pem\n   ```\n") in out
    assert "7. `pool1.07.pool.uninstall_ca` on pool:" in out
    assert fences_balanced(out)


def test_free_text_is_escaped(install_plan: Plan) -> None:
    out = markdown.render(install_plan)
    # "*_orig" would otherwise start emphasis.
    assert r"(an existing \*\_orig is never overwritten)" in out


def test_backticks_in_commands_lengthen_the_fence(install_plan: Plan) -> None:
    step = Step("pool.confirm", "pool", "odd", ("echo ```; echo `date`",))
    target = dataclasses.replace(install_plan.targets[0], steps=(step,))
    out = markdown.render(dataclasses.replace(install_plan, targets=(target,)))
    assert "   ````sh\n   echo ```; echo `date`\n   ````\n" in out
    assert fences_balanced(out)


def test_notes_listed(install_plan: Plan) -> None:
    out = markdown.render(install_plan)
    assert "**Notes**\n\n- the old self-signed certificate stays in server.pem\\_orig\n" in out


def test_no_changes_is_short(no_change_plan: Plan) -> None:
    out = markdown.render(no_change_plan)
    assert out == "**No changes.** The pool's trust in its WLB appliance matches the spec.\n"
    assert render_plan(no_change_plan, "markdown") == out


def test_large_plan_drops_commands_then_details_never_a_target(install_plan: Plan) -> None:
    pool1 = install_plan.targets[0]
    big = tuple(dataclasses.replace(pool1, target=f"pool{i:03d}") for i in range(60))
    out = markdown.render(dataclasses.replace(install_plan, targets=big))
    assert len(out.encode()) <= markdown.LIMIT
    assert "_Commands left out to fit the comment: run `wlbplan show PLAN`._" in out
    assert "```sh" not in out
    kept = out.count("<details>")
    assert 0 < kept < 60
    assert f"_Details of {60 - kept} targets left out to fit the comment" in out
    for i in range(kept, 60):  # the others by their summary line
        assert (f"- <b>pool{i:03d}</b> (stage: install): 1 to add, 2 to change, "
                "1 to remove\n") in out
    assert out.count("<details>") == out.count("</details>")
    assert fences_balanced(out)


def test_medium_plan_keeps_everything(install_plan: Plan) -> None:
    pool1 = install_plan.targets[0]
    few = tuple(dataclasses.replace(pool1, target=f"pool{i}") for i in range(3))
    out = markdown.render(dataclasses.replace(install_plan, targets=few))
    assert out.count("<details>") == 3
    assert "left out" not in out


def test_html_in_names_is_escaped(install_plan: Plan) -> None:
    change = Change("pool.wlb-verify-cert", "update", False, True, "r")
    target = TargetPlan("<b>x</b>", "sha256:00", "trust", (change,), ())
    out = markdown.render(dataclasses.replace(install_plan, targets=(target,)))
    assert "<summary><b>&lt;b&gt;x&lt;/b&gt;</b>" in out
