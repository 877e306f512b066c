"""Gather a target's facts: one script on the appliance, one on the coordinator."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from wlbplan.connectors.base import Runner
from wlbplan.inspect import appliance, pool
from wlbplan.inspect import script as facts
from wlbplan.model.command import script
from wlbplan.model.observed import Observed
from wlbplan.model.spec import Target
from wlbplan.run.sessions import Sessions


def _gather(runner: Runner, text: str) -> dict[str, facts.RawFact]:
    result = runner.run(script(text))
    return facts.parse(result.stdout)


def inspect_target(target: Target, sessions: Sessions) -> Observed:
    """Both hosts at once; each in exactly one remote round trip."""
    with ThreadPoolExecutor(max_workers=2) as workers:
        wlb = workers.submit(_gather, sessions.appliance, appliance.script(target))
        coordinator = workers.submit(_gather, sessions.pool, pool.script(target))
        wlb_facts, pool_facts = wlb.result(), coordinator.result()
    return Observed(
        target=target.name,
        appliance=appliance.parse(wlb_facts, target),
        pool=pool.parse(pool_facts, target),
    )
