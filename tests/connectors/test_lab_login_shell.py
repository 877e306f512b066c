"""The lab's sshd runs commands without the login user's ~/.bashrc: bash reads it for
commands sshd runs, and a developer's rc file (pyenv, conda) cost every lab command
0.3 s and more, which the fleet benchmark then measured instead of wlbplan."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from wlbplan.connectors.ssh import SshRunner
from wlbplan.model.command import Command


def test_the_login_shell_is_not_a_top_level_one(ssh_runner: SshRunner) -> None:
    shell = pwd.getpwuid(os.getuid()).pw_shell
    if Path(shell).name != "bash":
        pytest.skip(f"the login shell is {shell}: only bash reads ~/.bashrc for sshd")
    # The login shell (bash -c) counts its level from sshd's SHLVL: 2, nested, so it reads
    # no ~/.bashrc (at 1 it would). It execs `printenv` handing down one level less: 1 (0
    # from a top-level shell).
    result = ssh_runner.run(Command(("printenv", "SHLVL")))
    assert result.stdout.strip() == "1"
