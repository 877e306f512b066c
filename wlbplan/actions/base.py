"""What every action shares: its shape, its context, and checked remote commands.

An action has three parts: ``undo_record(ctx, step)`` — what undoing it takes, computed
and journaled before it runs (public data only); ``run(ctx, step)``; and
``undo(ctx, record)``, which must be safe to run even if ``run`` never started or
stopped half-way.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wlbplan.connectors.base import Runner
from wlbplan.core.steps import Step
from wlbplan.errors import RemoteCommandError
from wlbplan.model.command import Command, CommandResult
from wlbplan.model.events import Reporter
from wlbplan.model.spec import Spec, Target
from wlbplan.run.sessions import Sessions

UndoRecord = dict[str, Any]


@dataclass(frozen=True)
class Context:
    spec: Spec
    target: Target
    sessions: Sessions
    state_dir: Path | None = None
    """The apply's state folder (journals; the ACME account key's default home)."""
    report: Reporter = field(default=lambda _event: None, compare=False)
    """The run's reporter: a step that works for long (the ACME order) says how it goes."""
    outputs: dict[str, Any] = field(default_factory=dict, compare=False)
    """What a step hands to the run (the ACME order's chain), by action; the run journals
    it with the step's completion."""

    def runner(self, on: str) -> Runner:
        return self.sessions.appliance if on == "appliance" else self.sessions.pool_runner


class StepFailed(RemoteCommandError):
    """A step's command failed; the message says which and what it printed."""


# An undo record's check: None when every field is one this target's apply may have
# written, else what is wrong with the first field that is not.
Confine = Callable[[Context, UndoRecord], str | None]


def one_of(record: UndoRecord, key: str, allowed: Iterable[str | None]) -> str | None:
    """``record[key]`` must be exactly one of ``allowed`` (paths, names, values)."""
    value = record.get(key)
    if isinstance(value, str) and value in set(allowed):
        return None
    return f"{key} {json.dumps(value)[:200]} is not one this target's apply may touch"


def typed(record: UndoRecord, key: str, kind: type) -> str | None:
    value = record.get(key)
    if isinstance(value, kind) and not (kind is not bool and isinstance(value, bool)):
        return None
    return f"{key} {json.dumps(value)[:200]} is not a {kind.__name__}"


def first(*problems: str | None) -> str | None:
    return next((p for p in problems if p is not None), None)


def checked(runner: Runner, command: Command, what: str,
            timeout: float | None = None) -> CommandResult:
    """Run ``command`` (within ``timeout``, default the spec's command_timeout); a
    non-zero exit is StepFailed."""
    result = runner.run(command, timeout=timeout)
    if not result.ok:
        said = (result.stderr or result.stdout).strip() or "no output"
        raise StepFailed(f"{what} failed on {runner.host} (exit {result.exit_code}): "
                         f"`{result.command}`: {said}")
    return result


@contextlib.contextmanager
def remote_tmpdir(runner: Runner) -> Iterator[str]:
    """A fresh ``mktemp -d`` folder (0700) on the remote side, removed afterwards."""
    made = checked(runner, Command(("mktemp", "-d")), "creating a temporary folder")
    folder = made.stdout.strip()
    if not folder.startswith("/"):
        raise StepFailed(f"mktemp -d on {runner.host} printed {folder!r}, not a folder")
    try:
        yield folder
    finally:
        runner.run(Command(("rm", "-rf", "--", folder)))


@dataclass(frozen=True)
class Action:
    undo_record: Callable[[Context, Step], UndoRecord | None]
    run: Callable[[Context, Step], None]
    undo: Callable[[Context, UndoRecord], None]
