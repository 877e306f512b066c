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
    """Show what the appliance serves and what the pool trusts (changes nothing)."""
    from wlbplan.render import inspection
    from wlbplan.render.console import want_color
    from wlbplan.run.pipeline import inspect_all, select
    from wlbplan.spec import load_spec

    loaded = with_timeout(load_spec(spec), timeout)
    chosen = select(loaded, targets, shard)
    note_empty_shard(shard, chosen)
    observed = inspect_all(loaded, chosen, parallelism)
    if output_format == "json":
        click.echo(inspection.to_json(observed), nl=False)
    else:
        click.echo(inspection.to_text(observed, color=want_color()), nl=False)
    return 0
