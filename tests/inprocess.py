"""``wlbplan`` run in this process, as an operator runs it: the real entry point
(``wlbplan.cli.main``), its exit code and its output, without a new interpreter's start
(a second or more on a busy machine) for every run."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import leakscan

from wlbplan.cli import main


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    @property
    def said(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


def wlbplan(*argv: str | Path) -> Run:
    """``wlbplan ARGV``: its exit code and what it printed."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in argv])
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else 1
    run = Run(code, out.getvalue(), err.getvalue())
    leakscan.record(f"the output of `wlbplan {argv[0] if argv else ''}` in-process",
                    run.out, run.err)
    return run


def unprintable_lines(run: Run) -> list[str]:
    """Output lines holding a character shown raw that should have been escaped (a line
    break inside a value, ESC, a bidi override ...): host and spec text shown as data."""
    lines = (run.out + run.err).split("\n")
    return [repr(line[:200]) for line in lines if not line.isprintable()]
