"""``wlbplan lab``: the local sandbox's commands. Parsing and printing only."""

from __future__ import annotations

from pathlib import Path

import click

from wlbplan.lab.fault_names import NAMES as FAULTS
from wlbplan.lab.xe_state import XAPI_VERSIONS
from wlbplan.lab.xenapi.rbac import LAB_ROLES

DEFAULT_DIR = Path(".wlbplan-lab")
_dir_option = click.option(
    "--dir", "lab_dir", type=click.Path(path_type=Path), default=DEFAULT_DIR,
    show_default=True, help="Folder that holds the lab.",
)


@click.group()
def lab() -> None:
    """A local XenServer pool + WLB appliance (xe emulated; stunnel, OpenSSL, sshd real)."""


@lab.command()
@_dir_option
@click.option("--targets", type=click.IntRange(1, 500), default=1, show_default=True,
              help="Number of pool+appliance pairs (pool1 … poolN).")
@click.option("--hosts", type=click.IntRange(1, 64), default=3, show_default=True,
              help="Hosts per pool (the first is the coordinator).")
@click.option("--ssh", is_flag=True, help="Also start a real sshd on 127.0.0.1; the spec uses SSH.")
@click.option("--ssh-log", is_flag=True,
              help="With --ssh: sshd logs every login and every session (command or SFTP) "
                   "to DIR/ssh/sshd.log (LogLevel VERBOSE), to count them per run.")
@click.option("--xapi", type=click.Choice(list(XAPI_VERSIONS)), default="current",
              show_default=True,
              help="current: xapi >= 24.40 (a trusted root suffices); "
                   "legacy: older xapi (the WLB leaf itself must be trusted); "
                   "ch82: Citrix Hypervisor 8.2, xapi 1.249 (only the older "
                   "pool-certificate-install/-uninstall commands, leaf trusted).")
@click.option("--acme", is_flag=True,
              help="Also run an ACME CA (Pebble and pebble-challtestsrv on 127.0.0.1); the "
                   "spec asks for source: acme, its dns-01 challenges through the lab's hook.")
@click.option("--acme-eab", is_flag=True,
              help="With --acme: a CA that requires external account binding (the key id "
                   "and HMAC key go in the lab's logins.env).")
@click.option("--xenapi", is_flag=True,
              help="Also serve each pool's XenAPI (XML-RPC over HTTPS on 127.0.0.1) over the "
                   "same pool xe sees; its login goes into the lab's logins.env.")
@click.option("--xenapi-role", type=click.Choice(list(LAB_ROLES)), default="pool-operator",
              show_default=True,
              help="The role of the lab's XenAPI account (pool-operator is what wlbplan needs).")
def up(lab_dir: Path, targets: int, hosts: int, ssh: bool, ssh_log: bool, xapi: str,
       acme: bool, acme_eab: bool, xenapi: bool, xenapi_role: str) -> int:
    """Build and start a lab; print the path of its ready spec last."""
    from wlbplan.lab import control
    from wlbplan.lab.xenapi.daemon import server_cert

    if ssh_log and not ssh:
        raise click.UsageError("--ssh-log needs --ssh (it is the lab's sshd that logs)")
    made = control.up(lab_dir, targets=targets, hosts=hosts, ssh=ssh, xapi=xapi,
                      ssh_log=ssh_log, acme=acme, acme_eab=acme_eab,
                      xenapi_role=xenapi_role if xenapi else None)
    for target in made.targets:
        layout = made.layout(target.name)
        click.echo(f"{target.name}: WLB {target.fqdn}:{target.port} (stunnel), "
                   f"{hosts} hosts, xe {layout.xe}")
        if target.xenapi_port is not None:
            click.echo(f"{target.name}: XenAPI https://127.0.0.1:{target.xenapi_port} "
                       f"(server certificate {server_cert(layout)}, role {xenapi_role})")
    if made.ssh_port is not None:
        click.echo(f"sshd: 127.0.0.1:{made.ssh_port}"
                   + (f", sessions logged to {made.ssh.log}" if ssh_log else ""))
    if made.acme is not None:
        click.echo(f"acme: {made.acme.directory_url} (Pebble"
                   + (", external account binding required" if made.acme.eab else "") + ")")
    click.echo(str(made.spec_path))
    return 0


@lab.command()
@_dir_option
@click.option("--purge", is_flag=True,
              help="Also remove what the lab made, and the folder if nothing else is in it.")
def down(lab_dir: Path, purge: bool) -> int:
    """Stop every process the lab started (by pid)."""
    from wlbplan.lab import control

    stopped = control.down(lab_dir)
    for role, pid in sorted(stopped.items()):
        click.echo(f"stopped {role} (pid {pid})")
    if not stopped:
        click.echo("nothing was running")
    if purge and lab_dir.exists():
        left = control.purge(lab_dir)
        if left:
            click.echo(f"left {lab_dir} in place: the lab did not make "
                       + ", ".join(repr(name) for name in left))
    return 0


@lab.command()
@_dir_option
def status(lab_dir: Path) -> int:
    """Show what runs: pids, ports, and each pool's WLB settings."""
    from wlbplan.lab import control, faults, xe_state

    made = control.load(lab_dir)
    running = control.pids(made)
    click.echo(f"lab {made.dir} (xapi {made.xapi}, {made.hosts} hosts per pool)")
    for target in made.targets:
        pid = running.get(f"{target.name}/stunnel")
        state = f"pid {pid}" if pid else "DOWN"
        summary = xe_state.summary(made.layout(target.name))
        lasting = faults.active(made, target)
        shown = f"; faults: {', '.join(lasting)}" if lasting else ""
        click.echo(f"  {target.name}: stunnel 127.0.0.1:{target.port} {state}; {summary}{shown}")
    if made.ssh_port is not None:
        pid = running.get("sshd")
        click.echo(f"  sshd 127.0.0.1:{made.ssh_port} " + (f"pid {pid}" if pid else "DOWN"))
    if made.xenapi:
        pid = running.get("xenapi")
        ports = ", ".join(f"{t.name} 127.0.0.1:{t.xenapi_port}" for t in made.targets)
        click.echo(f"  XenAPI {ports} " + (f"pid {pid}" if pid else "DOWN"))
    if made.acme is not None:
        for role in ("pebble", "challtestsrv"):
            pid = running.get(role)
            click.echo(f"  {role} " + (f"pid {pid}" if pid else "DOWN")
                       + (f" ({made.acme.directory_url})" if role == "pebble" else ""))
    click.echo(f"spec: {made.spec_path}")
    return 0


@lab.command()
@_dir_option
@click.argument("name", type=click.Choice([*FAULTS, "clear"]))
@click.argument("which", required=False, default=None, metavar="[FAULT]")
@click.option("--target", "target", default=None,
              help="Target to break (default: the first); with clear, default: every target.")
def fault(lab_dir: Path, name: str, which: str | None, target: str | None) -> int:
    """Inject a fault operators meet into a running lab, or `clear [FAULT]` a lasting one.

    restart-fails lasts (every stunnel restart fails, rollbacks' included) until
    `lab fault clear`; `lab status` lists it. So do xenapi-wrong-password (the pool's
    XenAPI refuses the login in logins.env) and xenapi-read-only (the lab's account has
    the read-only role). The others change the lab's files once.
    """
    from wlbplan.lab import faults

    if name == "clear":
        click.echo(faults.clear(lab_dir, which, target))
    elif which is not None:
        raise click.UsageError(f"{name} takes no argument (only `clear` names a fault)")
    else:
        click.echo(faults.inject(lab_dir, name, target))
    return 0
