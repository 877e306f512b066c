"""``wlbplan audit SPEC``: read-only findings with stable rule ids, for people and for CI."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, cast

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
from wlbplan.model.text import visible
from wlbplan.render import AUDIT_FORMATS, RULES_FORMATS

if TYPE_CHECKING:
    from wlbplan.core.findings import FailOn
    from wlbplan.model.ignore import Ignore
    from wlbplan.model.shard import Shard

EXIT_ERROR = 1
EXIT_FINDINGS = 2


@click.command("audit")
@click.argument("spec", type=click.Path(path_type=Path), required=False)
@targets_option
@shard_option
@format_option(*AUDIT_FORMATS)
@click.option("--fail-on", type=click.Choice(["error", "warning", "never"]), default="error",
              show_default=True,
              help="Exit 2 when a finding is at least this severe (notes never fail).")
@click.option("--ignore", "ignores", multiple=True, metavar="RULE[:TARGET][@YYYY-MM-DD]",
              callback=lambda _c, _p, value: _parse_ignores(value),
              help="Accept RULE's findings (on TARGET only, until that day, UTC) "
                   "(repeatable): reported as accepted, never counted or failing; they "
                   "count again the day after. Adds to the spec's audit.ignore.")
@click.option("--list-rules", is_flag=True,
              help="Print the catalogue of rules (id, default level, title, help) in "
                   f"--format {'|'.join(RULES_FORMATS)}, and exit.")
@click.option("--report", "reports", multiple=True, metavar="FORMAT=FILE",
              callback=lambda _c, _p, value: _parse_reports(value),
              help="Also write the audit in FORMAT to FILE (repeatable): one inspection, "
                   "several reports, e.g. --report sarif=wlbplan.sarif "
                   "--report junit=audit.xml.")
@parallelism_option
@timeout_option
@click.option("--state-dir", type=click.Path(path_type=Path), default=None,
              help="The state folder whose journals tell how the last ACME order ended "
                   "(default: .wlbplan/ beside the spec).")
def audit(spec: Path | None, targets: tuple[str, ...], shard: Shard | None, output_format: str,
          fail_on: str, ignores: tuple[Ignore, ...], list_rules: bool,
          reports: tuple[tuple[str, Path], ...], parallelism: int,
          timeout: float | None, state_dir: Path | None) -> int:
    """Check pools and appliances against the spec and TLS policy; change nothing.

    Exit 0: nothing at or above --fail-on; 2: findings at or above it; 1: a target
    could not be inspected (the report still covers the others). Accepted findings
    (--ignore, audit.ignore) never fail the run.
    """
    from wlbplan.commands.paths import check_destination
    from wlbplan.core.ignores import accept, target_problem
    from wlbplan.render import render_audit
    from wlbplan.render.console import want_color
    from wlbplan.render.progress import progress
    from wlbplan.run.pipeline import audit_all, select
    from wlbplan.spec import load_spec

    if list_rules:
        return _list_rules(output_format)
    if spec is None:
        raise click.UsageError("Missing argument 'SPEC'.")
    loaded = with_timeout(load_spec(spec), timeout)
    names = [t.name for t in loaded.targets]
    for ignore in ignores:
        problem = target_problem(ignore, names)
        if problem:
            raise click.BadParameter(problem, param_hint="--ignore")
    chosen = select(loaded, targets, shard)
    note_empty_shard(shard, chosen)
    for fmt, path in reports:
        check_destination(path, f"{fmt} report")
    threshold = cast("FailOn", None if fail_on == "never" else fail_on)
    with progress("audit", len(chosen)) as shown:
        audited = audit_all(loaded, chosen, parallelism, progress=shown, state_dir=state_dir)
    # The spec's entries first: with both in force, the one with a reason is shown.
    made = accept(audited, (*loaded.ignores, *ignores))
    click.echo(render_audit(made, output_format, color=want_color(), fail_on=threshold),
               nl=False)
    for fmt, path in reports:
        _write(path, render_audit(made, fmt, fail_on=threshold))
    if output_format == "github":
        _job_summary(render_audit(made, "markdown", fail_on=threshold))
    if made.failed_targets:
        failed = ", ".join(t.target for t in made.failed_targets)
        click.echo(visible(f"Error: could not audit {failed}; the report covers the other "
                           "targets."), err=True)
        return EXIT_ERROR
    return EXIT_FINDINGS if made.fails(threshold) else 0


def _list_rules(output_format: str) -> int:
    from wlbplan.render import render_rules

    if output_format not in RULES_FORMATS:
        raise click.BadParameter(f"--list-rules prints {', '.join(RULES_FORMATS)}, "
                                 f"not {output_format}", param_hint="--format")
    click.echo(render_rules(output_format), nl=False)
    return 0


def _parse_ignores(values: tuple[str, ...]) -> tuple[Ignore, ...]:
    from wlbplan.core.ignores import rule_problem
    from wlbplan.model.ignore import parse_option

    parsed = []
    for value in values:
        try:
            ignore = parse_option(value)
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="--ignore") from None
        problem = rule_problem(ignore.rule)
        if problem:
            raise click.BadParameter(problem, param_hint="--ignore")
        parsed.append(ignore)
    return tuple(parsed)


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
