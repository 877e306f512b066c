"""``wlbplan audit SPEC``: read-only findings with stable rule ids, for people and for CI."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, cast

import click

from wlbplan.commands.options import format_option, parallelism_option, targets_option
from wlbplan.model.text import visible
from wlbplan.render import AUDIT_FORMATS

if TYPE_CHECKING:
    from wlbplan.core.findings import FailOn

EXIT_ERROR = 1
EXIT_FINDINGS = 2


@click.command("audit")
@click.argument("spec", type=click.Path(path_type=Path))
@targets_option
@format_option(*AUDIT_FORMATS)
@click.option("--fail-on", type=click.Choice(["error", "warning", "never"]), default="error",
              show_default=True,
              help="Exit 2 when a finding is at least this severe (notes never fail).")
@click.option("--report", "reports", multiple=True, metavar="FORMAT=FILE",
              callback=lambda _c, _p, value: _parse_reports(value),
              help="Also write the audit in FORMAT to FILE (repeatable): one inspection, "
                   "several reports, e.g. --report sarif=wlbplan.sarif "
                   "--report junit=audit.xml.")
@parallelism_option
def audit(spec: Path, targets: tuple[str, ...], output_format: str, fail_on: str,
          reports: tuple[tuple[str, Path], ...], parallelism: int) -> int:
    """Check pools and appliances against the spec and TLS policy; change nothing.

    Exit 0: nothing at or above --fail-on; 2: findings at or above it; 1: a target
    could not be inspected (the report still covers the others).
    """
    from wlbplan.commands.paths import check_destination
    from wlbplan.render import render_audit
    from wlbplan.render.console import want_color
    from wlbplan.run.pipeline import audit_all, select
    from wlbplan.spec import load_spec

    loaded = load_spec(spec)
    for fmt, path in reports:
        check_destination(path, f"{fmt} report")
    threshold = cast("FailOn", None if fail_on == "never" else fail_on)
    made = audit_all(loaded, select(loaded, targets), parallelism)
    click.echo(render_audit(made, output_format, color=want_color(), fail_on=threshold),
               nl=False)
    for fmt, path in reports:
        _write(path, render_audit(made, fmt, fail_on=threshold))
    if output_format == "github":
        _job_summary(render_audit(made, "markdown", fail_on=threshold))
    if made.unreachable:
        names = ", ".join(t.target for t in made.unreachable)
        click.echo(visible(f"Error: could not audit {names}; the report covers the other "
                           "targets."), err=True)
        return EXIT_ERROR
    return EXIT_FINDINGS if made.fails(threshold) else 0


def _parse_reports(values: tuple[str, ...]) -> tuple[tuple[str, Path], ...]:
    parsed = []
    for value in values:
        fmt, sep, path = value.partition("=")
        if not sep or not path or fmt not in AUDIT_FORMATS:
            raise click.BadParameter(
                f"{value!r}: expected FORMAT=FILE with FORMAT one of {', '.join(AUDIT_FORMATS)}",
                param_hint="--report")
        parsed.append((fmt, Path(path)))
    return tuple(parsed)


def _write(path: Path, text: str) -> None:
    from wlbplan.errors import WlbplanError

    try:
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        raise WlbplanError(f"cannot write the report {path}: {err.strerror or err}") from err
    click.echo(f"Wrote {path}.", err=True)


def _job_summary(markdown: str) -> None:
    """GitHub Actions shows $GITHUB_STEP_SUMMARY on the run's page; append, as steps do."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as summary:
            summary.write(markdown)
