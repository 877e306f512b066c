"""`wlbplan apply PLAN`: a saved plan runs as reviewed, and only if nothing it was made
against has moved (terraform's "Saved plan is stale")."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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
    wlbplan,
    xe,
)

from wlbplan.lab import control, faults

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
