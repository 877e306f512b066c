"""Bring a lab up, report on it, take it down. Every daemon is tracked by its pid file."""

from __future__ import annotations

import os
import secrets
import shlex
from pathlib import Path

from wlbplan.errors import LabError
from wlbplan.lab import appliance, folder, labspec, pebble, sshd, stunnel, xe_state
from wlbplan.lab.layout import LOGINS_FILE, STATE_FILE, wlb_fqdn
from wlbplan.lab.procs import free_port
from wlbplan.lab.record import XAPI_MODES, AcmePorts, Lab, LabTarget, load, to_json
from wlbplan.lab.xenapi import daemon as xenapi

__all__ = ["XAPI_MODES", "Lab", "LabTarget", "down", "load", "pids", "purge", "up"]


def pids(lab: Lab) -> dict[str, int]:
    """Every lab process that is running now, by role."""
    found = {}
    for target in lab.targets:
        pid = stunnel.pid(lab.layout(target.name))
        if pid is not None:
            found[f"{target.name}/stunnel"] = pid
    sshd_pid = sshd.pid(lab.ssh)
    if sshd_pid is not None:
        found["sshd"] = sshd_pid
    if lab.acme is not None:
        found.update(pebble.pids(pebble.AcmeLayout(lab.acme_dir), lab.acme))
    xenapi_pid = xenapi.pid(xenapi_layout(lab.dir))
    if xenapi_pid is not None:
        found["xenapi"] = xenapi_pid
    return found


def xenapi_layout(lab_dir: Path) -> xenapi.XenapiLayout:
    return xenapi.XenapiLayout(lab_dir / folder.XENAPI_DIR)


def up(lab_dir: Path, *, targets: int = 1, hosts: int = 3, ssh: bool = False,
       xapi: str = "current", ssh_log: bool = False, acme: bool = False,
       acme_eab: bool = False, xenapi_role: str | None = None) -> Lab:
    """``ssh_log``: the sshd logs every login and session to ``ssh/sshd.log`` (see
    sshd_log), for counting connections and commands per host. ``acme``: also run an ACME
    CA (Pebble) and write a spec with ``source: acme``; ``acme_eab``: one that requires
    external account binding. ``xenapi_role`` (a role of ``xenapi.LAB_ROLES``): also
    serve XenAPI, the lab's account having that role."""
    if xapi not in XAPI_MODES:
        raise LabError(f"--xapi must be one of {', '.join(XAPI_MODES)}, not {xapi!r}")
    if targets < 1 or hosts < 1:
        raise LabError("a lab needs at least one target and one host per pool")
    lab_dir = lab_dir.absolute()
    folder.claim(lab_dir)
    lab_dir = lab_dir.resolve()
    _refuse_running(lab_dir)
    # A stopped lab's folders are rebuilt from scratch, never half-reused.
    folder.clear(lab_dir)
    names = [
        LabTarget(f"pool{i}", wlb_fqdn(i), free_port(), free_port(),
                  free_port() if xenapi_role is not None else None)
        for i in range(1, targets + 1)
    ]
    lab = Lab(
        dir=lab_dir,
        xapi=xapi,
        hosts=hosts,
        targets=tuple(names),
        ssh_port=free_port() if ssh else None,
        resolve={t.fqdn: "127.0.0.1" for t in names},
        acme=AcmePorts.pick(acme_eab) if acme or acme_eab else None,
    )
    # Record the lab before starting anything, so that `lab down` can always stop it.
    (lab_dir / STATE_FILE).write_text(to_json(lab))
    try:
        logins = {target.name: _build_target(lab, target) for target in lab.targets}
        extra = _start_acme(lab) if lab.acme is not None else {}
        if xenapi_role is not None:
            extra |= _start_xenapi(lab, xenapi_role)
        _write_logins(lab, logins, extra)
        if lab.ssh_port is not None:
            sshd.prepare(lab.ssh, lab.ssh_port, "VERBOSE" if ssh_log else "ERROR")
            sshd.start(lab.ssh, lab.ssh_port)
        labspec.write(lab)
    except BaseException:
        down(lab_dir)
        raise
    return lab


def _build_target(lab: Lab, target: LabTarget) -> str:
    """Build one target; returns its WLB password."""
    layout = lab.layout(target.name)
    password = appliance.build(layout, target.fqdn)
    stunnel.write_conf(layout, target.port, target.backend_port)
    stunnel.write_restart_script(layout)
    stunnel.start(layout, target.port)
    xe_state.create_pool(
        layout,
        hosts=lab.hosts,
        xapi=lab.xapi,
        wlb_url=f"{target.fqdn}:{target.port}",
        wlb_username=appliance.WLB_USERNAME,
        wlb_password=password,
        resolve=lab.resolve,
    )
    xe_state.write_xe_wrapper(layout)
    return password


