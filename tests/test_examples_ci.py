"""The CI examples (examples/ci/) are valid YAML and every wlbplan command line in them
uses commands, options and choices that wlbplan really has."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
import yaml

from wlbplan.cli import cli

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples" / "ci").glob("*.yml"))
COMMAND = re.compile(r"\bwlbplan ([a-z-]+)((?: [^|>;&#\n]+)?)")


def command_lines(path: Path) -> list[tuple[str, list[str]]]:
    code = "\n".join(line for line in path.read_text().splitlines()
                     if not line.lstrip().startswith("#"))
    return [(m.group(1), shlex.split(m.group(2))) for m in COMMAND.finditer(code)
            if m.group(1) in cli.commands]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_yaml(path: Path) -> None:
    assert isinstance(yaml.safe_load(path.read_text()), dict)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_wlbplan_command_lines_parse(path: Path) -> None:
    found = command_lines(path)
    assert found, f"{path.name} runs no wlbplan command"
    for name, args in found:
        command = cli.commands[name]
        # Parsing only: click checks options and choices, nothing runs.
        context = command.make_context(name, list(args), resilient_parsing=False)
        assert isinstance(context, click.Context)
