"""The local apply journal: each step's undo is written (and fsynced) before the step runs.

One JSON object per line under ``STATE_DIR/<target>/journal.jsonl``. A journal that is
still there means an apply did not finish: the next apply refuses until ``wlbplan
rollback`` settles it. Finished journals move to ``history/``. No key material is ever
written here: undo records hold names, paths, flags and public certificates.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wlbplan.errors import WlbplanError

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
    """What a journal says happened: started steps, their undo, what was already undone."""

    header: dict[str, Any]
    started: list[Entry] = field(default_factory=list)
    done: set[int] = field(default_factory=set)
    undone: set[int] = field(default_factory=set)
    ended: str | None = None

    def pending_undo(self) -> list[Entry]:
        """Started steps not yet undone, last first: what a rollback must still do."""
        return [e for e in reversed(self.started) if e.index not in self.undone]


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
        from wlbplan.apply import journal_owner_alive

        header = self.replay().header
        started = header.get("time", "an unknown time")
        if journal_owner_alive(header):
            return (f"{target}: another apply is running for this target from this machine: "
                    f"lock {header.get('lock_id')} held by {header.get('owner')} (pid "
                    f"{header.get('pid')}) since {started}; wait for it to finish")
        return (
            f"{target}: an earlier apply (started {started}) did not finish; its journal is "
            f"{self.path}. Run `wlbplan rollback SPEC --target {target}` to undo what it did "
            "before applying again."
        )

    def step(self, index: int, action: str, undo: dict[str, Any] | None) -> None:
        self._write({"event": "step", "index": index, "action": action, "undo": undo})

    def done(self, index: int) -> None:
        self._write({"event": "done", "index": index})

    def undone(self, index: int, ok: bool, message: str = "") -> None:
        self._write({"event": "undone", "index": index, "ok": ok, "message": message})

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
    elif event == "step":
        replay.started.append(Entry(record["index"], record["action"], record.get("undo")))
    elif event == "done":
        replay.done.add(record["index"])
    elif event == "undone" and record.get("ok"):
        replay.undone.add(record["index"])
    elif event == "end":
        replay.ended = record.get("outcome")
