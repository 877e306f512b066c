"""The appliance's real stunnel: its configuration, its restart script, start and stop."""

from __future__ import annotations

import shlex
import shutil
import subprocess

from wlbplan.errors import LabError
from wlbplan.lab.layout import TargetLayout
from wlbplan.lab.procs import port_open, running_pid, stop_pid_file, wait_for


def stunnel_binary() -> str:
    found = shutil.which("stunnel4") or shutil.which("stunnel")
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


def write_restart_script(layout: TargetLayout) -> None:
    """The appliance's restart command: stop exactly this stunnel by pid, start it again.

    The seed's ``killall stunnel; stunnel`` would hit every lab's stunnel (and the host's);
    a lab fault file makes the restart fail with stunnel left down.
    """
    q = shlex.quote
    script = f"""#!/bin/sh
# wlbplan lab: restart this appliance's stunnel (by pid file, never killall).
pid_file={q(str(layout.stunnel_pid))}
if [ -s "$pid_file" ]; then
  pid=$(cat "$pid_file")
  kill "$pid" 2>/dev/null
  i=0
  # An exited daemon may linger as a zombie until init reaps it: that counts as gone.
  while kill -0 "$pid" 2>/dev/null && [ $i -lt 250 ]; do
    state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1)
    [ "$state" = Z ] && break
    sleep 0.02; i=$((i+1))
  done
  rm -f "$pid_file"
fi
if [ -e {q(str(layout.faults_dir / "restart-fails"))} ]; then
  echo "stunnel: [!] Service [wlb]: failed to initialize (lab fault restart-fails)" >&2
  exit 1
fi
{q(stunnel_binary())} {q(str(layout.stunnel_conf))} || exit $?
# stunnel's daemon writes its pid file after the parent returns: wait for it.
i=0
while [ ! -s "$pid_file" ] && [ $i -lt 250 ]; do sleep 0.02; i=$((i+1)); done
[ -s "$pid_file" ] || {{ echo "stunnel started but wrote no pid file" >&2; exit 1; }}
"""
    layout.restart.parent.mkdir(parents=True, exist_ok=True)
    layout.restart.write_text(script)
    layout.restart.chmod(0o755)


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
    wait_for(lambda: running_pid(layout.stunnel_pid) and port_open(port), 10, "stunnel")
    pid = running_pid(layout.stunnel_pid)
    if pid is None:
        raise LabError(
            f"stunnel for {layout.name} exited right after start; see {layout.stunnel_log}"
        )
    return pid


def restart(layout: TargetLayout) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(layout.restart)], capture_output=True, text=True, check=False)


def stop(layout: TargetLayout) -> int | None:
    return stop_pid_file(layout.stunnel_pid)


def pid(layout: TargetLayout) -> int | None:
    return running_pid(layout.stunnel_pid)

