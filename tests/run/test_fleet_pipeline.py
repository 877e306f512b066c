"""The pipeline over a fleet (issue 9), without hosts: targets run ``parallelism`` at a
time (apply: across pools; each target is one pool), every target's start and end is
told to the progress, one failure never stops the others, and a Fleet keeps each
target's runners for the whole command."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from wlbplan.commands.options import DEFAULT_PARALLELISM
from wlbplan.core.plan import TargetPlan, make_plan
from wlbplan.errors import ConnectError
from wlbplan.model.events import TARGET_DONE, TARGET_START, Event, TargetOutcome
from wlbplan.model.spec import Spec, Target
from wlbplan.run import pipeline
from wlbplan.run.sessions import Fleet, Sessions
from wlbplan.spec import load_spec_text

COUNT = 8


def _spec(count: int = COUNT) -> Spec:
    targets = "".join(
        f"  - name: t{i}\n"
        f"    pool: {{coordinator: xs{i}, connection: local, state_dir: /nonexistent/{i}}}\n"
        f"    wlb: {{address: wlb{i}.example.com, connection: local, paths: "
        f"{{cert: /nonexistent/{i}/c.pem, key: /nonexistent/{i}/k.pem}}}}\n"
        "    certificate: {source: self-signed}\n" for i in range(count))
    spec, diagnostics = load_spec_text(f"version: 1\ntargets:\n{targets}", Path("s.yaml"))
    assert spec is not None, diagnostics
    return spec


class Busy:
    """Records how many targets are worked on at once, and each target's thread."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0
        self.lock = threading.Lock()
        self.sessions: dict[str, Sessions] = {}

    def work(self, target: Target, sessions: Sessions, fail: set[str]) -> TargetOutcome:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.sessions[target.name] = sessions
        time.sleep(0.1)
        with self.lock:
            self.now -= 1
        if target.name in fail:
            raise ConnectError(f"{target.name}: cannot connect")
        return TargetOutcome(target.name, "applied")


def _apply(monkeypatch: pytest.MonkeyPatch, parallelism: int, fail: set[str] = frozenset(),
           fleet: Fleet | None = None) -> tuple[list[TargetOutcome], Busy, list[Event]]:
    spec = _spec()
    busy = Busy()

    def fake_apply(spec: Spec, target: Target, plan: Any, sessions: Sessions,
                   *rest: Any) -> TargetOutcome:
        return busy.work(target, sessions, set(fail))

    monkeypatch.setattr(pipeline, "apply_target", fake_apply)
    events: list[Event] = []
    plan = make_plan(spec, [TargetPlan.failed(t.name, "refused", "not used")
                            for t in spec.targets])
    outcomes = pipeline.apply_all(spec, plan, spec.targets, parallelism=parallelism,
                                  state_dir=Path("/nonexistent"), report=lambda e: None,
                                  cancel=threading.Event(), fleet=fleet,
                                  progress=events.append)
    return outcomes, busy, events


def test_the_default_parallelism_is_16() -> None:
    assert DEFAULT_PARALLELISM == pipeline.DEFAULT_PARALLELISM == 16


@pytest.mark.parametrize("parallelism", [1, 3, 16])
def test_apply_works_on_that_many_pools_at_once(monkeypatch: pytest.MonkeyPatch,
                                                parallelism: int) -> None:
    outcomes, busy, _ = _apply(monkeypatch, parallelism)
    assert [o.target for o in outcomes] == [f"t{i}" for i in range(COUNT)]
    assert busy.most == min(parallelism, COUNT)


def test_a_failed_target_is_its_outcome_and_the_others_go_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes, _, events = _apply(monkeypatch, 4, fail={"t2", "t5"})
    assert {o.target: o.status for o in outcomes} == {
        f"t{i}": "refused" if i in (2, 5) else "applied" for i in range(COUNT)}
    assert "t2: cannot connect" in (outcomes[2].error or "")
    done = {e["target"]: e["ok"] for e in events if e["type"] == TARGET_DONE}
    assert done == {f"t{i}": i not in (2, 5) for i in range(COUNT)}
    started = [e["target"] for e in events if e["type"] == TARGET_START]
    assert sorted(started) == sorted(done)


def test_a_fleet_gives_each_target_the_same_runners_until_closed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with Fleet(_spec()) as fleet:
        first = {t.name: fleet.sessions(t) for t in _spec().targets}
        _, busy, _ = _apply(monkeypatch, 4, fleet=fleet)
        assert all(busy.sessions[name] is first[name] for name in first)
    assert fleet.sessions(_spec().targets[0]) is not first["t0"]  # closed: made anew


def test_inspect_each_reports_every_target_and_its_progress() -> None:
    """Nothing is installed there (no xe): each target fails, each is still reported."""
    spec = _spec(3)
    events: list[Event] = []
    results = pipeline.inspect_each(spec, spec.targets, 2, progress=events.append)
    assert len(results) == 3
    assert [e["ok"] for e in events if e["type"] == TARGET_DONE] == [False] * 3


class Closes:
    """A runner that counts its closes (nothing connects)."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def test_apply_closes_what_it_will_not_use_and_asks_holding_no_connection(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A target with no step is let go after planning; before the prompt every
    connection is closed (a person may take minutes); without a prompt the targets
    that run keep theirs, to run their steps over them."""
    from wlbplan.commands import apply as apply_command
    from wlbplan.core.steps import Step
    from wlbplan.run import sessions as sessions_module

    spec = _spec(3)
    made: list[tuple[str, Closes]] = []

    def runner(spec: Spec, target: Target, kind: str, host: str) -> Closes:
        made.append((target.name, Closes(host)))
        return made[-1][1]

    def closes() -> dict[str, list[int]]:
        """Each target's runners (pool, appliance): how often each was closed."""
        by_target: dict[str, list[int]] = {}
        for name, made_runner in made:
            by_target.setdefault(name, []).append(made_runner.closed)
        return by_target

    monkeypatch.setattr(sessions_module, "_runner", runner)
    step = Step(action="pool.set_verify", on="pool", summary="s", commands=("true",))
    plan = make_plan(spec, [
        TargetPlan("t0", "", "trust", (), (step,)),
        TargetPlan("t1", "", "none", (), ()),
        TargetPlan.failed("t2", "refused", "the gate")])
    asked: list[dict[str, list[int]]] = []
    monkeypatch.setattr(apply_command, "_confirm", lambda: asked.append(closes()))
    for ask in (False, True):
        made.clear()
        with Fleet(spec) as fleet:
            for target in spec.targets:
                fleet.sessions(target)
            apply_command._confirm_holding_nothing(fleet, plan, ask=ask)
            after = closes()
        if ask:
            assert asked == [{"t0": [1, 1], "t1": [1, 1], "t2": [1, 1]}]
        else:
            assert not asked
            assert after == {"t0": [0, 0], "t1": [1, 1], "t2": [1, 1]}
