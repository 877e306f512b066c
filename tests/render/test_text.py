"""The terraform-like text plan: key lines asserted exactly, never a whole snapshot."""

from __future__ import annotations

import dataclasses
import re

import pytest

from wlbplan.core.diff import Change, cert_summary
from wlbplan.core.plan import Plan, TargetPlan
from wlbplan.core.steps import Step
from wlbplan.render import render_plan, text

ANSI = re.compile(r"\x1b\[[0-9;]*m")
LEGEND = [
    "wlbplan compared the spec with what the pools and appliances have.",
    "Actions are indicated with the following symbols:",
    "  + create",
    "  ~ update in-place",
    "  - remove",
]


def lines(plan: Plan, **kw: bool) -> list[str]:
    return text.render(plan, **kw).splitlines()


def block(out: list[str], head: str) -> list[str]:
    """The lines of one change: from its ``+/~/-`` line to its ``# reason`` line."""
    start = out.index(head)
    end = next(i for i in range(start, len(out)) if out[i].lstrip().startswith("#"))
    return out[start:end + 1]


def test_legend_first_and_plan_line_last(install_plan: Plan) -> None:
    out = lines(install_plan)
    assert out[:5] == LEGEND
    assert out[-1] == "Plan: 1 to add, 2 to change, 1 to remove."


def test_target_headers(install_plan: Plan) -> None:
    out = lines(install_plan)
    assert "Target pool1 (stage: install): 1 to add, 2 to change, 1 to remove" in out
    assert "Target pool2: no changes." in out


def test_create_shows_every_field_and_the_reason(install_plan: Plan, certs) -> None:
    root = cert_summary(certs.root)
    got = block(lines(install_plan), "  + pool.trust[wlbplan-root-1111.pem]")
    assert got == [
        "  + pool.trust[wlbplan-root-1111.pem]",
        "      + name:        wlbplan-root-1111.pem",
        "      + role:        root",
        "      + subject:     CN=Test Root CA",
        "      + SANs:        (none)",
        "      + issuer:      CN=Test Root CA",
        f"      + serial:      {root['serial']}",
        f"      + fingerprint: {root['fingerprint']}",
        f"      + not after:   {root['not_after']}",
        "      + key:         ec secp256r1",
        "      # the pool must trust the root CA of the appliance's chain",
    ]


def test_update_shows_only_fields_that_differ(install_plan: Plan, certs) -> None:
    old, leaf = cert_summary(certs.self_signed), cert_summary(certs.leaf)
    got = block(lines(install_plan), "  ~ appliance.chain")
    assert got[1] == "      ~ certificate 1 (leaf)"
    leaf_rows = got[2:got.index("      + certificate 2 (intermediate)")]
    assert leaf_rows == [
        "          ~ SANs:        DNS:wlb.example.com → DNS:wlb.example.com, IP:10.0.0.5",
        "          ~ issuer:      CN=wlb.example.com → CN=Int CA",
        f"          ~ serial:      {old['serial']} → {leaf['serial']}",
        f"          ~ fingerprint: {old['fingerprint']} → {leaf['fingerprint']}",
        "          ~ key:         ec secp256r1 → ec secp384r1",
    ]
    # The subject is the same FQDN on both sides, so it is not shown.
    assert not any("subject:     CN=wlb.example.com →" in line for line in got)


def test_chain_entries_added_are_shown_whole(install_plan: Plan) -> None:
    got = block(lines(install_plan), "  ~ appliance.chain")
    assert "      + certificate 3 (root)" in got
    assert "          + subject:     CN=Test Root CA" in got
    assert got[-1] == ("      # the spec asks the appliance to serve the CA-signed chain "
                       "(leaf → root)")


def test_unchanged_chain_entry_is_one_line(install_plan: Plan, certs) -> None:
    chain = [cert_summary(p) for p in (certs.leaf, certs.intermediate)]
    change = Change("appliance.chain", "update", chain, [chain[0], cert_summary(certs.root)], "r")
    rows = text.change_rows(change)
    assert rows[0] == (0, " ", "certificate 1 (leaf): unchanged, CN=wlb.example.com")
    assert rows[1] == (0, "~", "certificate 2 (root)")


def test_verify_flag(install_plan: Plan) -> None:
    got = block(lines(install_plan), "  ~ pool.wlb-verify-cert")
    assert got[1] == "      ~ wlb-verify-cert: false → true"


def test_delete_shows_every_field(install_plan: Plan, certs) -> None:
    got = block(lines(install_plan), "  - pool.trust[wlbplan-wlb-2222.pem]")
    assert got[1] == "      - name:        wlbplan-wlb-2222.pem"
    assert f"      - fingerprint: {cert_summary(certs.self_signed)['fingerprint']}" in got
    assert got[-1] == "      # installed by wlbplan for a certificate the appliance no longer needs"


def test_delete_of_unreadable_trust_shows_its_name_only() -> None:
    change = Change("pool.trust[odd.pem]", "delete", {"name": "odd.pem"}, None, "r")
    assert text.change_rows(change) == [(0, "-", "name:        odd.pem")]


