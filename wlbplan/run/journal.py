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
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wlbplan.errors import WlbplanError
from wlbplan.limits import JOURNAL as JOURNAL_CAP
from wlbplan.limits import TooLarge, read_file
from wlbplan.model.spec import cli_command
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
    reason: str | None = None
    """Why the apply was rolled back, as it said then (None: not recorded)."""
    ended_at: str | None = None
    outputs: dict[int, dict[str, Any]] = field(default_factory=dict)
    """What completed steps handed on, by step index (the ACME order's chain)."""
    extension: dict[str, Any] | None = None
    """The steps planned once the ACME order returned (a target plan), run after the
    header's: one journal, one rollback for both."""

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
    def __init__(self, state_dir: Path, target: str, spec_path: str = "") -> None:
        self.state_dir = state_dir
        self.target = target
        self.spec_path = spec_path  # for the commands its messages offer
        self.folder = state_dir / target
        self.path = self.folder / JOURNAL

    def exists(self) -> bool:
        return os.path.lexists(self.path)

    def _write(self, record: dict[str, Any]) -> None:
        record = {"time": _now(), **record}
        line = (json.dumps(record, sort_keys=True) + "\n").encode()
        try:
            # 0600 from its first instant; never through a planted symlink.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW,
                         0o600)
        except OSError as err:
            raise JournalError(f"cannot write the journal {self.path}: "
                               f"{err.strerror or err}") from None
        with os.fdopen(fd, "wb") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def begin(self, header: dict[str, Any]) -> None:
        if self.exists():
            raise JournalError(self.leftover_message(header.get("target", "?")))
        for folder in (self.state_dir, self.folder):
            _private_folder(folder)
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
                f"incomplete; its journal is {self.path}. Run `{self._cli('rollback', target)}` "
                "again once the cause is fixed, or restore by hand what it could not undo, "
                "then close it with "
                f"`{self._cli('force-unlock', target, str(header.get('lock_id')))}`, before "
                "applying again."
            )
        return (
            f"{target}: an earlier apply (started {started}) did not finish; its journal is "
            f"{self.path}. Run `{self._cli('rollback', target)}` to undo what it did, or "
            f"`{self._cli('apply', target, '--resume')}` to finish it, before applying again."
        )

    def resume(self, header: dict[str, Any]) -> None:
        """A new process takes over this journal (``apply --resume``): its pid, host,
        owner and lock replace the dead run's, so a rollback can tell it is alive."""
        self._write({"event": "resume", **header})

    def step(self, index: int, action: str, undo: dict[str, Any] | None) -> None:
        self._write({"event": "step", "index": index, "action": action, "undo": undo})

    def done(self, index: int, output: dict[str, Any] | None = None) -> None:
        """Step ``index`` completed; ``output``: what it hands on (public data only)."""
        self._write({"event": "done", "index": index,
                     **({"output": output} if output is not None else {})})

    def extend(self, plan: dict[str, Any]) -> None:
        """More steps for this apply (planned once the ACME order returned), recorded
        before the first of them runs."""
        self._write({"event": "extend", "plan": plan})

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

    def end(self, outcome: str, reason: str | None = None) -> Path:
        """Close the journal and move it to history; returns where it went. ``reason``:
        why a run was rolled back (audit reports an ACME order that failed with it)."""
        self._write({"event": "end", "outcome": outcome,
                     **({"reason": reason} if reason else {})})
        history = self.folder / "history"
        _private_folder(history)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        archived = history / f"{stamp}-{outcome}.jsonl"
        os.replace(self.path, archived)
        return archived

    def replay(self) -> Replay:
        """What the journal says, from a file wlbplan can trust (``trusted``); a journal
        that is damaged in any way is JournalError, never a guess."""
        for path in (self.state_dir, self.folder, self.path):
            trusted(path)
        try:
            raw = read_file(self.path, JOURNAL_CAP, follow=False)
        except OSError as err:
            raise JournalError(f"cannot read the journal {self.path}: "
                               f"{err.strerror or err}") from None
        except TooLarge as err:
            raise self._damaged(str(err)) from None
        return self.parse(raw)

    def parse(self, raw: bytes) -> Replay:
        """What the bytes of this target's journal say (no file is touched); JournalError
        for anything but the records wlbplan writes, in the order it writes them."""
        try:
            lines = raw.decode("utf-8").split("\n")
        except UnicodeDecodeError:
            raise self._damaged("it is not UTF-8 text") from None
        # Every record ends with a line end: a last line without one was cut short by a
        # crash while it was written, and what it would have said never happened.
        complete = lines[:-1]
        if not complete:
            # The header is written before any step starts: none did. The lock (taken
            # just before the header) may still be held, under an id no one recorded.
            raise self._damaged("it is empty" if not raw else "its first line was cut short",
                                known="that apply stopped before its first step, so there is "
                                      "nothing to undo")
        replay = Replay(header={})
        for number, line in enumerate(complete, 1):
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                raise self._damaged(f"line {number} is not JSON") from None
            problem = _malformed(record, first=number == 1, target=self.target)
            if problem is not None:
                raise self._damaged(f"line {number}: {problem}")
            _apply(replay, record)
        return replay

    def _damaged(self, why: str, known: str = "") -> JournalError:
        """Nothing is undone from a journal that cannot be read whole: what it would say is
        unknown. The lock stays as it is, so no other apply starts on a pool in an unknown
        state; the operator settles it, and says so by moving the journal aside."""
        name = self.target
        told = known or ("wlbplan cannot tell what that apply did, so nothing was undone; "
                         "put back by hand what needs it")
        return JournalError(
            f"{name}: the journal {self.path} is damaged ({why}): {told}. The pool's apply "
            f"lock (if that apply took one) was left in place. Check the target "
            f"(`{self._cli('audit', name)}` shows it and the lock's id), then move the "
            "journal out of the state folder and remove the lock with "
            f"`{self._cli('force-unlock', name, 'LOCK_ID')}`.")

    def _cli(self, verb: str, target: str, *more: str) -> str:
        return cli_command(verb, self.spec_path, *more, "--target", target)


