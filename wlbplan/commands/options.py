"""Options several commands share."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

targets_option = click.option(
    "--target", "targets", multiple=True, metavar="NAME",
    help="Only this target (repeatable). Default: every target in the spec.",
)
def finite_seconds(ctx: click.Context, param: click.Parameter, value: float) -> float:
    """click's FloatRange lets nan and inf by: a wait must end, so refuse them."""
    if not math.isfinite(value):
        raise click.BadParameter(f"{value}: give a finite number of seconds, 0 or more")
    return value


parallelism_option = click.option(
    "--parallelism", type=click.IntRange(1, 256), default=10, show_default=True,
    help="How many targets to work on at once.",
)


def format_option(*choices: str) -> Callable[[F], F]:
    return click.option(
        "--format", "output_format", type=click.Choice(list(choices)), default=choices[0],
        show_default=True, help="Output format on stdout (progress and errors go to stderr).",
    )
