"""Inspection of a real lab through the local connector: one round trip per host, and the
same facts the pure parsers give for the captured fresh lab."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from wlbplan import certs
from wlbplan.connectors.base import Runner
from wlbplan.inspect import appliance, pool
from wlbplan.inspect import script as facts
from wlbplan.inspect.run import inspect_target
from wlbplan.lab import control
from wlbplan.model.command import Command, CommandResult, script
from wlbplan.model.observed import Observed
from wlbplan.model.spec import Spec, Target
from wlbplan.run import pipeline
from wlbplan.run.sessions import Sessions, open_sessions
from wlbplan.spec import load_spec

pytestmark = pytest.mark.lab

DATA = Path(__file__).resolve().parent / "data"


class CountingRunner:
    """A Runner that counts what goes through it and passes everything on."""

    def __init__(self, inner: Runner) -> None:
        self.inner = inner
        self.runs: list[Command] = []
        self.transfers = 0

    @property
    def host(self) -> str:
        return self.inner.host

    def run(self, command: Command, *, timeout: float | None = None) -> CommandResult:
        self.runs.append(command)
        return self.inner.run(command, timeout=timeout)

    def put(self, data: bytes, remote_path: str, *, mode: int = 0o600) -> None:
        self.transfers += 1
        self.inner.put(data, remote_path, mode=mode)

    def get(self, remote_path: str) -> bytes:
        self.transfers += 1
        return self.inner.get(remote_path)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[control.Lab]:
    lab_dir = tmp_path_factory.mktemp("inspect") / "lab"
    try:
        yield control.up(lab_dir, targets=2, hosts=3)
    finally:
        control.down(lab_dir)


@pytest.fixture(scope="module")
def spec(lab: control.Lab) -> Spec:
    return load_spec(lab.spec_path)


def counted_inspect(spec: Spec, target: Target) -> tuple[Observed, CountingRunner, CountingRunner]:
    with open_sessions(spec, target) as sessions:
        pool_runner = CountingRunner(sessions.pool)
        wlb_runner = CountingRunner(sessions.appliance)
        observed = inspect_target(target, Sessions(pool=pool_runner, appliance=wlb_runner))
    return observed, pool_runner, wlb_runner


def test_one_round_trip_per_host(spec: Spec) -> None:
    for target in spec.targets:
        _, pool_runner, wlb_runner = counted_inspect(spec, target)
        assert len(pool_runner.runs) == 1
        assert len(wlb_runner.runs) == 1
        assert pool_runner.transfers == wlb_runner.transfers == 0
        # ...and each is the module's own script, nothing else.
        assert pool_runner.runs[0] == script(pool.script(target))
        assert wlb_runner.runs[0] == script(appliance.script(target))


@pytest.mark.parametrize("stage", ["inspect", "audit", "plan"])
def test_each_stage_makes_one_round_trip_per_host(spec: Spec, stage: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """audit and plan also read the lock and stunnel.conf: in the same script (issue 9)."""
    counters: list[CountingRunner] = []
    real = open_sessions  # what pipeline.open_sessions is

    def counting_sessions(spec: Spec, target: Target) -> Any:
        from contextlib import contextmanager

        @contextmanager
        def opened() -> Iterator[Sessions]:
            with real(spec, target) as sessions:
                wrapped = Sessions(pool=CountingRunner(sessions.pool),
                                   appliance=CountingRunner(sessions.appliance))
                counters.extend([wrapped.pool, wrapped.appliance])  # type: ignore[list-item]
                yield wrapped

        return opened()

    monkeypatch.setattr(pipeline, "open_sessions", counting_sessions)
    targets = list(spec.targets)
    if stage == "inspect":
        named = [o.target for o in pipeline.inspect_all(spec, targets, parallelism=2)]
    elif stage == "audit":
        audit = pipeline.audit_all(spec, targets, parallelism=2)
        assert not audit.unreachable
        named = [t.target for t in audit.targets]
    else:
        plan = pipeline.plan_each(spec, targets, parallelism=2)
        assert not plan.failed
        named = [t.target for t in plan.targets]
    assert named == [t.name for t in spec.targets]
    assert [len(c.runs) for c in counters] == [1] * (2 * len(spec.targets))
    assert not any(c.transfers for c in counters)


def shape(observed: Observed) -> dict[str, Any]:
    """What a fresh lab looks like, without what differs between two labs (uuids, ports,
    fresh keys and certificates, paths)."""
    wlb, p = observed.appliance, observed.pool
    leaf = x509.load_pem_x509_certificate(wlb.cert.chain[0].encode()) if wlb.cert.chain else None
    return {
        "cert": (wlb.cert.present, len(wlb.cert.chain), wlb.cert.error,
                 leaf.subject.rfc4514_string() if leaf else None),
        "key": (wlb.key.present, wlb.key.mode, wlb.key.error, wlb.key.public_key is not None,
                bool(leaf and wlb.key.public_key
                     and certs.key_matches(leaf, wlb.key.public_key.encode()))),
        "served": (wlb.served.chain == wlb.cert.chain, wlb.served.error),
        "backups": wlb.backups,
        "hostname": wlb.hostname is not None,
        "pool": (len(p.hosts), p.coordinator in p.hosts, p.xapi_version, p.wlb_host,
                 p.wlb_username, p.wlb_enabled, p.wlb_verify_cert, p.trusted,
                 p.chain_verification),
    }


def test_fresh_lab_inspects_like_the_fresh_capture(spec: Spec) -> None:
    target = spec.targets[0]
    observed, _, _ = counted_inspect(spec, target)
    captured = Observed(
        target=target.name,
        appliance=appliance.parse(facts.parse((DATA / "fresh.appliance.txt").read_text()),
                                  target),
        pool=pool.parse(facts.parse((DATA / "fresh.pool.txt").read_text()), target),
    )
    assert shape(observed) == shape(captured)
    assert observed.appliance.cert.error is None
    assert observed.appliance.key.error is None
    assert observed.appliance.served.error is None
    assert observed.appliance.cert.chain  # facts present, not just "no error"


def test_inspect_target_is_the_parsers_on_the_scripts_output(spec: Spec) -> None:
    """inspect_target adds nothing of its own: the same scripts, parsed the same way."""
    from wlbplan.connectors.local import LocalRunner

    for target in spec.targets:
        observed, _, _ = counted_inspect(spec, target)
        runner = LocalRunner()
        direct = Observed(
            target=target.name,
            appliance=appliance.parse(
                facts.parse(runner.run(script(appliance.script(target))).stdout), target),
            pool=pool.parse(facts.parse(runner.run(script(pool.script(target))).stdout), target),
        )
        assert observed == direct
        assert observed.digest() == direct.digest()


def _tree_digest(lab: control.Lab) -> dict[str, str]:
    """Every lab file that inspection could change, by content and mode (logs and pid
    files excluded: stunnel logs each handshake; so is the emulators' bytecode cache, which
    the first run of a lab script fills: it stands for nothing on a real host)."""
    found = {}
    for path in sorted(lab.dir.rglob("*")):
        if not path.is_file() or path.suffix in (".log", ".pid") or path.name.endswith(".lock"):
            continue
        if ".pycache" in path.relative_to(lab.dir).parts:
            continue
        found[str(path)] = f"{path.stat().st_mode:o}:" + hashlib.sha256(
            path.read_bytes()).hexdigest()
    return found


def test_inspection_changes_nothing(lab: control.Lab, spec: Spec) -> None:
    before = _tree_digest(lab)
    for target in spec.targets:
        counted_inspect(spec, target)
    assert _tree_digest(lab) == before
    assert set(control.pids(lab)) == {f"{t.name}/stunnel" for t in lab.targets}


def test_capture_script_still_captures(tmp_path: Path) -> None:
    """capture.py regenerates the data files; it must keep working (two situations here)."""
    import subprocess
    import sys

    out = tmp_path / "data"
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("capture.py")), "--out", str(out),
         "--only", "fresh", "--only", "key-missing"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    written = sorted(p.name for p in out.iterdir())
    assert written == ["fresh.appliance.txt", "fresh.pool.txt",
                       "key-missing.appliance.txt", "key-missing.pool.txt"]
    for name in written:
        new = facts.parse((out / name).read_text())
        assert set(new) == set(facts.parse((DATA / name).read_text()))
        assert all("PRIVATE KEY" not in raw.output for raw in new.values())
    assert "stopped" not in done.stdout  # progress goes to stderr only
    assert not list(tmp_path.glob("**/stunnel.pid"))
