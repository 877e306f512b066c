"""The README's CA-signed walkthrough, run as written (bash -e), on a fresh lab."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

pytestmark = pytest.mark.lab


def walkthrough() -> str:
    text = README.read_text()
    section = text.split("### Walkthrough: the CA-signed path on the lab", 1)[1]
    match = re.search(r"```sh\n(.*?)\n```", section, re.DOTALL)
    assert match, "no sh block in the walkthrough"
    return match.group(1)


def test_the_walkthrough_runs_as_written(tmp_path: Path) -> None:
    script = walkthrough()
    assert "--purge" in script  # it cleans up after itself
    env = {**os.environ, "W": str(Path(sys.executable).with_name("wlbplan")),
           "WALK": str(tmp_path / "walk"), "NO_COLOR": "1"}
    done = subprocess.run(["bash", "-e", "-u", "-o", "pipefail", "-c", script],
                          capture_output=True, text=True, env=env, timeout=600,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "wlbplan-root-" in out
    assert "wlbplan-intermediate-" in out
    assert not (tmp_path / "walk").exists()
