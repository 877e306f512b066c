"""The two ways a lab test reaches the pool, for the tests that run over both (issue 12).

- ``xe``: the shell path (``connector: ssh``): the lab's xe run on the coordinator, by the
  local runner (``connection: local``) or over SSH; the same Runner code either way.
- ``xenapi``: ``lab up --xenapi``: the lab's spec reaches the pool through its XenAPI
  (XML-RPC over HTTPS on 127.0.0.1), over the same pool state xe changes.

A test opts in with ``@OVER_BOTH`` and the ``pool_connector`` fixture (its ``lab``
fixture takes it): the test then runs once per connector. The XenAPI login of the lab is
put in this process's environment for the test (``use_logins``): the library in process
reads it there, and ``forwarded`` passes it on to the wlbplan processes a test starts.
Only the pool's side differs (the appliance is reached by the runner either way), so a
step walk over XenAPI takes the pool's steps alone (``over``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from wlbplan.lab import control
from wlbplan.lab.layout import LOGINS_FILE

CONNECTORS = ("xe", "xenapi")
XENAPI_ROLE = "pool-operator"
OVER_BOTH = pytest.mark.connectors
_LOGIN = re.compile(r"POOL\d+_XENAPI_(USER|PASS)")


def up(folder: Path, connector: str, **kw: Any) -> control.Lab:
    """A lab whose spec reaches the pool by ``connector``."""
    role = XENAPI_ROLE if connector == "xenapi" else None
    return control.up(folder, xenapi_role=role, **kw)


def logins(lab: control.Lab) -> dict[str, str]:
    """The lab's XenAPI logins (``POOL1_XENAPI_USER``, …) from its logins.env; none for a
    lab that serves no XenAPI."""
    lines = (lab.dir / LOGINS_FILE).read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {key: value for key, value in pairs if _LOGIN.fullmatch(key)}


def use_logins(lab: control.Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lab's XenAPI logins in ``os.environ`` until the test ends."""
    for key, value in logins(lab).items():
        monkeypatch.setenv(key, value)


def forwarded() -> dict[str, str]:
    """The XenAPI logins a test put in this process's environment, for a child wlbplan."""
    return {key: value for key, value in os.environ.items() if _LOGIN.fullmatch(key)}


def over(connector: str, index: int, actions: tuple[str, ...]) -> bool:
    """Does a step walk over ``connector`` take step ``index`` (1-based) of a plan of
    ``actions``? Over XenAPI, the pool's steps after the last appliance step: an appliance
    step runs (and is undone) by the same runner code over both connectors; the pool steps
    before it are the fresh plan's, walked over XenAPI on that plan; a failure after it
    undoes every step before, the appliance's and the pool's, over XenAPI."""
    if connector == "xe":
        return True
    last_appliance = max((i for i, a in enumerate(actions, 1) if not a.startswith("pool.")),
                         default=0)
    return actions[index - 1].startswith("pool.") and index > last_appliance
