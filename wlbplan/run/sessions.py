"""Open what a target needs (pool coordinator, appliance) from its spec: a Runner for each
host reached by SSH or locally; for a pool with ``connector: xenapi``, its XenAPI session
instead (``XenapiPool``, opened on first use)."""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from wlbplan.connectors.base import Runner
from wlbplan.connectors.factory import runner_for
from wlbplan.connectors.ssh import SshTarget
from wlbplan.connectors.xenapi import XenapiPool
from wlbplan.model.spec import Spec, Target

PoolSide = Runner | XenapiPool


@dataclass(frozen=True)
class Sessions:
    pool: PoolSide
    appliance: Runner

    @property
    def pool_runner(self) -> Runner:
        """The coordinator's Runner; an error for a pool reached through XenAPI (a bug: its
        steps, inspection and lock go through the API)."""
        if isinstance(self.pool, XenapiPool):
            raise TypeError("this pool is reached through XenAPI: it has no shell")
        return self.pool


# The spec lines a refused host key names: the settings, and where to add them.
_SPEC_LINES = ("ssh.known_hosts", "ssh.host_key_policy", "ssh", "")


def _ssh_target(spec: Spec, target: Target, host: str) -> SshTarget:
    settings = target.ssh
    return SshTarget(
        host=spec.address_of(host),
        port=settings.port,
        user=settings.user,
        identity_file=settings.identity_file,  # None: OpenSSH's default keys and the agent
        known_hosts=settings.known_hosts or Path("~/.ssh/known_hosts"),
        host_key_policy=settings.host_key_policy,
        connect_timeout=settings.connect_timeout,
        spec_lines=tuple((where, place) for where in _SPEC_LINES
                         if (place := target.place(where))),
    )


def _runner(spec: Spec, target: Target, kind: str, host: str) -> Runner:
    ssh = _ssh_target(spec, target, host) if kind == "ssh" else None
    # Every command on a target is bounded: a hung host costs at most this.
    return runner_for(kind, spec.address_of(host) if ssh else host, ssh,
                      command_timeout=spec.defaults.command_timeout)


def _pool(spec: Spec, target: Target) -> PoolSide:
    if target.pool.connector == "xenapi":
        return XenapiPool(target.name, target.pool, address_of=spec.address_of,
                          timeout=spec.defaults.command_timeout)
    return _runner(spec, target, target.pool.connection, target.pool.ssh_destination)


def _sessions(spec: Spec, target: Target) -> Sessions:
    """The pool's side and the appliance's Runner; nothing connects until used."""
    return Sessions(
        pool=_pool(spec, target),
        appliance=_runner(spec, target, target.wlb.connection, target.wlb.ssh_destination))


@contextmanager
def open_sessions(spec: Spec, target: Target) -> Iterator[Sessions]:
    """Runners for the coordinator and the appliance; closed on exit. Connects lazily."""
    sessions = _sessions(spec, target)
    try:
        yield sessions
    finally:
        sessions.pool.close()
        sessions.appliance.close()


class Fleet:
    """Every target's Sessions for one command, each opened on first use and kept until
    ``close``: the connections an apply inspects a target over then run its steps (one
    connection per host for the whole command). Thread-safe; nothing connects until used.
    """

    def __init__(self, spec: Spec) -> None:
        self._spec = spec
        self._open: dict[str, Sessions] = {}
        self._lock = threading.Lock()

    def sessions(self, target: Target) -> Sessions:
        with self._lock:
            found = self._open.get(target.name)
            if found is None:
                found = self._open[target.name] = _sessions(self._spec, target)
            return found

    @contextmanager
    def borrowed(self, target: Target) -> Iterator[Sessions]:
        """``open_sessions``' shape for a target whose runners stay open afterwards."""
        yield self.sessions(target)

    def close(self, names: Collection[str] | None = None) -> None:
        """Close the connections of the targets ``names`` (all: None). A target used
        again afterwards connects anew."""
        with self._lock:
            chosen = list(self._open) if names is None else [n for n in names
                                                               if n in self._open]
            opened = [self._open.pop(name) for name in chosen]
        for sessions in opened:
            sessions.pool.close()
            sessions.appliance.close()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
