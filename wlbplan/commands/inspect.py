"""``wlbplan inspect SPEC``: what is there now, read-only."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from wlbplan.commands.options import (
    format_option,
    note_empty_shard,
    parallelism_option,
    shard_option,
    targets_option,
    timeout_option,
    with_timeout,
)

if TYPE_CHECKING:
    from wlbplan.model.observed import Uninspected
    from wlbplan.model.shard import Shard


@click.command("inspect")
@click.argument("spec", type=click.Path(path_type=Path))
@targets_option
@shard_option
@format_option("text", "json")
@parallelism_option
@timeout_option
def inspect(spec: Path, targets: tuple[str, ...], shard: Shard | None, output_format: str,
            parallelism: int, timeout: float | None) -> int:
    """Show what the appliance serves and what the pool trusts (changes nothing).

    Exit 0: every target inspected; 1: some could not be (each is listed with why, and
    the output covers the others).
    """
    from wlbplan.model.observed import Observed, Uninspected
    from wlbplan.render import inspection
    from wlbplan.render.console import want_color
    from wlbplan.render.progress import progress
    from wlbplan.run.pipeline import inspect_each, select
    from wlbplan.spec import load_spec

    loaded = with_timeout(load_spec(spec), timeout)
    chosen = select(loaded, targets, shard)
    note_empty_shard(shard, chosen)
    with progress("inspect", len(chosen)) as shown:
        seen = inspect_each(loaded, chosen, parallelism, progress=shown)
    results = [r if isinstance(r, Observed) else Uninspected(t.name, str(r))
               for t, r in zip(chosen, seen, strict=True)]
    if output_format == "json":
        click.echo(inspection.to_json(results), nl=False)
    else:
        click.echo(inspection.to_text(results, color=want_color()), nl=False)
    failed = [r for r in results if isinstance(r, Uninspected)]
    if failed:
        _explain_failures(failed)
        return 1
    return 0


def _explain_failures(failed: list[Uninspected]) -> None:
    from wlbplan.model.text import visible

    lines = ["Error: could not inspect:"]
    for item in failed:
        # Why quotes what the hosts said: each of its lines shown escaped, never raw.
        why = "\n      ".join(visible(line) for line in item.error.split("\n"))
        lines.append(visible(f"  - {item.target} (unreachable): ") + why)
    lines.append("The output covers the other targets.")
    click.echo("\n".join(lines), err=True)
