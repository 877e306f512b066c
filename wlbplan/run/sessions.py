"""Open the Runners a target needs (pool coordinator, appliance) from its spec."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from wlbplan.connectors.base import Runner
from wlbplan.connectors.factory import runner_for
from wlbplan.connectors.ssh import SshTarget
from wlbplan.model.spec import Spec, SshSettings, Target


@dataclass(frozen=True)
class Sessions:
    pool: Runner
    appliance: Runner


def _ssh_target(spec: Spec, host: str, settings: SshSettings) -> SshTarget:
    return SshTarget(
        host=spec.address_of(host),
        port=settings.port,
        user=settings.user,
        identity_file=settings.identity_file,  # None: OpenSSH's default keys and the agent
        known_hosts=settings.known_hosts or Path("~/.ssh/known_hosts"),
        host_key_policy=settings.host_key_policy,
        connect_timeout=settings.connect_timeout,
    )


def _runner(spec: Spec, kind: str, host: str, settings: SshSettings) -> Runner:
    ssh = _ssh_target(spec, host, settings) if kind == "ssh" else None
    # Every command on a target is bounded: a hung host costs at most this.
    return runner_for(kind, spec.address_of(host) if ssh else host, ssh,
                      command_timeout=spec.defaults.command_timeout)


@contextmanager
def open_sessions(spec: Spec, target: Target) -> Iterator[Sessions]:
    """Runners for the coordinator and the appliance; closed on exit. Connects lazily."""
    pool = _runner(spec, target.pool.connection, target.pool.ssh_destination, target.ssh)
    appliance = _runner(spec, target.wlb.connection, target.wlb.ssh_destination, target.ssh)
    try:
        yield Sessions(pool=pool, appliance=appliance)
    finally:
        pool.close()
        appliance.close()
