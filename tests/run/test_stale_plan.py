"""`wlbplan apply PLAN`: a saved plan runs as reviewed, and only if nothing it was made
against has moved (terraform's "Saved plan is stale")."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from applylab import (
    assert_applied,
    before,
    install_foreign_ca,
    no_key_material,
    pool_uuid,
    snapshot,
    snapshot_diff,
    state_dir,
    verify_flag,
    wlbplan,
    xe,
)

from wlbplan.lab import control, faults, stunnel

pytestmark = pytest.mark.lab


def _save_plan(lab: control.Lab, tmp_path: Path) -> Path:
    out = tmp_path / "pool1.plan.json"
    made = wlbplan("plan", str(lab.spec_path), "--out", str(out))
    assert made.returncode == 0, made.stderr
    no_key_material(out.read_text(), made.stdout, made.stderr)
    return out


def _flip_flag(lab: control.Lab, tmp_path: Path) -> None:
    xe(lab, "pool-param-set", f"uuid={pool_uuid(lab)}", "wlb-verify-cert=true")


def _another_ca(lab: control.Lab, tmp_path: Path) -> None:
    install_foreign_ca(lab, tmp_path, "corp-root.pem")


def _appliance_cert(lab: control.Lab, tmp_path: Path) -> None:
    faults.inject(lab.dir, "cn-mismatch")


@pytest.mark.parametrize(("change", "named"), [
    pytest.param(_another_ca, ["pool.trust", "corp-root.pem"], id="another-ca-installed"),
    pytest.param(_flip_flag, ["pool.wlb-verify-cert: False → True"], id="flag-flipped"),
    pytest.param(_appliance_cert, ["appliance.served", "appliance.chain"],
                 id="appliance-cert-replaced"),
])
def test_saved_plan_is_stale_when_the_pool_or_appliance_moved(
        lab: control.Lab, tmp_path: Path, change: Callable[[control.Lab, Path], None],
        named: list[str]) -> None:
    saved = _save_plan(lab, tmp_path)
    change(lab, tmp_path)
    was = before(lab)
    result = wlbplan("apply", str(saved), "--auto-approve")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Saved plan is stale" in result.stderr
    for word in named:
        assert word in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not snapshot_diff(was.files, snapshot(lab))
    assert not state_dir(lab).exists() or not any(state_dir(lab).rglob("*.jsonl"))


def test_saved_plan_is_stale_when_the_spec_changed(lab: control.Lab, tmp_path: Path) -> None:
    saved = _save_plan(lab, tmp_path)
    text = lab.spec_path.read_text()
    assert "verify: true" in text
    lab.spec_path.write_text(text.replace("verify: true", "verify: false"))
    was = before(lab)
    result = wlbplan("apply", str(saved))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Saved plan is stale" in result.stderr
    assert str(lab.spec_path) in result.stderr
    assert "spec" in result.stderr
    assert not snapshot_diff(was.files, snapshot(lab))


def test_fresh_saved_plan_applies_without_a_prompt(lab: control.Lab, tmp_path: Path) -> None:
    saved = _save_plan(lab, tmp_path)
    result = wlbplan("apply", str(saved))  # no --auto-approve, stdin not a terminal
    assert result.returncode == 0, result.stdout + result.stderr
    no_key_material(result.stdout, result.stderr)
    assert_applied(lab)
    # The plan has been used: the pool it was made against is gone.
    again = wlbplan("apply", str(saved))
    assert again.returncode == 1
    assert "Saved plan is stale" in again.stderr
    assert "wlb-verify-cert" in again.stderr


def test_a_plan_made_while_stunnel_is_down_is_not_stale(lab: control.Lab,
                                                        tmp_path: Path) -> None:
    """The failed handshake's words change on every look (OpenSSL prints a thread id);
    the plan is judged by the facts, so it is applied, not refused as stale."""
    assert stunnel.stop(lab.layout("pool1")) is not None
    saved = _save_plan(lab, tmp_path)
    was = snapshot(lab)  # nothing is served: no fingerprint to take
    result = wlbplan("apply", str(saved))
    assert "Saved plan is stale" not in result.stderr, result.stderr
    assert "pool1.01.pool.install_ca: done" in result.stderr, result.stderr
    # Nothing serves WLB, so the preflight fails and everything is undone.
    assert result.returncode == 1, result.stdout + result.stderr
    assert "rolled back" in result.stderr
    assert not snapshot_diff(was, snapshot(lab))


def _edit_step(saved: Path, action: str, edit: Callable[[list[dict[str, Any]], int], None]) -> None:
    document = json.loads(saved.read_text())
    steps = document["targets"][0]["steps"]
    edit(steps, next(i for i, s in enumerate(steps) if s["action"] == action))
    saved.write_text(json.dumps(document, indent=2))


@pytest.mark.parametrize(("action", "edit", "named"), [
    pytest.param("pool.set_verify",
                 lambda steps, i: steps[i]["params"].update(uuid="0000-other-pool"),
                 ["step 4", "params.uuid", "0000-other-pool"], id="edit-param"),
    pytest.param("pool.preflight", lambda steps, i: steps.pop(i),
                 ["step 3 is pool.set_verify", "pool1.03.pool.preflight"], id="delete-preflight"),
    pytest.param("pool.preflight",
                 lambda steps, i: steps.insert(i + 1, steps.pop(i)),
                 ["step 3 is pool.set_verify"], id="reorder"),
    pytest.param("pool.set_verify", lambda steps, i: steps.append(dict(steps[i])),
                 ["step 6", "not one wlbplan renders"], id="add-step"),
])
def test_an_edited_saved_plan_is_neither_shown_nor_applied(
        lab: control.Lab, tmp_path: Path, action: str,
        edit: Callable[[list[dict[str, Any]], int], None], named: list[str]) -> None:
    saved = _save_plan(lab, tmp_path)
    _edit_step(saved, action, edit)
    was = before(lab)
    for command in ("show", "apply"):
        flags = ("--auto-approve",) if command == "apply" else ()
        result = wlbplan(command, str(saved), *flags)
        assert result.returncode == 1, command + result.stdout + result.stderr
        for word in named:
            assert word in result.stderr, result.stderr
        assert "make the plan again" in result.stderr
        assert "Traceback" not in result.stderr
        assert result.stdout == ""
    assert not snapshot_diff(was.files, snapshot(lab))
    assert verify_flag(lab) == "false"
