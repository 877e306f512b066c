"""Options several commands share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

targets_option = click.option(
    "--target", "targets", multiple=True, metavar="NAME",
    help="Only this target (repeatable). Default: every target in the spec.",
)
parallelism_option = click.option(
    "--parallelism", type=click.IntRange(1, 256), default=10, show_default=True,
    help="How many targets to work on at once.",
)


def format_option(*choices: str) -> Callable[[F], F]:
    return click.option(
        "--format", "output_format", type=click.Choice(list(choices)), default=choices[0],
        show_default=True, help="Output format on stdout (progress and errors go to stderr).",
    )
