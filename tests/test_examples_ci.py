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


FLEET = Path(__file__).resolve().parents[1] / "examples" / "fleet.yaml"
NEEDS_HOSTS = {"inspect", "plan", "apply", "audit", "rollback", "force-unlock"}


def _identity_file() -> str:
    return str(yaml.safe_load(FLEET.read_text())["defaults"]["ssh"]["identity_file"])


def _uses_hosts(text: str) -> bool:
    return any(m.group(1) in NEEDS_HOSTS for m in COMMAND.finditer(text))


def _github_jobs() -> dict[str, list[dict[str, object]]]:
    workflow = yaml.safe_load((FLEET.parent / "ci" / "github-actions.yml").read_text())
    return {name: job["steps"] for name, job in workflow["jobs"].items()}


@pytest.mark.parametrize("job", sorted(_github_jobs()))
def test_every_github_job_has_what_its_wlbplan_steps_use(job: str) -> None:
    """Before the first step that contacts hosts: the checkout (the spec and the known_hosts
    file beside it), Python, wlbplan, and the SSH key where the spec's identity_file says."""
    steps = _github_jobs()[job]
    texts = [str(step.get("run", "")) for step in steps]
    first = next(i for i, text in enumerate(texts) if _uses_hosts(text))
    before = steps[:first]
    uses = [str(step.get("uses", "")) for step in before]
    assert any(u.startswith("actions/checkout@") for u in uses), job
    assert any(u.startswith("actions/setup-python@") for u in uses), job
    assert any("pip install wlbplan" in text for text in texts[:first]), job
    key = _identity_file()
    assert any(f"> {key})" in text or f"> {key}\n" in text for text in texts[:first]), (job, key)


def test_gitlab_job_installs_the_key_where_the_spec_says() -> None:
    pipeline = yaml.safe_load((FLEET.parent / "ci" / "gitlab-ci.yml").read_text())
    for name, job in pipeline.items():
        script = "\n".join(job.get("script", []))
        if not _uses_hosts(script):
            continue
        setup = "\n".join(job.get("before_script", []))
        assert "pip install wlbplan" in setup, name
        assert setup.rstrip().endswith(_identity_file()), name


def test_the_workflows_spec_is_the_fleet_example() -> None:
    for path in EXAMPLES:
        assert "wlb/fleet.yaml" in path.read_text()
        assert "examples/fleet.yaml" in path.read_text(), path.name
