"""The emulated xe starts light: inspection calls it ~10 times per pool, so a module it
imports for nothing is paid on every target of every benchmark and lab test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from wlbplan.lab import xe_state
from wlbplan.lab.layout import TargetLayout

# Not needed by a read-only call: typing (~10 ms here), dataclasses (~10 ms), the wrapper
# writer's importlib.util, and what only some commands use.
NOT_AT_START = {"typing", "dataclasses", "importlib.util", "cryptography", "ssl", "socket",
                "wlbplan.lab.pyscript", "wlbplan.lab.layout"}


def imported_by(argv: list[str]) -> set[str]:
    done = subprocess.run([sys.executable, "-S", "-X", "importtime", *argv],
                          capture_output=True, text=True, check=True)
    return {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines()
            if line.startswith("import time:") and line.count("|") == 2}


def test_a_read_only_xe_call_imports_only_what_it_needs(tmp_path: Path) -> None:
    layout = TargetLayout(tmp_path / "pool1")
    xe_state.create_pool(layout, hosts=1, xapi="current", wlb_url="wlb1.lab.test:8012",
                         wlb_username="wlbuser", wlb_password="unused",
                         resolve={"wlb1.lab.test": "127.0.0.1"})
    xe_state.write_xe_wrapper(layout)
    uuid = xe_state.load(layout.pool_state)["pool"]["uuid"]
    for call in (["pool-list", "--minimal"],
                 ["pool-param-get", f"uuid={uuid}", "param-name=wlb-url"]):
        modules = imported_by([str(layout.xe), *call])
        assert "wlbplan.lab.xe.main" in modules
        assert modules & NOT_AT_START == set(), call