def _start_acme(lab: Lab) -> dict[str, str]:
    assert lab.acme is not None
    layout = pebble.AcmeLayout(lab.acme_dir)
    logins: dict[str, str] = pebble.prepare(layout, lab.acme, lab.acme_dir / ".pycache")
    pebble.start(layout, lab.acme)
    return logins


def _start_xenapi(lab: Lab, role: str) -> dict[str, str]:
    """Each pool's server certificate and account, then the one XenAPI server; returns
    the logins (``POOL1_XENAPI_USER``, ``POOL1_XENAPI_PASS``, …)."""
    logins: dict[str, str] = {}
    for target in lab.targets:
        user, password = xenapi.make_pool_identity(lab.layout(target.name), role)
        prefix = target.name.upper()
        logins |= {f"{prefix}_XENAPI_USER": user, f"{prefix}_XENAPI_PASS": password}
    xenapi.start(xenapi_layout(lab.dir),
                 [(lab.layout(t.name), t.xenapi_port or 0) for t in lab.targets])
    return logins


def _write_logins(lab: Lab, wlb_passwords: dict[str, str],
                  extra: dict[str, str] | None = None) -> None:
    """The logins `pool-initialize-wlb` needs, as environment variables (0600), so an
    operator can try the reconnect-by-name flow (the spec's wlb.credentials name them);
    with XenAPI, also the pool's API login (pool.credentials names those)."""
    lines = ["# The lab's WLB and XenServer logins, for `wlbplan apply` reconnecting a pool",
             "# by name (wlb.credentials in the spec names these variables). Load them with:",
             f"#   set -a; . {shlex.quote(str(lab.dir / LOGINS_FILE))}; set +a"]
    for name, password in wlb_passwords.items():
        prefix = name.upper()
        lines += [f"{prefix}_WLB_USER={appliance.WLB_USERNAME}",
                  f"{prefix}_WLB_PASS={password}",
                  f"{prefix}_XS_USER=root",
                  # The emulated xapi takes any XenServer login; a real pool checks it.
                  f"{prefix}_XS_PASS={secrets.token_urlsafe(12)}"]
    lines += [f"{name}={value}" for name, value in (extra or {}).items()]
    path = lab.dir / LOGINS_FILE
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(lines) + "\n")


def _refuse_running(lab_dir: Path) -> None:
    if not (lab_dir / STATE_FILE).exists():
        return
    running = pids(load(lab_dir))
    if running:
        listed = ", ".join(f"{role} (pid {pid})" for role, pid in sorted(running.items()))
        raise LabError(
            f"a lab is already running in {lab_dir}: {listed}; "
            f"use it, or stop it first with `wlbplan lab down --dir {lab_dir}`"
        )


def down(lab_dir: Path, *, purge: bool = False) -> dict[str, int]:
    """Stop every lab process by its checked pid file; returns what was stopped. With
    ``purge``, also remove what the lab made (see :func:`purge`)."""
    lab_dir = lab_dir.resolve()
    stopped = _stop(load(lab_dir)) if (lab_dir / STATE_FILE).exists() else {}
    if purge and lab_dir.exists():
        folder.purge(lab_dir)
    return stopped


def purge(lab_dir: Path) -> list[str]:
    """Stop the lab, remove what it made in ``lab_dir`` and the folder itself when nothing
    else is in it; returns the entries left in place (the lab did not make them)."""
    down(lab_dir)
    return folder.purge(lab_dir.resolve())


def _stop(lab: Lab) -> dict[str, int]:
    stopped = {}
    for target in lab.targets:
        pid = stunnel.stop(lab.layout(target.name))
        if pid is not None:
            stopped[f"{target.name}/stunnel"] = pid
    sshd_pid = sshd.stop(lab.ssh)
    if sshd_pid is not None:
        stopped["sshd"] = sshd_pid
    if lab.acme is not None:
        stopped.update(pebble.stop_all(pebble.AcmeLayout(lab.acme_dir), lab.acme))
    xenapi_pid = xenapi.stop(xenapi_layout(lab.dir))
    if xenapi_pid is not None:
        stopped["xenapi"] = xenapi_pid
    return stopped
