"""``--shard K/N`` on plan, audit, inspect and apply: the shards of a fleet cover it once,
--target narrows first, a shard may be empty, wrong values stop before any host.

The spec's hosts are local and their ``xe`` does not exist, so every target is quickly
"unreachable": enough to see which targets a command worked on, without a lab.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wlbplan.cli import main
from wlbplan.model.shard import shard_of

NAMES = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta")


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shard")
    targets = "".join(f"""
  - name: {name}
    pool: {{coordinator: localhost, xe: {folder / "no-xe"}, connection: local,
            state_dir: {folder / name / "state"}}}
    wlb:
      address: wlb-{name}.example.test
      connection: local
      paths: {{cert: {folder / name / "server.pem"}, key: {folder / name / "server.key"}}}
    certificate: {{source: self-signed}}
    verify: true
""" for name in NAMES)
    path = folder / "spec.yaml"
    path.write_text(f"version: 1\ntargets:{targets}")
    return path


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(argv)
    out, err = capsys.readouterr()
    assert isinstance(done.value.code, int)
    return done.value.code, out, err


def audited(capsys: pytest.CaptureFixture[str], spec: Path, *more: str) -> list[str]:
    code, out, err = run(capsys, ["audit", str(spec), "--format", "json", *more])
    assert code in (0, 1), err
    return [t["name"] for t in json.loads(out)["targets"]]


def test_the_shards_of_a_fleet_cover_it_once_by_name(capsys: pytest.CaptureFixture[str],
                                                      spec: Path) -> None:
    seen = [audited(capsys, spec, "--shard", f"{k}/3") for k in (1, 2, 3)]
    assert sorted(n for shard in seen for n in shard) == sorted(NAMES)
    for k, names in enumerate(seen, start=1):
        assert names == [n for n in NAMES if shard_of(n, 3) == k]  # spec order kept


def test_target_narrows_then_shard_splits(capsys: pytest.CaptureFixture[str],
                                          spec: Path) -> None:
    chosen = ["alpha", "delta", "eta"]
    picked = audited(capsys, spec, "--shard", "3/3", *(a for n in chosen for a in ("--target", n)))
    assert picked == [n for n in chosen if shard_of(n, 3) == 3]
    assert picked  # alpha and eta are in shard 3: the case is not vacuous


@pytest.mark.parametrize("command", ["plan", "inspect", "audit"])
def test_an_empty_shard_says_so_and_does_nothing(capsys: pytest.CaptureFixture[str],
                                                 spec: Path, command: str) -> None:
    empty = next(k for k in range(1, 11) if all(shard_of(n, 10) != k for n in NAMES))
    code, out, err = run(capsys, [command, str(spec), "--shard", f"{empty}/10"])
    assert code == 0, err
    assert f"shard {empty}/10 holds none of the selected targets" in err
    assert "unreachable" not in out + err


def test_plan_and_inspect_work_on_their_shard_only(capsys: pytest.CaptureFixture[str],
                                                   spec: Path) -> None:
    ours = [n for n in NAMES if shard_of(n, 2) == 1]
    _, _, err = run(capsys, ["plan", str(spec), "--shard", "1/2"])
    for name in NAMES:
        assert (f"{name} (unreachable)" in err) == (name in ours), name
    _, _, err = run(capsys, ["inspect", str(spec), "--shard", "1/2"])
    for name in NAMES:
        assert (f"{name}:" in err) == (name in ours), name


@pytest.mark.parametrize(("argv", "says"), [
    (["plan", "{spec}", "--shard", "0/3"], "K must be between 1 and N (3)"),
    (["audit", "{spec}", "--shard", "4/3"], "K must be between 1 and N (3)"),
    (["inspect", "{spec}", "--shard", "1/0"], "N must be between 1 and 10000"),
    (["apply", "{spec}", "--shard", "two/3"], "expected K/N"),
    (["apply", "{plan}", "--shard", "1/2"], "applied whole"),
])
def test_wrong_shards_stop_before_any_host(capsys: pytest.CaptureFixture[str], spec: Path,
                                           tmp_path: Path, argv: list[str], says: str) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text('{"format_version": "1.0", "targets": []}\n')
    code, out, err = run(capsys, [a.format(spec=spec, plan=plan) for a in argv])
    assert code == 1
    assert says in out + err
    assert "unreachable" not in out + err
