"""Run ``wlbplan ARGS`` in this process, acting on one of its own apply events.

    python _child.py HOOK_JSON ARGS...

HOOK_JSON: ``{"on": "apply_start"|"apply_complete", "step": K, "do": ACTION, ...}``.
ACTION is ``sigkill`` (the process dies on the spot: no rollback, no cleanup),
``sigint``/``sigterm`` (sent to itself, as an operator's Ctrl-C or a service manager
would), ``fail`` (the step's report raises a StepFailed), or ``pause`` (write the file
``mark``, then wait until the file ``until`` exists: the run holds its lock meanwhile).

The hook wraps the CLI's own progress writer, so the event has already been journaled
and printed when it acts. Nothing else of wlbplan is changed.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any


def main() -> None:
    hook: dict[str, Any] = json.loads(sys.argv[1])
    args = sys.argv[2:]

    from wlbplan.actions import StepFailed
    from wlbplan.render import events

    original = events.EventWriter.__call__

    def hooked(self: events.EventWriter, event: dict[str, Any]) -> None:
        original(self, event)
        if event.get("type") != hook["on"]:
            return
        if int(str(event["step"]).split(".")[1]) != hook["step"]:
            return
        action = hook["do"]
        if action == "sigkill":
            sys.stdout.flush()
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        elif action in ("sigint", "sigterm"):
            os.kill(os.getpid(), signal.SIGINT if action == "sigint" else signal.SIGTERM)
            time.sleep(0.2)  # let the main thread run the handler, as a real signal would
        elif action == "fail":
            raise StepFailed(f"injected failure on {hook['on']} of step {hook['step']}")
        elif action == "pause":
            Path(hook["mark"]).write_text(str(os.getpid()))
            deadline = time.monotonic() + float(hook.get("timeout", 60))
            while not Path(hook["until"]).exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        else:
            raise SystemExit(f"unknown hook action {action!r}")

    events.EventWriter.__call__ = hooked  # type: ignore[method-assign]

    from wlbplan.cli import main as cli_main

    cli_main(args)


if __name__ == "__main__":
    main()
