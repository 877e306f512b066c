"""The local apply journal: each step's undo is written (and fsynced) before the step runs.

One JSON object per line under ``STATE_DIR/<target>/journal.jsonl``. A journal that is
still there means an apply did not finish: the next apply refuses until ``wlbplan
rollback`` (or ``apply --resume``) settles it. Finished journals move to ``history/``. No
key material is ever written here: undo records hold names, paths, flags and public
certificates; the header holds the plan being run (public certificates, no secrets).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wlbplan.errors import WlbplanError
from wlbplan.run.pids import alive

JOURNAL = "journal.jsonl"


class JournalError(WlbplanError):
    """A journal is left from an earlier apply, or cannot be read or written."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Entry:
    index: int
    action: str
    undo: dict[str, Any] | None


@dataclass
class Replay:
    """What a journal says happened: started steps, their undo, what was already undone.

    A resumed apply may start the same step index twice (undone, then run again), so
    undos are matched to *entries* (positions in ``started``), not to step indexes.
    """

    header: dict[str, Any]
    started: list[Entry] = field(default_factory=list)
    done: set[int] = field(default_factory=set)
    """Step indexes that completed."""
    undone: set[int] = field(default_factory=set)
    """Positions in ``started`` whose undo succeeded."""
    undo_attempted: bool = False
    """A rollback has begun: only a rollback may finish this journal."""
    incomplete: tuple[str, ...] = ()
    """The last rollback went through every step and could not undo these (with what to
    do by hand); empty once a rollback after it undid them."""
    ended: str | None = None

    def pending_undo(self) -> list[Entry]:
        """Started steps not yet undone, last first: what a rollback must still do."""
        return [e for pos, e in reversed(list(enumerate(self.started)))
                if pos not in self.undone]

    def unfinished(self) -> list[Entry]:
        """Steps that started but neither completed nor were undone (a crash mid-step),
        last first: they may have half-happened."""
        last_start = {e.index: pos for pos, e in enumerate(self.started)}
        return [e for pos, e in reversed(list(enumerate(self.started)))
                if pos not in self.undone and last_start[e.index] == pos
                and e.index not in self.done]

    def mark_undone(self, index: int) -> None:
        """The newest not-yet-undone entry of step ``index`` has been undone."""
        for pos in range(len(self.started) - 1, -1, -1):
            if self.started[pos].index == index and pos not in self.undone:
                self.undone.add(pos)
                return


class Journal:
    def __init__(self, state_dir: Path, target: str) -> None:
        self.folder = state_dir / target
        self.path = self.folder / JOURNAL

    def exists(self) -> bool:
        return self.path.exists()

    def _write(self, record: dict[str, Any]) -> None:
        record = {"time": _now(), **record}
        line = json.dumps(record, sort_keys=True) + "\n"
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def begin(self, header: dict[str, Any]) -> None:
        if self.exists():
            raise JournalError(self.leftover_message(header.get("target", "?")))
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._write({"event": "begin", **header})

    def leftover_message(self, target: str) -> str:
        header = self.replay().header
        started = header.get("time", "an unknown time")
        if journal_owner_alive(header):
            return (f"{target}: another apply is running for this target from this machine: "
                    f"lock {header.get('lock_id')} held by {header.get('owner')} (pid "
                    f"{header.get('pid')}) since {started}; wait for it to finish")
        if self.replay().incomplete:
            return (
                f"{target}: the rollback of an earlier apply (started {started}) was "
                f"incomplete; its journal is {self.path}. Run `wlbplan rollback SPEC "
                f"--target {target}` again once the cause is fixed, or restore by hand what "
                "it could not undo, then close it with `wlbplan force-unlock SPEC --target "
                f"{target} {header.get('lock_id')}`, before applying again."
            )
        return (
            f"{target}: an earlier apply (started {started}) did not finish; its journal is "
            f"{self.path}. Run `wlbplan rollback SPEC --target {target}` to undo what it did, "
            f"or `wlbplan apply SPEC --resume --target {target}` to finish it, before "
            "applying again."
        )

    def resume(self, header: dict[str, Any]) -> None:
        """A new process takes over this journal (``apply --resume``): its pid, host,
        owner and lock replace the dead run's, so a rollback can tell it is alive."""
        self._write({"event": "resume", **header})

    def step(self, index: int, action: str, undo: dict[str, Any] | None) -> None:
        self._write({"event": "step", "index": index, "action": action, "undo": undo})

    def done(self, index: int) -> None:
        self._write({"event": "done", "index": index})

    def undone(self, index: int, ok: bool, message: str = "", *,
               purpose: str = "rollback") -> None:
        """``purpose``: ``rollback``, or ``resume`` (the step a dead run was in, undone
        to be run again: that does not start a rollback)."""
        self._write({"event": "undone", "index": index, "ok": ok, "message": message,
                     "purpose": purpose})

    def incomplete(self, failures: list[str]) -> None:
        """A rollback went through every step and could not undo ``failures``: the journal
        stays (a later rollback may succeed), and ``force-unlock`` may close it."""
        self._write({"event": "incomplete", "failures": failures})

    def end(self, outcome: str) -> Path:
        """Close the journal and move it to history; returns where it went."""
        self._write({"event": "end", "outcome": outcome})
        history = self.folder / "history"
        history.mkdir(exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        archived = history / f"{stamp}-{outcome}.jsonl"
        os.replace(self.path, archived)
        return archived

    def replay(self) -> Replay:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError as err:
            raise JournalError(f"cannot read the journal {self.path}: {err.strerror}") from None
        replay = Replay(header={})
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash: its step never started
            _apply(replay, record)
        return replay


def _apply(replay: Replay, record: dict[str, Any]) -> None:
    event = record.get("event")
    if event == "begin":
        replay.header = record
    elif event == "resume":
        # Who runs it now; "time" stays the original apply's start.
        taken = {k: v for k, v in record.items() if k not in ("event", "time")}
        replay.header = {**replay.header, **taken}
    elif event == "step":
        replay.started.append(Entry(record["index"], record["action"], record.get("undo")))
        replay.done.discard(record["index"])  # started again (resume): not done until said
    elif event == "done":
        replay.done.add(record["index"])
    elif event == "undone":
        if record.get("purpose", "rollback") == "rollback":
            replay.undo_attempted = True
            replay.incomplete = ()  # a new rollback pass: only its own end may say so
        if record.get("ok"):
            replay.mark_undone(record["index"])
    elif event == "incomplete":
        failures = record.get("failures")
        replay.incomplete = tuple(str(f) for f in failures) if isinstance(failures, list) \
            else ("(not recorded)",)
    elif event == "end":
        replay.ended = record.get("outcome")


def journal_owner_alive(header: dict[str, Any]) -> bool:
    """Is the process that began this journal still running here?"""
    pid = header.get("pid")
    if not isinstance(pid, int) or header.get("host") != socket.gethostname():
        return False
    return pid != os.getpid() and alive(pid)
