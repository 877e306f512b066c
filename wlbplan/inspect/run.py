"""Gather a target's facts: one script on the appliance, one on the coordinator."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from wlbplan.connectors.base import Runner
from wlbplan.inspect import appliance, pool
from wlbplan.inspect import script as facts
from wlbplan.model.command import script
from wlbplan.model.observed import ApplianceFacts, Observed, PoolFacts
from wlbplan.model.spec import Target
from wlbplan.run.sessions import Sessions


def _gather(runner: Runner, text: str) -> dict[str, facts.RawFact]:
    result = runner.run(script(text))
    return facts.parse(result.stdout)


def inspect_pool(target: Target, runner: Runner) -> PoolFacts:
    """The coordinator's facts, in one round trip."""
    return pool.parse(_gather(runner, pool.script(target)), target)


def inspect_appliance(target: Target, runner: Runner) -> ApplianceFacts:
    """The appliance's facts, in one round trip."""
    return appliance.parse(_gather(runner, appliance.script(target)), target)


def inspect_target(target: Target, sessions: Sessions) -> Observed:
    """Both hosts at once; each in exactly one remote round trip."""
    with ThreadPoolExecutor(max_workers=2) as workers:
        wlb = workers.submit(inspect_appliance, target, sessions.appliance)
        coordinator = workers.submit(inspect_pool, target, sessions.pool)
        return Observed(target=target.name, appliance=wlb.result(), pool=coordinator.result())
