"""Options several commands share."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from wlbplan.model.shard import Shard
    from wlbplan.model.spec import Spec

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_PARALLELISM = 16
# The spec's own bound on defaults.timeout (its JSON Schema's maximum).
_MOST_SECONDS = 86400

targets_option = click.option(
    "--target", "targets", multiple=True, metavar="NAME",
    help="Only this target (repeatable). Default: every target in the spec.",
)


class ShardType(click.ParamType["Shard"]):
    name = "K/N"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Shard:
        from wlbplan.model.shard import Shard  # not at start-up: --version stays light

        if isinstance(value, Shard):
            return value
        try:
            return Shard.parse(str(value))
        except ValueError as err:
            self.fail(str(err), param, ctx)


shard_option = click.option(
    "--shard", type=ShardType(), default=None,
    help="Only the targets of shard K of N (1 <= K <= N), split by a stable hash of each "
         "target's name; with --target, of those. One CI job per shard covers a fleet.",
)


def note_empty_shard(shard: Shard | None, chosen: Sequence[object]) -> None:
    """A shard may hold no target (a small fleet, many jobs): say so, and do nothing."""
    if shard is not None and not chosen:
        click.echo(f"Note: shard {shard} holds none of the selected targets; nothing to do.",
                   err=True)
def finite_seconds(ctx: click.Context, param: click.Parameter, value: float) -> float:
    """click's FloatRange lets nan and inf by: a wait must end, so refuse them."""
    if not math.isfinite(value):
        raise click.BadParameter(f"{value}: give a finite number of seconds, 0 or more")
    return value


def _timeout_seconds(ctx: click.Context, param: click.Parameter,
                     value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and 0 < value <= _MOST_SECONDS):
        raise click.BadParameter(
            f"{value}: give a number of seconds above 0 and at most {_MOST_SECONDS}")
    return value


parallelism_option = click.option(
    "--parallelism", type=click.IntRange(1, 256), default=DEFAULT_PARALLELISM,
    show_default=True, help="How many targets to work on at once.",
)

timeout_option = click.option(
    "--timeout", "timeout", type=float, default=None, metavar="SECONDS",
    callback=_timeout_seconds,
    help="Bound every connect and every remote command by SECONDS: a host that hangs "
         "costs at most that and is reported unreachable, the others go on. Overrides "
         "the spec's defaults.timeout, command_timeout and ssh.connect_timeout.",
)


def with_timeout(spec: Spec, timeout: float | None) -> Spec:
    """The spec with ``--timeout`` applied, when given."""
    return spec if timeout is None else spec.with_timeout(timeout)


def format_option(*choices: str) -> Callable[[F], F]:
    return click.option(
        "--format", "output_format", type=click.Choice(list(choices)), default=choices[0],
        show_default=True, help="Output format on stdout (progress and errors go to stderr).",
    )
