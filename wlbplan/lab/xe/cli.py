"""The command line (newcli.ml), the printer (cli_printer.ml) and one call's context."""

from __future__ import annotations

import sys

from wlbplan.lab import xe_state
from wlbplan.lab.xe.errors import cli_failure

# Not typing's: importing typing costs every xe call ~10 ms. mypy reads it as true.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from wlbplan.lab.layout import HostLayout, TargetLayout
    from wlbplan.lab.xe_state import State

    Handler = Callable[["Context"], None]


# newcli.ml options that take a value; they choose the server and credentials, which the
# emulator (always the local coordinator) ignores.
_CONNECTION_OPTIONS = frozenset({"-s", "-p", "-u", "-pw", "-pwf"})
_IGNORED_FLAGS = frozenset({"--nossl", "--debug", "--debug-on-fail"})
# cli_operations.ml stdparams: never object fields, never filters.
STDPARAMS = frozenset({"server", "password", "port", "username", "minimal", "force",
                       "multiple", "all", "message-priority", "trace"})


class Call:
    """One parsed invocation: the command and its `key=value` parameters."""

    def __init__(self, command: str | None, params: dict[str, str]) -> None:
        self.command = command
        self.params = params

    @property
    def minimal(self) -> bool:
        return self.params.get("minimal", "false").lower() in ("true", "t", "1", "yes")


def parse(argv: Sequence[str]) -> Call:
    command: str | None = None
    params: dict[str, str] = {}
    args = iter(argv)
    for arg in args:
        if arg in _CONNECTION_OPTIONS:
            next(args, None)
        elif arg in _IGNORED_FLAGS:
            continue
        elif arg.startswith("--"):
            key, _, value = arg[2:].partition("=")
            params[key] = value or "true"  # `--minimal` is `minimal=true`
        elif "=" in arg:
            key, _, value = arg.partition("=")
            params[key] = value
        elif command is None:
            command = arg
        else:
            params[arg] = ""  # cli_frontend.ml parse_params_2: a bare word is `word=`
    return Call(command, params)


# --- output (cli_printer.ml) ----------------------------------------------------------

Record = list[tuple[str, str]]


def multi_line_record(record: Record) -> str:
    """cli_printer.ml: first key padded on the right, the others on the left."""
    width = 4 + max((len(k) for k, _ in record), default=0)
    lines = [
        f"{k.ljust(width) if i == 0 else k.rjust(width)}: {v}" for i, (k, v) in enumerate(record)
    ]
    return "\n".join(lines) + "\n"


def escape_commas(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,")


class Printer:
    """PTable / PList printing; ``--minimal`` collects one comma-separated line."""

    def __init__(self, minimal: bool) -> None:
        self.minimal = minimal
        self.collected: list[str] = []

    def _print(self, text: str) -> None:
        sys.stdout.write(text + "\n")  # newcli.ml prints with print_endline

    def table(self, records: list[Record]) -> None:
        if not self.minimal:
            for record in records:
                self._print(multi_line_record(record) + "\n")
        elif records and records[0]:
            self.collected.append(",".join(escape_commas(r[0][1]) for r in records))

    def lines(self, items: list[str]) -> None:
        if not self.minimal:
            for item in items:
                self._print(item)
        else:
            self.collected.append(",".join(escape_commas(i) for i in items))

    def flush(self) -> None:
        # xapi_cli.ml flushes the minimal printer after every successful command, even one
        # that printed nothing, so `--minimal` always yields one line.
        if self.minimal:
            self._print(",".join(reversed(self.collected)))


# --- context --------------------------------------------------------------------------


class Context:
    def __init__(self, params: dict[str, str], state_path: Path, printer: Printer) -> None:
        self.params = params
        self.state_path = state_path
        self.printer = printer

    @property
    def layout(self) -> TargetLayout:
        return xe_state.layout_of(self.state_path)

    def state(self) -> State:
        return xe_state.load(self.state_path)

    def host(self, record: State) -> HostLayout:
        return xe_state.host_layout(self.layout, record)

    def flag(self, name: str) -> bool:
        """cli_operations.ml get_bool_param (Record_util.bool_of_string)."""
        value = self.params.get(name, "false")
        if value.lower() in ("true", "yes", "false", "no"):
            return value.lower() in ("true", "yes")
        raise cli_failure(f"Failed to parse parameter '{name}': "
                          f"Expected 'true','yes','false','no', got {value}")