_EVENTS: dict[str, dict[str, tuple[type, ...]]] = {
    # event: {field: the types it may have}; "?" fields may be absent.
    "begin": {"target": (str,), "lock_id?": (str,), "plan?": (dict,)},
    "resume": {"lock_id": (str,)},
    "step": {"index": (int,), "action": (str,), "undo": (dict, type(None))},
    "done": {"index": (int,), "output?": (dict,)},
    "extend": {"plan": (dict,)},
    "undone": {"index": (int,), "ok": (bool,), "purpose?": (str,)},
    "incomplete": {"failures": (list,)},
    "end": {"outcome": (str,), "reason?": (str,), "time?": (str,)},
}


def _malformed(record: Any, *, first: bool, target: str) -> str | None:
    """Why a journal line is not a record wlbplan writes (None when it is one)."""
    if not isinstance(record, dict):
        return "not a JSON object"
    event = record.get("event")
    if not isinstance(event, str) or event not in _EVENTS:
        return f"unknown event {event!r}"
    if first != (event == "begin"):
        return "the apply's header (event begin) must be the first line, and only there"
    for name, kinds in _EVENTS[event].items():
        key, optional = name.rstrip("?"), name.endswith("?")
        if key not in record:
            if optional:
                continue
            return f"{event} has no {key!r}"
        value = record[key]
        # bool is an int in Python: an index of `true` is not an index.
        if not isinstance(value, kinds) or (kinds == (int,) and isinstance(value, bool)):
            return f"{event}.{key} is not a {kinds[0].__name__}"
    if event == "begin" and record["target"] != target:
        return f"written for target {record['target']!r}, not {target!r}"
    return None


def trusted(path: Path) -> None:
    """A state folder or file is trusted only when this user (or root) owns it and no one
    else can write it, like OpenSSH's StrictModes: a journal is executed, so anyone who
    could write one could make wlbplan undo whatever they wrote."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as err:
        raise JournalError(f"cannot check {path}: {err.strerror or err}") from None
    if stat.S_ISLNK(st.st_mode):
        raise JournalError(f"refusing {path}: it is a symbolic link; wlbplan's state "
                           "folders and journals must be plain folders and files")
    if st.st_uid not in (os.geteuid(), 0):
        raise JournalError(
            f"refusing {path}: it is owned by uid {st.st_uid}, not by the user running "
            f"wlbplan (uid {os.geteuid()}) or root; whoever owns it could make wlbplan undo "
            "anything. Check it, then `chown` it (or use your own --state-dir)")
    if st.st_mode & 0o022:
        raise JournalError(
            f"refusing {path}: it is writable by group or others (mode "
            f"{stat.S_IMODE(st.st_mode):04o}); anyone who can write it could make wlbplan "
            f"undo anything. Check it, then `chmod go-w {path}`")


def _private_folder(folder: Path) -> None:
    """``folder`` (and any missing parent) made 0700, or an existing one checked."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as err:
        raise JournalError(f"cannot create {folder}: {err.strerror or err}") from None
    trusted(folder)


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
        if isinstance(record.get("output"), dict):
            replay.outputs[record["index"]] = record["output"]
    elif event == "extend":
        replay.extension = record["plan"]
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
        replay.reason = record.get("reason")
        replay.ended_at = record.get("time")


def journal_owner_alive(header: dict[str, Any]) -> bool:
    """Is the process that began this journal still running here?"""
    pid = header.get("pid")
    if not isinstance(pid, int) or header.get("host") != socket.gethostname():
        return False
    return pid != os.getpid() and alive(pid)
