"""Every command, given wrong inputs, stops before any host is touched: exit 1, a message
that says what to do, never a traceback or exit 3.

The spec's "hosts" are local: the pool's ``xe`` is a script that leaves a marker file when
it runs, so a test can tell that nothing was inspected.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from wlbplan.cli import main


@pytest.fixture
def place(tmp_path: Path) -> Path:
    marker = tmp_path / "touched"
    xe = tmp_path / "xe"
    xe.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
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
    verify: true
""" for name in ("pool1", "pool2"))
    (tmp_path / "spec.yaml").write_text(f"version: 1\ntargets:{targets}")
    (tmp_path / "plan.json").write_text('{"format_version": "1.0", "targets": []}\n')
    (tmp_path / "a-file").write_text("not a folder\n")
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as done:
        main(argv)
    out, err = capsys.readouterr()
    code = done.value.code
    assert isinstance(code, int)
    return code, out + err


CASES = [
    # (argv with {d} for the test's folder, words the message must hold)
    (["validate", "{d}/missing.yaml"], "not found"),
    (["validate", "{d}"], "Is a directory"),
    (["validate", "{d}/plan.json"], "version"),
    (["inspect", "{d}/spec.yaml", "--target", "pool9"], "no target named 'pool9'"),
    (["plan", "{d}/missing.yaml"], "not found"),
    (["plan", "{d}/spec.yaml", "--target", "pool9"], "no target named 'pool9'"),
    (["plan", "{d}/spec.yaml", "--out", "{d}/no/such/folder/tfplan"], "does not exist"),
    (["plan", "{d}/spec.yaml", "--out", "/proc/wlbplan-test/tfplan"], "does not exist"),
    (["plan", "{d}/spec.yaml", "--out", "/proc/tfplan"], "cannot write the plan"),
    (["plan", "{d}/spec.yaml", "--out", "{d}"], "it is a folder"),
    (["plan", "{d}/spec.yaml", "--out", "{d}/a-file/tfplan"], "does not exist"),
    (["show", "{d}/spec.yaml"], "is a spec, not a saved plan"),
    (["show", "{d}/missing.plan"], "not found"),
    (["show", "{d}"], "directory"),
    (["apply", "{d}/missing.plan"], "no such file"),
    (["apply", "{d}/plan.json", "--target", "pool1"], "applied whole"),
    (["apply", "{d}/plan.json", "--resume"], "--resume takes the SPEC"),
    (["apply", "{d}/spec.yaml", "--target", "pool9"], "no target named 'pool9'"),
    (["rollback", "{d}/spec.yaml", "--target", "pool9"], "no target named 'pool9'"),
    (["rollback", "{d}/missing.yaml", "--target", "pool1"], "not found"),
    (["force-unlock", "{d}/spec.yaml", "--force", "some-id"], "--target NAME"),
    (["force-unlock", "{d}/spec.yaml", "--target", "pool9", "--force", "x"], "pool9"),
    (["audit", "{d}/spec.yaml", "--target", "pool9"], "no target named 'pool9'"),
    (["audit", "{d}/spec.yaml", "--report", "sarif={d}/no/such/out.sarif"], "does not exist"),
    (["audit", "{d}/spec.yaml", "--report", "nosuch={d}/out"], "FORMAT=FILE"),
    (["lab", "status", "--dir", "{d}/a-file"], "a-file"),
]


@pytest.mark.parametrize(("argv", "says"), CASES, ids=[" ".join(c[0][:2]) + f" #{i}"
                                                       for i, c in enumerate(CASES)])
def test_wrong_input_exits_1_with_advice_before_any_host(
        place: Path, capsys: pytest.CaptureFixture[str], argv: list[str], says: str) -> None:
    code, text = run(capsys, [a.format(d=place) for a in argv])
    assert code == 1, text
    assert says in text, text
    assert "Traceback" not in text
    assert "Internal error" not in text
    assert not (place / "touched").exists(), "a host was contacted"


def test_the_marker_shows_when_a_host_is_contacted(place: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """The fixture's own check can fail: a plan that inspects runs the pool's xe."""
    code, _ = run(capsys, ["plan", str(place / "spec.yaml"), "--target", "pool1"])
    assert code == 1
    assert (place / "touched").exists()
