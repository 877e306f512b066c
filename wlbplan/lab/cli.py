"""``wlbplan lab``: the local sandbox's commands. Parsing and printing only."""

from __future__ import annotations

from pathlib import Path

import click

from wlbplan.lab.xe_state import XAPI_VERSIONS

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
              help="With --ssh: log every SSH connection and each command it runs in "
                   "DIR/ssh/sshd.log (to count sessions and commands per host).")
@click.option("--xapi", type=click.Choice(list(XAPI_VERSIONS)), default="current",
              show_default=True,
              help="current: xapi >= 24.40 (a trusted root suffices); "
                   "legacy: older xapi (the WLB leaf itself must be trusted); "
                   "ch82: Citrix Hypervisor 8.2, xapi 1.249 (only the older "
                   "pool-certificate-install/-uninstall commands, leaf trusted).")
def up(lab_dir: Path, targets: int, hosts: int, ssh: bool, ssh_log: bool, xapi: str) -> int:
    """Build and start a lab; print the path of its ready spec last."""
    from wlbplan.lab import control

    if ssh_log and not ssh:
        raise click.UsageError("--ssh-log needs --ssh")
    made = control.up(lab_dir, targets=targets, hosts=hosts, ssh=ssh, xapi=xapi,
                      ssh_log=ssh_log)
    for target in made.targets:
        layout = made.layout(target.name)
        click.echo(f"{target.name}: WLB {target.fqdn}:{target.port} (stunnel), "
                   f"{hosts} hosts, xe {layout.xe}")
    if made.ssh_port is not None:
        click.echo(f"sshd: 127.0.0.1:{made.ssh_port}")
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
    click.echo(f"spec: {made.spec_path}")
    return 0


@lab.command()
@_dir_option
@click.argument("name", type=click.Choice(
    ["restart-fails", "desync-host", "expire", "key-mismatch", "cn-mismatch", "by-ip",
     "clear"]))
@click.argument("which", required=False, default=None, metavar="[FAULT]")
@click.option("--target", "target", default=None,
              help="Target to break (default: the first); with clear, default: every target.")
def fault(lab_dir: Path, name: str, which: str | None, target: str | None) -> int:
    """Inject a fault operators meet into a running lab, or `clear [FAULT]` a lasting one.

    restart-fails lasts (every stunnel restart fails, rollbacks' included) until
    `lab fault clear`; `lab status` lists it. The others change the lab's files once.
    """
    from wlbplan.lab import faults

    if name == "clear":
        click.echo(faults.clear(lab_dir, which, target))
    elif which is not None:
        raise click.UsageError(f"{name} takes no argument (only `clear` names a fault)")
    else:
        click.echo(faults.inject(lab_dir, name, target))
    return 0
