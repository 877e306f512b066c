"""``wlbplan validate SPEC`` and ``wlbplan schema``."""

from __future__ import annotations

from pathlib import Path

import click

EXIT_OK = 0
EXIT_INVALID = 1


@click.command("validate")
@click.argument("spec", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format on stdout.",
)
def validate(spec: Path, output_format: str) -> int:
    """Check a spec file: schema and rules, no host contacted.

    Prints each problem as FILE:LINE:COL: error|warning: PATH: message. Exit 0 when
    SPEC is valid (warnings allowed), 1 when it has errors.
    """
    from wlbplan.render.diagnostics import render_json, render_text
    from wlbplan.spec import load_spec_with_diagnostics

    # A missing file is reported like any other diagnostic, so --format json always
    # gives a document a CI job can parse.
    loaded, diagnostics = load_spec_with_diagnostics(spec)
    render = render_json if output_format == "json" else render_text
    click.echo(render(diagnostics), nl=False)
    return EXIT_OK if loaded is not None else EXIT_INVALID


@click.command("schema")
def schema() -> int:
    """Print the spec's JSON Schema (for editors).

    yaml-language-server and VS Code pick it up from a first line like
    `# yaml-language-server: $schema=PATH`.
    """
    from wlbplan.spec import schema_text

    click.echo(schema_text(), nl=False)
    return EXIT_OK
