"""Faults operators meet, injected into a running lab target.

Each fault changes real files (and restarts the real stunnel where an operator's change
would); none touches anything outside the lab folder.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from wlbplan.errors import LabError
from wlbplan.lab import appliance, stunnel, xe_state
from wlbplan.lab.layout import TargetLayout
from wlbplan.lab.pki import (
    PrivateKey,
    appliance_self_signed,
    key_pem,
    make_key,
    now,
    write_private,
)
from wlbplan.lab.record import Lab, LabTarget, load


def _current_key(layout: TargetLayout) -> PrivateKey:
    key = serialization.load_pem_private_key(layout.key.read_bytes(), password=None)
    return key  # type: ignore[return-value]


def _serve(layout: TargetLayout, fqdn: str, **kw: dt.datetime) -> None:
    issued = appliance_self_signed(fqdn, key=_current_key(layout), **kw)
    appliance.write_certificate(layout, issued)
    result = stunnel.restart(layout)
    if result.returncode != 0:
        raise LabError(f"stunnel did not restart after the fault: {result.stderr.strip()}")


def restart_fails(lab: Lab, target: LabTarget) -> str:
    layout = lab.layout(target.name)
    layout.faults_dir.mkdir(parents=True, exist_ok=True)
    (layout.faults_dir / "restart-fails").touch()
    return f"the next restart of {target.name}'s stunnel ({layout.restart}) fails, leaving it down"


def expire(lab: Lab, target: LabTarget) -> str:
    start = now() - dt.timedelta(days=400)
    ended = now() - dt.timedelta(days=35)
    _serve(lab.layout(target.name), target.fqdn, not_before=start, not_after=ended)
    return f"{target.name}'s appliance now serves a certificate that expired 35 days ago"


def key_mismatch(lab: Lab, target: LabTarget) -> str:
    layout = lab.layout(target.name)
    appliance.write_key(layout, make_key())
    return (f"{layout.key} no longer matches {layout.cert} "
            "(stunnel still runs with the key it loaded)")


def cn_mismatch(lab: Lab, target: LabTarget) -> str:
    other = f"other-{target.fqdn}"
    _serve(lab.layout(target.name), other)
    return f"{target.name}'s appliance now serves a certificate for {other}, not {target.fqdn}"


def desync_host(lab: Lab, target: LabTarget) -> str:
    layout = lab.layout(target.name)
    host, name = xe_state.drop_member_certificate(layout)
    return f"member host {host} lost CA certificate {name} (the coordinator still has it)"


def by_ip(lab: Lab, target: LabTarget) -> str:
    url = f"127.0.0.1:{target.port}"
    xe_state.set_wlb_url(lab.layout(target.name), url)
    return f"{target.name}'s pool now reaches WLB by IP: wlb-url={url}"


STALE_DAYS = 45


def stale_backups(lab: Lab, target: LabTarget) -> str:
    """What a rotation finished long ago and an abandoned request leave: server.pem_orig
    and server.key_orig (copies of the live files) and a pending key, all dated back."""
    import os
    import shutil

    layout = lab.layout(target.name)
    pending = layout.key.with_name(layout.key.name + ".pending")
    made = [layout.cert.with_name(layout.cert.name + "_orig"),
            layout.key.with_name(layout.key.name + "_orig"), pending]
    shutil.copy2(layout.cert, made[0])
    shutil.copy2(layout.key, made[1])
    write_private(pending, key_pem(make_key()), mode=0o600)
    then = (now() - dt.timedelta(days=STALE_DAYS)).timestamp()
    for path in made:
        os.utime(path, (then, then))
    return (f"{target.name}'s appliance keeps {', '.join(p.name for p in made)}, "
            f"last written {STALE_DAYS} days ago")


# Another loopback address, where nothing of the lab listens: the lab never leaves the machine.
ELSEWHERE = "127.0.0.2"


def wlb_unresolvable(lab: Lab, target: LabTarget) -> str:
    xe_state.set_resolve(lab.layout(target.name), target.fqdn, None)
    return (f"{target.name}'s coordinator can no longer resolve {target.fqdn} "
            "(its xe fails WLB calls with WLB_UNKNOWN_HOST)")


def wlb_resolves_elsewhere(lab: Lab, target: LabTarget) -> str:
    xe_state.set_resolve(lab.layout(target.name), target.fqdn, ELSEWHERE)
    return (f"{target.name}'s coordinator now resolves {target.fqdn} to {ELSEWHERE}, where "
            "nothing listens")


def _lasting(name: str, said: str) -> Callable[[Lab, LabTarget], str]:
    """A fault the lab's XenAPI server obeys while its marker file exists."""
    def inject(lab: Lab, target: LabTarget) -> str:
        if not lab.xenapi:
            raise LabError(f"the lab in {lab.dir} serves no XenAPI (`lab up --xenapi`)")
        folder = lab.layout(target.name).faults_dir
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).touch()
        return f"{target.name}: {said} (until `lab fault clear {name}`)"

    return inject


FAULTS: dict[str, Callable[[Lab, LabTarget], str]] = {
    "restart-fails": restart_fails,
    "desync-host": desync_host,
    "expire": expire,
    "key-mismatch": key_mismatch,
    "cn-mismatch": cn_mismatch,
    "by-ip": by_ip,
    "stale-backups": stale_backups,
    "wlb-unresolvable": wlb_unresolvable,
    "wlb-resolves-elsewhere": wlb_resolves_elsewhere,
    "xenapi-wrong-password": _lasting(
        "xenapi-wrong-password",
        "the pool's XenAPI refuses the login in logins.env (SESSION_AUTHENTICATION_FAILED)"),
    "xenapi-read-only": _lasting(
        "xenapi-read-only", "the lab's XenAPI account has the read-only role"),
}


def inject(lab_dir: Path, name: str, target_name: str | None = None) -> str:
    if name not in FAULTS:
        raise LabError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
    lab = load(lab_dir)
    return FAULTS[name](lab, lab.target(target_name))


# The faults that stay in force (a marker file) until cleared; the others change the lab's
# files once, and the next apply or a new `lab up` repairs them.
LASTING = ("restart-fails", "xenapi-wrong-password", "xenapi-read-only")


def active(lab: Lab, target: LabTarget) -> list[str]:
    """The lasting faults in force on ``target``."""
    folder = lab.layout(target.name).faults_dir
    return [name for name in LASTING if (folder / name).is_file()]


def clear(lab_dir: Path, name: str | None = None, target_name: str | None = None) -> str:
    """Lift lasting faults: ``name`` (all when None) on one target (all when None)."""
    if name is not None and name not in FAULTS:
        raise LabError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
    lab = load(lab_dir)
    targets = [lab.target(target_name)] if target_name else list(lab.targets)
    lifted = []
    for target in targets:
        for fault in active(lab, target):
            if name is None or fault == name:
                (lab.layout(target.name).faults_dir / fault).unlink()
                lifted.append(f"{target.name}: {fault}")
    return "cleared " + ", ".join(lifted) if lifted else "no lasting fault to clear"
