"""The read-only pipeline over a spec's targets: inspect, then plan. Library, not CLI."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from wlbplan.desired import desired_state
from wlbplan.diff import diff
from wlbplan.errors import SpecError, WlbplanError
from wlbplan.inspect.run import inspect_target
from wlbplan.model import Spec, Target
from wlbplan.observed import Observed
from wlbplan.plan import Plan, TargetPlan, make_plan, plan_target
from wlbplan.sessions import open_sessions


def select(spec: Spec, names: Sequence[str]) -> list[Target]:
    """The targets named with ``--target`` (all when none), in spec order."""
    if not names:
        return list(spec.targets)
    known = [t.name for t in spec.targets]
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; targets: {', '.join(known)}"
            raise SpecError(f"{spec.path}: no target named {name!r}{hint}")
    return [t for t in spec.targets if t.name in names]


def _inspect_one(spec: Spec, target: Target) -> Observed:
    with open_sessions(spec, target) as sessions:
        return inspect_target(target, sessions)


class TargetsFailed(WlbplanError):
    """Some targets could not be inspected; each one's error is listed."""


def inspect_all(spec: Spec, targets: Sequence[Target], parallelism: int = 10) -> list[Observed]:
    """Every target, ``parallelism`` at a time; all failures reported together."""
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as workers:
        futures = [workers.submit(_inspect_one, spec, t) for t in targets]
    results: list[Observed] = []
    problems: list[str] = []
    for target, future in zip(targets, futures, strict=True):
        try:
            results.append(future.result())
        except WlbplanError as err:
            problems.append(f"{target.name}: {err}")
    if problems:
        raise TargetsFailed("\n".join(problems))
    return results


def plan_one(spec: Spec, target: Target, observed: Observed) -> TargetPlan:
    desired = desired_state(target, observed)
    return plan_target(spec, target, observed, desired, diff(desired, observed))


def plan_all(spec: Spec, targets: Sequence[Target], observed: Sequence[Observed]) -> Plan:
    return make_plan(spec, [plan_one(spec, t, o) for t, o in zip(targets, observed, strict=True)])
