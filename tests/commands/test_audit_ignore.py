"""``wlbplan audit --ignore`` and the spec's ``audit.ignore`` through the command: exit codes,
what each report says, and the refusals, on two targets whose pools cannot be read (a
local ``xe`` that fails at once: no lab, no network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wlbplan.cli import main

ACCEPT_BOTH = "WLB-TARGET-UNREACHABLE"


@pytest.fixture
def place(tmp_path: Path) -> Path:
    xe = tmp_path / "xe"
    xe.write_text("#!/bin/sh\necho 'xe: connection refused' >&2\nexit 1\n")
    xe.chmod(0o755)
    targets = "".join(f"""
  - name: {name}
    pool: {{coordinator: localhost, xe: {xe}, connection: local,
            state_dir: {tmp_path / name / "state"}}}
    wlb:
      address: wlb.example.test
      connection: local
      paths: {{cert: {tmp_path / name / "server.pem"}, key: {tmp_path / name / "server.key"}}}
    certificate: {{source: self-signed}}
""" for name in ("pool1", "pool2"))
    (tmp_path / "spec.yaml").write_text(f"version: 1\ntargets:{targets}")
    (tmp_path / "accepting.yaml").write_text(
        "version: 1\n"
        "audit:\n"
        "  ignore:\n"
        "    - rule: WLB-TARGET-UNREACHABLE\n"
        "      target: pool2\n"
        "      until: 2999-12-31\n"
        "      reason: pool2 is being rebuilt\n"
        f"targets:{targets}")
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(["audit", *map(str, argv)])
    out, err = capsys.readouterr()
    assert isinstance(done.value.code, int)
    return done.value.code, out, err


def test_unaccepted_unreachable_targets_fail_the_run(place: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, place / "spec.yaml")
    assert code == 1
    assert "could not audit pool1, pool2" in err
    assert "\x1b" not in out  # not a terminal: plain text


def test_accepted_findings_never_fail_the_run(place: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, place / "spec.yaml", "--ignore", ACCEPT_BOTH,
                         "--fail-on", "warning")
    assert code == 0, out + err
    assert "Audit: no findings on 2 targets (2 unreachable); 2 accepted." in out
    assert "  2  WLB-TARGET-UNREACHABLE  no end date (--ignore)" in out
    assert "could not audit" not in err
    code, _, err = run(capsys, place / "spec.yaml", "--ignore", f"{ACCEPT_BOTH}:pool1")
    assert code == 1
    assert "could not audit pool2;" in err


def test_an_acceptance_counts_again_the_day_after_until(
        place: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, place / "spec.yaml", "--ignore", f"{ACCEPT_BOTH}@2000-01-01")
    assert code == 1
    assert "acceptance expired on 2000-01-02 (it held until 2000-01-01)" in out
    code, _, _ = run(capsys, place / "spec.yaml", "--ignore", f"{ACCEPT_BOTH}@2999-12-31")
    assert code == 0


def test_the_specs_ignores_reach_every_report(place: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    sarif_path = place / "out.sarif"
    code, out, err = run(capsys, place / "accepting.yaml", "--format", "json",
                         "--ignore", f"{ACCEPT_BOTH}:pool1", "--ignore", "WLB-CERT-EXPIRED",
                         "--report", f"sarif={sarif_path}")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["summary"]["accepted"] == 2
    pool2 = doc["targets"][1]["findings"][0]
    assert pool2["suppressed"] is True
    assert pool2["acceptance"] == {
        "ignore": "WLB-TARGET-UNREACHABLE:pool2@2999-12-31", "reason": "pool2 is being rebuilt",
        "until": "2999-12-31", "expired": False, "expired_on": None, "origin": "spec",
        "line": 4}
    # Nothing was inspected, so nothing is said of the ignore that matched nothing.
    assert doc["general"] == []
    results = json.loads(sarif_path.read_text())["runs"][0]["results"]
    justifications = [r["suppressions"][0]["justification"] for r in results
                      if "suppressions" in r]
    assert justifications == ["accepted with --ignore", "pool2 is being rebuilt"]


def test_an_ignore_for_a_target_not_selected_is_not_called_unused(
        place: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, place / "accepting.yaml", "--target", "pool1",
                       "--format", "json")
    assert code == 1
    assert json.loads(out)["general"] == []


@pytest.mark.parametrize(("option", "says"), [
    ("WLB-CERT-EXPIRD", "unknown rule id 'WLB-CERT-EXPIRD'; did you mean WLB-CERT-EXPIRED?"),
    ("WLB-CERT-EXPIRED:pool9", "WLB-CERT-EXPIRED:pool9: no target named 'pool9'"),
    ("WLB-CERT-EXPIRED:poool1", "did you mean 'pool1'?"),
    ("WLB-CERT-EXPIRED@2025-02-30", "'2025-02-30' is not a day of the calendar"),
    ("WLB-CERT-EXPIRED@soon", "'soon' is not a date YYYY-MM-DD"),
    ("WLB-CERT-EXPIRED:a:b", "expected RULE[:TARGET][@YYYY-MM-DD]"),
])
def test_a_wrong_ignore_is_refused_before_any_host(
        place: Path, capsys: pytest.CaptureFixture[str], option: str, says: str) -> None:
    code, out, err = run(capsys, place / "spec.yaml", "--ignore", option)
    assert code == 1
    assert says in out + err
    assert "--ignore" in out + err
    assert "Audit:" not in out
