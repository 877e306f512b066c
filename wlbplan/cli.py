"""Command line: parse, call the library, render, exit. No logic of its own.

Exit codes (the same in every command): 0 success/nothing to do, 1 expected error,
2 success with something to act on, 3 internal error (bug), 130 interrupted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import NoReturn

import click

from wlbplan import __version__
from wlbplan.connectors import stop
from wlbplan.errors import Interrupted, SpecError, StalePlanError, WlbplanError
from wlbplan.model.text import visible

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_ACTION = 2
EXIT_BUG = 3
EXIT_INTERRUPTED = 130
# After a stop, how long worker threads get to notice that their commands were ended.
_STOP_GRACE = 1.0

def _log_bug(exc: BaseException) -> Path:
    fd, name = tempfile.mkstemp(prefix="wlbplan-crash-", suffix=".log")
    with os.fdopen(fd, "w") as log:
        log.write(f"wlbplan {__version__}, argv: {sys.argv!r}\n")
        log.write("".join(traceback.format_exception(exc)))
    return Path(name)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wlbplan")
def cli() -> None:
    """Plan and apply the TLS trust between a XenServer pool and its WLB appliance."""


def _register() -> None:
    from wlbplan.commands.apply import apply, force_unlock, rollback
    from wlbplan.commands.audit import audit
    from wlbplan.commands.import_ import import_
    from wlbplan.commands.inspect import inspect
    from wlbplan.commands.plan import plan, show
    from wlbplan.commands.validate import schema, validate
    from wlbplan.lab.cli import lab

    for command in (validate, inspect, plan, show, apply, rollback, force_unlock, audit,
                    import_, schema, lab):
        cli.add_command(command)


_register()


# Messages made of lines, each built with what it quotes already escaped: a spec's
# diagnostics, a stale plan's list of what moved.
_LINED = (SpecError, StalePlanError)


def error_text(err: WlbplanError) -> str:
    """``Error: …`` on one line, whatever a host put in the message (an xe error, a
    certificate subject): a line break in it shows as ``\\n`` and never starts a line."""
    lines = str(err).split("\n") if isinstance(err, _LINED) else [str(err)]
    return "\n".join(visible(line) for line in [f"Error: {lines[0]}", *lines[1:]])


def _stop_now(signum: int, frame: FrameType | None) -> None:
    stop.stop_all()
    raise KeyboardInterrupt


@contextlib.contextmanager
def _signals_stop() -> Iterator[None]:
    """SIGINT and SIGTERM end every command in flight (local process groups killed, SSH
    connections closed, see connectors.stop) and unwind as KeyboardInterrupt. An apply
    holds them while its steps run instead (commands/apply.py)."""
    try:
        previous = {sig: signal.signal(sig, _stop_now) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: signals are not ours to take
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _exit_interrupted() -> NoReturn:
    """Exit 130 now: every command was ended, so worker threads return at once; one that
    does not (a child that escaped its process group still holding a pipe) is not waited
    for."""
    click.echo("Interrupted.", err=True)
    stop.stop_all()
    deadline = time.monotonic() + _STOP_GRACE
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() and not t.daemon and t is not threading.current_thread()
           for t in threading.enumerate()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_INTERRUPTED)


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point: map every outcome to the documented exit codes."""
    if not sys.warnoptions:
        # A library's warning speaks to its developers, in Python's words (cryptography on
        # a host's certificate with a malformed name: "UserWarning: Attribute's length
        # must be ..."): the operator reads wlbplan's own findings instead. -W shows them.
        warnings.simplefilter("ignore")
    try:
        with _signals_stop():
            rv = cli.main(args=argv, prog_name="wlbplan", standalone_mode=False)
    except (KeyboardInterrupt, click.exceptions.Abort, Interrupted):
        _exit_interrupted()
    except WlbplanError as err:
        click.echo(error_text(err), err=True)
        sys.exit(err.exit_code)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as usage:
        usage.show()
        # click's usage errors exit 2, which wlbplan reserves for "changes present".
        sys.exit(EXIT_ERROR)
    except Exception as exc:  # the one place that turns a bug into exit 3
        path = _log_bug(exc)
        click.echo(
            f"Internal error (a bug in wlbplan): {type(exc).__name__}: {visible(str(exc))}\n"
            f"The traceback is in {path}; please attach it to a bug report.",
            err=True,
        )
        sys.exit(EXIT_BUG)
    sys.exit(rv if isinstance(rv, int) else EXIT_OK)
