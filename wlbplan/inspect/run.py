"""Gather a target's facts: one script on the appliance, one on the coordinator (or, for a
pool reached through XenAPI, its records read in its one session)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from wlbplan.connectors.base import Runner
from wlbplan.connectors.xenapi import XenapiPool
from wlbplan.core.stunnel_conf import Served as StunnelServes
from wlbplan.inspect import appliance, pool, pool_xenapi
from wlbplan.inspect import script as facts
from wlbplan.model.checks import ApplianceChecks, NameLookup
from wlbplan.model.command import script
from wlbplan.model.lock import LockInfo
from wlbplan.model.observed import ApplianceFacts, Observed, PoolFacts
from wlbplan.model.spec import Target
from wlbplan.run.lock_xenapi import XenapiLockStore
from wlbplan.run.sessions import PoolSide, Sessions


@dataclass(frozen=True)
class Inspection:
    """What one round trip per host read: the facts a plan is made against, and apart
    from them what is only checked (audit's findings, a plan's blockers): the pool's
    apply lock and what the appliance's stunnel.conf loads."""

    observed: Observed
    lock: LockInfo | None
    conf: StunnelServes | None
    lookup: NameLookup | None = None
    """How the coordinator resolves WLB's name (None: not asked; over XenAPI, no shell)."""
    checks: ApplianceChecks | None = None
    """The appliance's leftovers and addresses (None: not read)."""


def _gather(runner: Runner, text: str) -> dict[str, facts.RawFact]:
    result = runner.run(script(text))
    return facts.parse(result.stdout)


def inspect_pool(target: Target, where: PoolSide) -> PoolFacts:
    """The coordinator's facts, in one round trip (over XenAPI, in its one session)."""
    if isinstance(where, XenapiPool):
        return pool_xenapi.inspect_pool(target, where.session)
    return pool.parse(_gather(where, pool.script(target)), target)


_PoolRead = tuple[PoolFacts, LockInfo | None, NameLookup | None]


def _pool_and_lock(target: Target, where: PoolSide) -> _PoolRead:
    """The pool's facts, its apply lock and how it resolves WLB's name, read together
    (one script, or one session: XenAPI has no call that resolves a name)."""
    if isinstance(where, XenapiPool):
        facts_read = pool_xenapi.inspect_pool(target, where.session)
        return facts_read, XenapiLockStore(where.session, target).read(), None
    raw = _gather(where, pool.script(target))
    read = pool.parse(raw, target)
    return read, pool.parse_held_lock(raw, target), pool.parse_lookup(raw, read.wlb_host)


def inspect_appliance(target: Target, runner: Runner) -> ApplianceFacts:
    """The appliance's facts, in one round trip."""
    return appliance.parse(_gather(runner, appliance.script(target)), target)


def inspect_hosts(target: Target, sessions: Sessions) -> Inspection:
    """Both hosts at once; each in exactly one remote round trip."""
    with ThreadPoolExecutor(max_workers=2) as workers:
        wlb = workers.submit(_gather, sessions.appliance, appliance.script(target))
        coordinator = workers.submit(_pool_and_lock, target, sessions.pool)
        wlb_facts, (pool_facts, held, lookup) = wlb.result(), coordinator.result()
    observed = Observed(
        target=target.name,
        appliance=appliance.parse(wlb_facts, target),
        pool=pool_facts,
    )
    return Inspection(observed=observed, lock=held,
                      conf=appliance.parse_stunnel_conf(wlb_facts, target), lookup=lookup,
                      checks=appliance.parse_checks(wlb_facts, target))


def inspect_target(target: Target, sessions: Sessions) -> Observed:
    """The facts alone (what a plan is made against)."""
    return inspect_hosts(target, sessions).observed
