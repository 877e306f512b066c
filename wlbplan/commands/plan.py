"""``wlbplan plan SPEC`` and ``wlbplan show PLAN``."""

from __future__ import annotations

import shlex
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
    from wlbplan.core.plan import Plan
    from wlbplan.model.shard import Shard

EXIT_ERROR = 1
EXIT_CHANGES = 2


@click.command("plan")
@click.argument("spec", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="Save the plan to this file, for review and `wlbplan apply PLAN`.")
@targets_option
@shard_option
@format_option("text", "json", "markdown")
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 2 when the plan has changes or a target waits on you (0: none, "
                   "1: error).")
@parallelism_option
@timeout_option
@click.option("--replace", is_flag=True,
              help="CA-signed request stage: plan a new pending key and CSR even if "
                   "matching ones exist.")
def plan(spec: Path, out: Path | None, targets: tuple[str, ...], shard: Shard | None,
         output_format: str, detailed_exitcode: bool, parallelism: int, timeout: float | None,
         replace: bool) -> int:
    """Inspect, compare with the spec, and show the ordered steps that would fix it."""
    from wlbplan.commands.paths import check_destination
    from wlbplan.core.planfile import write_plan
    from wlbplan.render import render_plan
    from wlbplan.render.console import want_color
    from wlbplan.render.progress import progress
    from wlbplan.run.pipeline import plan_each, select
    from wlbplan.spec import load_spec

    loaded = with_timeout(load_spec(spec), timeout)
    chosen = select(loaded, targets, shard)
    note_empty_shard(shard, chosen)
    if out is not None:
        check_destination(out, "plan")
    with progress("plan", len(chosen)) as shown:
        made = plan_each(loaded, chosen, parallelism, replace=replace, progress=shown)
    click.echo(render_plan(made, output_format, color=want_color()), nl=False)
    if made.failed:
        _explain_failures(spec, made, saved=out is not None)
        return EXIT_ERROR
    if out is not None:
        write_plan(made, out)
        click.echo(f"Saved the plan to: {out}\n\nTo perform exactly these actions, run:\n"
                   f"  wlbplan apply {shlex.quote(str(out))}", err=True)
    return EXIT_CHANGES if detailed_exitcode and made.needs_action else 0


def _explain_failures(spec: Path, made: Plan, saved: bool) -> None:
    """Terraform's rule: a plan with errors is not saved. Say which targets to fix, or how
    to plan the others alone."""
    from wlbplan.model.text import visible

    others = [t.target for t in made.targets if t.failure is None]
    lines = ["Error: no plan could be made for:"]
    for target in made.failed:
        # The reason quotes what the hosts and the spec hold (xe's words, a certificate's
        # subject, a path): each of its own lines is shown escaped, never raw.
        reason = "\n      ".join(visible(line) for line in target.reason.split("\n"))
        lines.append(f"  - {target.target} ({target.status}): {reason}")
    if saved:
        lines.append("The plan was not saved: a saved plan covers every selected target.")
    if others:
        only = " ".join(f"--target {shlex.quote(n)}" for n in others)
        lines.append(f"Fix them, or leave them out: wlbplan plan {shlex.quote(str(spec))} "
                     f"{only}")
    click.echo("\n".join(lines), err=True)


@click.command("show")
@click.argument("plan_file", metavar="PLAN", type=click.Path(path_type=Path))
@format_option("text", "json", "markdown")
def show(plan_file: Path, output_format: str) -> int:
    """Show a saved plan, checked against its spec (no host contacted)."""
    from wlbplan.render import render_plan
    from wlbplan.render.console import want_color
    from wlbplan.run.pipeline import read_saved_plan

    saved, _ = read_saved_plan(plan_file)
    click.echo(render_plan(saved, output_format, color=want_color()), nl=False)
    return 0
