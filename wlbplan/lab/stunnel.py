"""The appliance's real stunnel: its configuration, its restart script, start and stop."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from wlbplan.errors import LabError
from wlbplan.lab import procs
from wlbplan.lab.layout import TargetLayout
from wlbplan.lab.procs import Daemon, port_open, running_pid, wait_for
from wlbplan.lab.pyscript import program

RESTART_FAILS = "stunnel: [!] Service [wlb]: failed to initialize (lab fault restart-fails)"


def _installed() -> str | None:
    return shutil.which("stunnel4") or shutil.which("stunnel")


def stunnel_binary() -> str:
    found = _installed()
    if not found:
        raise LabError(
            "stunnel is not installed; install it with `apt-get install stunnel4` "
            "(make demo / make test do this when run as root)"
        )
    return found


def write_conf(layout: TargetLayout, port: int, backend_port: int) -> None:
    """stunnel in front of the (absent) WLB web service, like the appliance's.

    The backend port is closed on purpose: the lab's WLB check is the TLS handshake and
    stunnel completes it before it dials the backend.
    """
    for path in (layout.stunnel_conf, layout.stunnel_pid, layout.stunnel_log):
        path.parent.mkdir(parents=True, exist_ok=True)
    layout.stunnel_conf.write_text(
        "\n".join(
            [
                "; wlbplan lab: the WLB appliance's TLS front end",
                "foreground = no",
                f"pid = {layout.stunnel_pid}",
                f"output = {layout.stunnel_log}",
                "debug = notice",
                "",
                "[wlb]",
                f"accept = 127.0.0.1:{port}",
                f"cert = {layout.cert}",
                f"key = {layout.key}",
                f"connect = 127.0.0.1:{backend_port}",
                "",
            ]
        )
    )


def daemon(layout: TargetLayout) -> Daemon:
    """This appliance's stunnel: started by the lab as ``stunnel CONF``."""
    return Daemon(layout.stunnel_pid, _installed(), (str(layout.stunnel_conf),))


def write_restart_script(layout: TargetLayout) -> None:
    """The appliance's restart command: stop exactly this stunnel, start it again.

    The seed's ``killall stunnel; stunnel`` would hit every lab's stunnel (and the host's);
    a lab fault file makes the restart fail with stunnel left down.
    """
    script = program(f"restart the stunnel of {layout.name!r} (checked by its pid file, "
                     "never killall).", "wlbplan.lab.stunnel", "restart_main",
                     f"Path({str(layout.root)!r})", layout.bin_dir / ".pycache")
    layout.restart.parent.mkdir(parents=True, exist_ok=True)
    layout.restart.write_bytes(script)
    layout.restart.chmod(0o755)


def restart_main(root: Path) -> int:
    """What ``bin/restart-stunnel`` runs; stunnel's own messages go to stderr."""
    layout = TargetLayout(root)
    procs.stop(daemon(layout))
    if (layout.faults_dir / "restart-fails").exists():
        sys.stderr.write(RESTART_FAILS + "\n")
        return 1
    binary = _installed()
    if binary is None:
        sys.stderr.write("stunnel is not installed\n")
        return 1
    started = subprocess.run([binary, str(layout.stunnel_conf)], check=False)
    if started.returncode != 0:
        return started.returncode
    # stunnel's daemon writes its pid file after the parent returns: wait for it.
    deadline = time.monotonic() + 15  # a loaded machine (CI, parallel tests) is slow
    while running_pid(daemon(layout)) is None:
        if time.monotonic() > deadline:
            sys.stderr.write("stunnel started but wrote no pid file\n")
            return 1
        time.sleep(0.02)
    return 0


def start(layout: TargetLayout, port: int) -> int:
    """Start stunnel and wait until it serves; returns its pid."""
    result = subprocess.run(
        [stunnel_binary(), str(layout.stunnel_conf)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        log = layout.stunnel_log.read_text() if layout.stunnel_log.exists() else ""
        raise LabError(
            f"stunnel for {layout.name} failed to start (exit {result.returncode}): "
            f"{(result.stderr + log).strip()[-600:]}"
        )
    wait_for(lambda: running_pid(daemon(layout)) and port_open(port), 10, "stunnel")
    pid = running_pid(daemon(layout))
    if pid is None:
        raise LabError(
            f"stunnel for {layout.name} exited right after start; see {layout.stunnel_log}"
        )
    return pid


def restart(layout: TargetLayout) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(layout.restart)], capture_output=True, text=True, check=False)


def stop(layout: TargetLayout) -> int | None:
    return procs.stop(daemon(layout))


def pid(layout: TargetLayout) -> int | None:
    return running_pid(daemon(layout))

