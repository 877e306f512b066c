"""``wlbplan import``'s live inspection: a pool and its WLB appliance not yet in any spec.

The pool goes first: its wlb-url says which name and port WLB answers on, and the
appliance's inspection needs both (the handshake's port, the name it asks for).
"""

from __future__ import annotations

import dataclasses

from wlbplan.core.imported import wlb_endpoint
from wlbplan.inspect.run import inspect_appliance, inspect_pool
from wlbplan.model.observed import Observed
from wlbplan.model.spec import Spec, Target
from wlbplan.run.sessions import open_sessions


def discover(spec: Spec, target: Target) -> Observed:
    """What ``target``'s hosts hold, WLB inspected where the pool reaches it."""
    with open_sessions(spec, target) as sessions:
        pool = inspect_pool(target, sessions.pool)
        address, port = wlb_endpoint(pool.wlb_url, target.name)
        found = dataclasses.replace(
            target, wlb=dataclasses.replace(target.wlb, address=address, port=port))
        appliance = inspect_appliance(found, sessions.appliance)
    return Observed(target=target.name, appliance=appliance, pool=pool)