def test_changes_keep_plan_order(install_plan: Plan) -> None:
    out = lines(install_plan)
    heads = [line for line in out[5:] if re.match(r"  [+~-] ", line)]
    assert heads == [
        "  + pool.trust[wlbplan-root-1111.pem]",
        "  ~ appliance.chain",
        "  ~ pool.wlb-verify-cert",
        "  - pool.trust[wlbplan-wlb-2222.pem]",
    ]


def test_steps_numbered_with_commands_and_undo(install_plan: Plan) -> None:
    out = lines(install_plan)
    start = out.index("    1. pool1.01.pool.install_ca [pool]: trust wlbplan-root-1111.pem on "
                      "every host of the pool")
    assert out[start + 1:start + 6] == [
        "         run:  WLBPLAN_TMP=$(mktemp -d)",
        "               upload wlbplan-root-1111.pem to $WLBPLAN_TMP/wlbplan-root-1111.pem (0644)",
        "               xe pool-install-ca-certificate "
        "filename=$WLBPLAN_TMP/wlbplan-root-1111.pem",
        "               rm -rf $WLBPLAN_TMP",
        "         undo: xe pool-uninstall-ca-certificate name=wlbplan-root-1111.pem",
    ]
    confirm = out.index("    6. pool1.06.pool.confirm [pool]: confirm the pool still talks to WLB")
    assert out[confirm + 2] == "         undo: (nothing to undo)"
    assert "    7. pool1.07.pool.uninstall_ca [pool]: remove wlbplan-wlb-2222.pem, which " \
           "wlbplan installed and nothing needs now" in out


def test_steps_come_after_changes_and_notes_after_steps(install_plan: Plan) -> None:
    out = lines(install_plan)
    reason = out.index("      # installed by wlbplan for a certificate the appliance no "
                       "longer needs")
    steps = out.index("  Steps, in order (a failure undoes the steps already done, last first):")
    notes = out.index("  Notes:")
    assert reason < steps < notes
    assert out[notes + 1] == "    - the old self-signed certificate stays in server.pem_orig"


def test_no_changes(no_change_plan: Plan) -> None:
    out = text.render(no_change_plan)
    assert out == (
        "Target pool1: no changes.\n\n"
        "Target pool2: no changes.\n\n"
        "No changes. The pool's trust in its WLB appliance matches the spec.\n"
    )


def test_no_changes_keeps_notes(no_change_plan: Plan) -> None:
    target = dataclasses.replace(no_change_plan.targets[0], notes=("xapi 24.40 verifies chains",))
    out = lines(dataclasses.replace(no_change_plan, targets=(target,)))
    assert "    - xapi 24.40 verifies chains" in out
    assert out[-1] == text.NO_CHANGES


def test_request_stage_without_changes_is_not_no_changes(no_change_plan: Plan) -> None:
    step = Step("appliance.generate_key", "appliance", "make a key", ("openssl genpkey",),
                ("rm -f -- k",))
    target = TargetPlan("pool1", "sha256:00", "request", (), (step,))
    out = lines(dataclasses.replace(no_change_plan, targets=(target,)))
    assert out[:5] == LEGEND
    assert out[-1] == "Plan: 0 to add, 0 to change, 0 to remove."


def test_no_blank_line_runs(install_plan: Plan) -> None:
    assert "\n\n\n" not in text.render(install_plan)


def test_plain_unless_colour_is_asked(install_plan: Plan) -> None:
    plain = text.render(install_plan)
    coloured = text.render(install_plan, color=True)
    assert "\x1b" not in plain
    assert "\x1b[32m" in coloured  # green for +
    assert ANSI.sub("", coloured) == plain


def test_environment_does_not_change_output(install_plan: Plan,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    before = text.render(install_plan)
    for name, value in {"FORCE_COLOR": "1", "COLUMNS": "20", "TERM": "dumb",
                        "NO_COLOR": "1"}.items():
        monkeypatch.setenv(name, value)
    assert text.render(install_plan) == before
    assert text.render(install_plan, color=True) != before


def test_long_commands_are_not_wrapped(install_plan: Plan) -> None:
    long = "xe pool-param-set " + " ".join(f"key{i}=value{i}" for i in range(40))
    step = Step("pool.set_verify", "pool", "set", (long,))
    target = dataclasses.replace(install_plan.targets[0], steps=(step,))
    out = lines(dataclasses.replace(install_plan, targets=(target,)))
    assert f"         run:  {long}" in out


def test_brackets_are_not_rich_markup(install_plan: Plan) -> None:
    change = Change("pool.trust[bold]", "create", None, {"name": "[bold]x[/bold]"}, "[red]r")
    target = dataclasses.replace(install_plan.targets[0], changes=(change,))
    out = lines(dataclasses.replace(install_plan, targets=(target,)))
    assert "  + pool.trust[bold]" in out
    assert "      + name:        [bold]x[/bold]" in out
    assert "      # [red]r" in out


def test_render_plan_dispatches(install_plan: Plan) -> None:
    assert render_plan(install_plan, "text") == text.render(install_plan)
    assert "\x1b" in render_plan(install_plan, "text", color=True)
    with pytest.raises(ValueError, match="unknown plan format 'yaml'"):
        render_plan(install_plan, "yaml")
