"""Progress over a fleet's targets, on stderr: a rich bar on a terminal (done and failed
counts, elapsed time, the slowest target still running), one plain line per finished
target elsewhere (CI logs, files). Fed by ``target_start``/``target_done`` events
(model.events); stdout is never touched, it carries the requested format alone.

Target names come from the spec and an event's words may quote a host: every line is
``safe``, and the bar renders plain Text (no rich markup is read from them).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import IO, cast

from rich.console import Console
from rich.file_proxy import FileProxy
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    Task,
    TimeElapsedColumn,
)
from rich.progress import Progress as RichProgress
from rich.text import Text

from wlbplan.model.events import TARGET_DONE, TARGET_START, Event
from wlbplan.render.safe import safe


class Tally:
    """What has happened so far (thread-safe: targets finish in parallel)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.started = time.monotonic()
        self.done = 0
        self.failed: list[str] = []
        self._running: dict[str, float] = {}
        self._lock = threading.Lock()

    def record(self, event: Event) -> tuple[str, bool, float] | None:
        """Count ``event``; for a finished target: its name, whether it is ok, seconds."""
        name = str(event.get("target", ""))
        with self._lock:
            if event.get("type") == TARGET_START:
                self._running[name] = time.monotonic()
                return None
            if event.get("type") != TARGET_DONE:
                return None
            began = self._running.pop(name, None)
            self.done += 1
            ok = bool(event.get("ok"))
            if not ok:
                self.failed.append(name)
        seconds = event.get("seconds")
        took = float(seconds) if isinstance(seconds, int | float) else (
            time.monotonic() - began if began is not None else 0.0)
        return name, ok, took

    def slowest(self) -> tuple[str, float] | None:
        """The target running longest now, and for how long."""
        with self._lock:
            if not self._running:
                return None
            name, began = min(self._running.items(), key=lambda item: item[1])
        return name, time.monotonic() - began

    def closing(self, label: str) -> str:
        failed = f", {len(self.failed)} failed ({', '.join(self.failed)})" if self.failed else ""
        ok = self.done - len(self.failed)
        noun = "target" if self.total == 1 else "targets"
        return (f"{label}: {self.total} {noun}, {ok} ok{failed} "
                f"in {time.monotonic() - self.started:.1f}s")


class PlainProgress:
    """One line per finished target, and a closing line."""

    def __init__(self, stream: IO[str], label: str, total: int) -> None:
        self._stream = stream
        self._label = label
        self.tally = Tally(total)
        self._lock = threading.Lock()

    @property
    def stream(self) -> IO[str]:
        """Where other stderr lines go while this progress runs."""
        return self._stream

    def __call__(self, event: Event) -> None:
        finished = self.tally.record(event)
        if finished is None:
            return
        name, ok, took = finished
        tally = self.tally
        self._line(f"{name}: {'ok' if ok else 'FAILED'} ({took:.2f}s) "
                   f"[{tally.done}/{tally.total}, {len(tally.failed)} failed]")

    def _line(self, text: str) -> None:
        with self._lock:
            self._stream.write(safe(text) + "\n")
            self._stream.flush()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if exc_info[0] is None and self.tally.total:
            self._line(self.tally.closing(self._label))


class BarProgress:
    """A rich progress bar over the targets; other stderr lines print above it."""

    def __init__(self, stream: IO[str], label: str, total: int, *,
                 console: Console | None = None) -> None:
        self.tally = Tally(total)
        self._label = label
        self._console = console or Console(file=stream, highlight=False, emoji=False)
        # A text stream as far as writers can tell (io.TextIOBase).
        self._stream = cast("IO[str]", FileProxy(self._console, stream))
        self._bar = RichProgress(_Label(label), BarColumn(), MofNCompleteColumn(),
                             _Failed(self.tally), TimeElapsedColumn(), _Slowest(self.tally),
                             console=self._console, transient=False,
                             # stdout carries the requested format alone: never the bar's.
                             redirect_stdout=False, redirect_stderr=True)
        self._task = self._bar.add_task(label, total=total)

    @property
    def stream(self) -> IO[str]:
        return self._stream

    def __call__(self, event: Event) -> None:
        if self.tally.record(event) is not None:
            self._bar.update(self._task, completed=self.tally.done)

    def __enter__(self) -> BarProgress:
        if self.tally.total:  # nothing to count (every target failed before): no bar
            self._bar.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self.tally.total:
            return
        self._bar.refresh()
        self._bar.stop()
        if exc_info[0] is None:
            self._console.print(safe(self.tally.closing(self._label)), markup=False)


class _Label(ProgressColumn):
    def __init__(self, label: str) -> None:
        super().__init__()
        self._label = label

    def render(self, task: Task) -> Text:
        return Text(safe(self._label))


class _Failed(ProgressColumn):
    def __init__(self, tally: Tally) -> None:
        super().__init__()
        self._tally = tally

    def render(self, task: Task) -> Text:
        failed = len(self._tally.failed)
        return Text(f"{failed} failed", style="red" if failed else "")


class _Slowest(ProgressColumn):
    """The target running longest: where a hung host shows itself."""

    def __init__(self, tally: Tally) -> None:
        super().__init__()
        self._tally = tally

    def render(self, task: Task) -> Text:
        slowest = self._tally.slowest()
        if slowest is None:
            return Text("")
        name, seconds = slowest
        return Text(f"slowest: {safe(name)} ({seconds:.0f}s)")


Progress = PlainProgress | BarProgress


def on_a_terminal(stream: IO[str]) -> bool:
    """A bar only where it can redraw itself: a terminal that is not TERM=dumb."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"


def progress(label: str, total: int, stream: IO[str] | None = None) -> Progress:
    """The progress for ``total`` targets on ``stream`` (default stderr)."""
    out = stream if stream is not None else sys.stderr
    if on_a_terminal(out):
        return BarProgress(out, label, total)
    return PlainProgress(out, label, total)
