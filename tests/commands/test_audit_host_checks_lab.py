"""The audit's host checks on a real lab over SSH, one lab and one audit run for all of
them: how the coordinator resolves WLB's name (``getent hosts``, the lab's resolver over
its pool's name map) and the appliance's old backups and pending key (ages by its own
clock). Healthy targets stay quiet: tests/commands/test_audit_lab.py (local, SSH) and
tests/run/test_xenapi_lab.py (XenAPI, where no name is resolved) keep theirs clean."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wlbplan.lab import control, faults

pytestmark = [pytest.mark.lab, pytest.mark.ssh]


def audit(spec: Path) -> dict[str, Any]:
    env = {"NO_COLOR": "1", "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "HOME": os.environ.get("HOME", "/root")}
    done = subprocess.run([sys.executable, "-m", "wlbplan", "audit", str(spec), "--format",
                           "json", "--fail-on", "never"], capture_output=True, text=True,
                          timeout=180, env=env)
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def findings(document: dict[str, Any], target: str) -> dict[str, list[dict[str, Any]]]:
    (found,) = [t for t in document["targets"] if t["name"] == target]
    by_rule: dict[str, list[dict[str, Any]]] = {}
    for finding in found["findings"]:
        by_rule.setdefault(finding["rule_id"], []).append(finding)
    return by_rule


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[control.Lab,
                                                                       dict[str, Any]]]:
    """Three targets over SSH: pool1's coordinator cannot resolve WLB's name and its
    appliance keeps stale backups, pool2's resolves it elsewhere, pool3 is as made."""
    made = control.up(tmp_path_factory.mktemp("checks") / "lab", targets=3, hosts=1, ssh=True)
    try:
        faults.inject(made.dir, "wlb-unresolvable", "pool1")
        faults.inject(made.dir, "stale-backups", "pool1")
        faults.inject(made.dir, "wlb-resolves-elsewhere", "pool2")
        yield made, audit(made.spec_path)
    finally:
        control.down(made.dir)


def test_an_unresolvable_wlb_name_is_an_error(faulty: tuple[control.Lab, dict[str, Any]]) -> None:
    lab, document = faulty
    (found,) = findings(document, "pool1")["WLB-POOL-WLB-UNRESOLVED"]
    assert found["level"] == "error"
    assert f"cannot resolve {lab.targets[0].fqdn}" in found["message"]


def test_a_name_resolved_elsewhere_is_a_warning(
        faulty: tuple[control.Lab, dict[str, Any]]) -> None:
    lab, document = faulty
    got = findings(document, "pool2")
    (found,) = got["WLB-POOL-WLB-RESOLVES-ELSEWHERE"]
    assert found["level"] == "warning"
    assert f"resolves {lab.targets[1].fqdn} to {faults.ELSEWHERE}; WLB answers on " \
        in found["message"]
    assert "127.0.0.1" in found["message"]
    assert found["message"].endswith(
        "(the spec's resolve entry and the appliance's own addresses)")
    assert "WLB-POOL-WLB-UNRESOLVED" not in got


def test_stale_backups_are_notes_with_paths_and_ages(
        faulty: tuple[control.Lab, dict[str, Any]]) -> None:
    lab, document = faulty
    layout = lab.layout("pool1")
    said = {f["message"] for f in findings(document, "pool1")["WLB-APPLIANCE-LEFTOVERS"]}
    assert said == {
        f"{layout.cert}_orig (backup) is {faults.STALE_DAYS} days old",
        f"{layout.key}_orig (backup) is {faults.STALE_DAYS} days old",
        f"{layout.key}.pending (pending key) is {faults.STALE_DAYS} days old",
    }


def test_the_untouched_target_has_none_of_them(
        faulty: tuple[control.Lab, dict[str, Any]]) -> None:
    _, document = faulty
    got = findings(document, "pool3")
    assert not {"WLB-POOL-WLB-UNRESOLVED", "WLB-POOL-WLB-RESOLVES-ELSEWHERE",
                "WLB-APPLIANCE-LEFTOVERS", "WLB-CERT-RENEW-SOON"} & set(got), got
