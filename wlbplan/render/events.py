"""Apply progress: one line per event on stderr (text), or JSON lines on stdout.

A text line is ``safe``: an xe error or a certificate subject quoted in a message cannot
start a line of its own (a forged progress line, or a workflow command in a CI log).

The JSON form follows terraform's machine-readable UI: every line has ``@level``,
``@message``, ``@module``, ``@timestamp`` and ``type`` (apply_start, apply_complete,
apply_errored, rollback_start, rollback_complete, rollback_errored, lock_waiting,
stop_after_finish, summary).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Sequence
from typing import IO, Any

from wlbplan import __version__
from wlbplan.core.diff import cert_summary
from wlbplan.model.events import Event, TargetOutcome
from wlbplan.model.observed import Observed
from wlbplan.model.spec import cli_command
from wlbplan.render.safe import safe

_ERRORS = ("apply_errored", "rollback_errored")


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class EventWriter:
    """Thread-safe: targets apply in parallel."""

    def __init__(self, stream: IO[str], as_json: bool, spec_path: str = "") -> None:
        self._stream = stream
        self._json = as_json
        self._spec_path = spec_path  # hints name the real spec
        self._lock = threading.Lock()

    def start(self) -> None:
        if self._json:
            self._emit({"type": "version", "@message": f"wlbplan {__version__}",
                        "wlbplan": __version__})

    def __call__(self, event: Event) -> None:
        if self._json:
            self._emit({"@message": event["message"], **event})
            return
        seconds = event.get("seconds")
        suffix = f" ({seconds:.2f}s)" if isinstance(seconds, float | int) else ""
        mark = "ERROR " if event["type"] in _ERRORS else ""
        self._say(f"{mark}{event['message']}{suffix}")

    def summary(self, outcomes: Sequence[TargetOutcome], states: dict[str, str], *,
                rollback: bool = False) -> None:
        """``rollback``: the outcomes of ``wlbplan rollback``, counted as a rollback."""
        closing = rollback_line(outcomes) if rollback else summary_line(outcomes)
        if self._json:
            self._emit({"type": "summary", "@message": closing,
                        "targets": [_outcome_json(o, states.get(o.target)) for o in outcomes]})
            return
        for outcome in outcomes:
            for line in outcome_lines(outcome, states.get(outcome.target), self._spec_path):
                self._say(line)
        self._say(closing)

    def note(self, target: str, message: str) -> None:
        """What to do next (e.g. after a request stage)."""
        if self._json:
            self._emit({"type": "next_step", "target": target, "@message": message})
        else:
            self._say(f"Next: {message}")

    def _emit(self, record: dict[str, Any]) -> None:
        level = "error" if record.get("type") in _ERRORS else "info"
        full = {"@level": level, "@module": "wlbplan", "@timestamp": _stamp(), **record}
        self._line(json.dumps(full, sort_keys=False))

    def _say(self, text: str) -> None:
        """One text line, whatever the hosts put in it."""
        self._line(safe(text))

    def _line(self, text: str) -> None:
        with self._lock:
            self._stream.write(text + "\n")
            self._stream.flush()


def _outcome_json(outcome: TargetOutcome, state: str | None) -> dict[str, Any]:
    return {"target": outcome.target, "status": outcome.status,
            "interrupted": outcome.interrupted, "done": list(outcome.done),
            "undone": list(outcome.undone), "undo_failures": list(outcome.undo_failures),
            "error": outcome.error, "journal": outcome.journal, "lock_id": outcome.lock_id,
            "state_now": state}


def outcome_lines(outcome: TargetOutcome, state: str | None, spec_path: str = "") -> list[str]:
    name = ("--target", outcome.target)
    head = {
        "applied": f"{outcome.target}: applied ({len(outcome.done)} steps).",
        "nothing_to_do": f"{outcome.target}: nothing to do.",
        "rolled_back": f"{outcome.target}: STOPPED and rolled back: every step done was "
        "undone." if outcome.interrupted
        else f"{outcome.target}: FAILED and rolled back: every step done was undone."
        if outcome.error else f"{outcome.target}: rolled back: every step the journal "
        "recorded was undone.",
        "rollback_incomplete": f"{outcome.target}: FAILED and the rollback is INCOMPLETE.",
        "refused": f"{outcome.target}: stopped before any change (nothing was changed)."
        if outcome.interrupted else f"{outcome.target}: not applied.",
        "unreachable": f"{outcome.target}: not applied: it could not be inspected "
        "(nothing was tried on it).",
    }[outcome.status]
    lines = [head]
    if outcome.error:
        lines.append(f"  cause: {outcome.error}")
    lines += [f"  undo failed: {failure}" for failure in outcome.undo_failures]
    if outcome.status == "rollback_incomplete":
        lines.append(f"  the journal is kept at {outcome.journal}; fix the cause, then run "
                     f"`{cli_command('rollback', spec_path, *name)}`")
        lines.append("  or restore by hand what is listed above, then close the journal and "
                     "free the pool with `"
                     + cli_command("force-unlock", spec_path, outcome.lock_id or "LOCK_ID", *name)
                     + "`")
    if state:
        lines.append(f"  now: {state}")
    return lines


def summary_line(outcomes: Sequence[TargetOutcome]) -> str:
    counts = {s: sum(o.status == s for o in outcomes)
              for s in ("applied", "nothing_to_do", "rolled_back", "rollback_incomplete",
                        "refused", "unreachable")}
    unreachable = f", {counts['unreachable']} unreachable" if counts["unreachable"] else ""
    return (f"Apply: {counts['applied']} applied, {counts['nothing_to_do']} unchanged, "
            f"{counts['rolled_back']} rolled back, {counts['rollback_incomplete']} rollback "
            f"incomplete, {counts['refused']} not started{unreachable}.")


def rollback_line(outcomes: Sequence[TargetOutcome]) -> str:
    """``wlbplan rollback``'s last line: what was undone, never "applied"."""
    counts = {s: sum(o.status == s for o in outcomes)
              for s in ("rolled_back", "rollback_incomplete", "nothing_to_do")}
    return (f"Rollback: {counts['rolled_back']} rolled back, "
            f"{counts['rollback_incomplete']} incomplete, "
            f"{counts['nothing_to_do']} with nothing to roll back.")


def state_line(observed: Observed) -> str:
    """What a host pair is in now, in one line (after a rollback)."""
    pool = observed.pool
    names = ", ".join(t.name for t in pool.trusted) or "none"
    served = observed.appliance.served
    if served.chain:
        leaf = cert_summary(served.chain[0])
        serving = f"{leaf['subject']} ({leaf['fingerprint'][:23]}…)"
    else:
        serving = served.error or "nothing"
    return (f"wlb-verify-cert={str(pool.wlb_verify_cert).lower()}; pool CA certificates: "
            f"{names}; the appliance serves {serving}")
