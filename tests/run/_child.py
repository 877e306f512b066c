"""Run ``wlbplan ARGS`` in this process, acting on one of its own apply events.

    python _child.py HOOK_JSON ARGS...

HOOK_JSON: ``{"on": EVENT_TYPE, "step": K, "do": ACTION, ...}`` or a list of such hooks;
``"target": NAME`` limits a hook to one target; for apply and rollback events,
``"action": NAME`` (e.g. ``pool.confirm``) may stand instead of ``"step"``.
EVENT_TYPE is an apply event (``apply_start``: step K is about to be journaled and run;
``apply_complete``), a rollback one (``rollback_complete``: K is the step whose undo just
finished), or ``before_done``:
step K has run (its effect is there) and is about to be journaled as done. The closing
phase of a run, after its last step (``"outcome"`` may limit the journal hooks to one):
``before_end`` (the journal is about to be archived), ``after_end`` (it was archived;
the lock is still held), ``after_release`` (the lock was released). ``before_lock``: the
run has planned and is about to take the pool's lock.
ACTION is ``sigkill`` (the process dies on the spot: no rollback, no cleanup),
``sigint``/``sigterm`` (sent to itself, as an operator's Ctrl-C or a service manager
would), ``fail`` (the step's report raises a StepFailed), ``write`` (write ``text`` to
the file ``path``), ``pause`` (write the file
``mark``, then wait until the file ``until`` exists: the run holds its lock meanwhile),
``stat`` (write the mode of ``path``, in octal, to the file ``out``), or ``barrier``
(write the file ``mark``, then open the FIFO ``fifo`` for reading: it returns when a
writer opens it, for every run waiting there at once).

The hooks wrap the CLI's own progress writer (the event has been printed when it acts),
``Journal.done``, ``Journal.end``, ``lock.acquire`` and ``lock.release``. Nothing else of
wlbplan is changed.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any


def _step_of(event: dict[str, Any]) -> int | None:
    """``pool1.03.pool.preflight`` (the step, or the head of a rollback message) → 3."""
    label = str(event.get("step") or event.get("message", "")).split(":", 1)[0]
    parts = label.split(".")
    return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None


def _matches(hook: dict[str, Any], event: dict[str, Any]) -> bool:
    """The hook's step, by index or by action (``pool1.03.pool.preflight``)."""
    if "action" in hook:
        label = str(event.get("step") or event.get("message", "")).split(":", 1)[0]
        return label.split(".", 2)[-1] == hook["action"]
    return _step_of(event) == hook["step"]


def main() -> None:
    given = json.loads(sys.argv[1])
    hooks: list[dict[str, Any]] = given if isinstance(given, list) else [given]
    args = sys.argv[2:]

    from wlbplan.actions.base import StepFailed
    from wlbplan.render import events

    original = events.EventWriter.__call__

    def act(hook: dict[str, Any]) -> None:
        action = hook["do"]
        if action == "sigkill":
            sys.stdout.flush()
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        elif action in ("sigint", "sigterm"):
            os.kill(os.getpid(), signal.SIGINT if action == "sigint" else signal.SIGTERM)
            time.sleep(0.2)  # let the main thread run the handler, as a real signal would
        elif action == "fail":
            raise StepFailed(f"injected failure on {hook['on']} of step "
                             f"{hook.get('step', hook.get('action'))}")
        elif action == "write":  # change the world as an operator or a host would
            Path(hook["path"]).write_text(hook["text"])
        elif action == "stat":
            Path(hook["out"]).write_text(oct(os.stat(hook["path"]).st_mode & 0o7777))
        elif action == "barrier":
            Path(hook["mark"]).write_text(str(os.getpid()))
            with open(hook["fifo"], "rb") as fifo:
                fifo.read()
        elif action == "pause":
            Path(hook["mark"]).write_text(str(os.getpid()))
            deadline = time.monotonic() + float(hook.get("timeout", 60))
            while not Path(hook["until"]).exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        else:
            raise SystemExit(f"unknown hook action {action!r}")

    def hooked(self: events.EventWriter, event: dict[str, Any]) -> None:
        original(self, event)
        for hook in hooks:
            if event.get("type") == hook["on"] and _matches(hook, event) \
                    and hook.get("target", event.get("target")) == event.get("target"):
                act(hook)

    events.EventWriter.__call__ = hooked  # type: ignore[method-assign]

    from wlbplan.run import journal

    original_done = journal.Journal.done

    def done_hooked(self: journal.Journal, index: int, output: Any = None) -> None:
        for hook in hooks:
            if hook["on"] == "before_done" and hook["step"] == index \
                    and hook.get("target", self.folder.name) == self.folder.name:
                act(hook)
        original_done(self, index, output)

    journal.Journal.done = done_hooked  # type: ignore[method-assign]

    def closing(point: str, target: str, outcome: str | None = None) -> None:
        for hook in hooks:
            if hook["on"] == point and hook.get("target", target) == target \
                    and hook.get("outcome", outcome) == outcome:
                act(hook)

    original_end = journal.Journal.end

    def end_hooked(self: journal.Journal, outcome: str, reason: str | None = None) -> Path:
        closing("before_end", self.folder.name, outcome)
        archived = original_end(self, outcome, reason)
        closing("after_end", self.folder.name, outcome)
        return archived

    journal.Journal.end = end_hooked  # type: ignore[method-assign]

    from wlbplan.run import lock

    original_acquire = lock.acquire

    def acquire_hooked(runner: Any, target: Any, *args: Any, **kw: Any) -> Any:
        closing("before_lock", target.name)
        return original_acquire(runner, target, *args, **kw)

    lock.acquire = acquire_hooked  # type: ignore[assignment]

    original_release = lock.release

    def release_hooked(runner: Any, target: Any, lock_id: str) -> bool:
        released = original_release(runner, target, lock_id)
        closing("after_release", target.name)
        return released

    lock.release = release_hooked

    from wlbplan.cli import main as cli_main

    cli_main(args)


if __name__ == "__main__":
    main()
