"""``wlbplan import``: write a spec that describes a pool and its WLB as they are."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from wlbplan.errors import WlbplanError

if TYPE_CHECKING:
    from wlbplan.core.imported import Access, Imported
    from wlbplan.model.observed import Observed

_HOST = "HOST"


def _resolve_pair(ctx: click.Context, param: click.Parameter,
                  value: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in value:
        name, sep, address = item.partition("=")
        if not sep or not name or not address:
            raise click.BadParameter(f"{item!r}: give NAME=ADDRESS, e.g. wlb.example.com=10.0.0.5")
        pairs.append((name, address))
    return tuple(pairs)


@click.command("import")
@click.option("--pool", "pool_host", metavar=_HOST, required=True,
              help="The pool coordinator, where xe runs (pool.coordinator).")
@click.option("--wlb", "wlb_host", metavar=_HOST, default=None,
              help="Where to reach the WLB appliance over SSH (wlb.ssh_host when it differs "
                   "from the name the pool uses, which comes from the pool's wlb-url). "
                   "Needed unless --connection local.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="The spec file to write (default: NAME.yaml); certificate files the spec "
                   "names are written beside it.")
@click.option("--force", is_flag=True, help="Overwrite the spec and its files if they exist.")
@click.option("--name", default=None,
              help="The target's name (default: the inspection's, or --pool's first label).")
@click.option("--from-inspect", "report", type=click.Path(path_type=Path), default=None,
              help="Take the facts from this `wlbplan inspect --format json` output instead of "
                   "the hosts (no host is contacted).")
@click.option("--target", "report_target", default=None, metavar="NAME",
              help="With --from-inspect: which of its targets (when it holds several).")
@click.option("--connection", type=click.Choice(["ssh", "local"]), default="ssh",
              show_default=True,
              help="How to reach both hosts: over SSH, or on this machine (the lab, dom0).")
@click.option("--ssh-user", default=None, help="SSH login (defaults.ssh.user; default root).")
@click.option("--ssh-port", type=click.IntRange(1, 65535), default=None,
              help="SSH port (default 22).")
@click.option("--identity-file", type=click.Path(path_type=Path), default=None,
              help="Private key to log in with (its path goes in the spec, never its content).")
@click.option("--known-hosts", type=click.Path(path_type=Path), default=None,
              help="known_hosts file to check host keys against (default ~/.ssh/known_hosts).")
@click.option("--host-key-policy", type=click.Choice(["strict", "accept-new"]), default=None,
              help="strict (default): only hosts already in known_hosts.")
@click.option("--connect-timeout", type=click.FloatRange(0, 3600, min_open=True), default=None,
              help="Seconds for the TCP connection and SSH handshake (default 10).")
@click.option("--xe", default=None, help="The xe command on the coordinator (default xe).")
@click.option("--trust-dir", default=None,
              help="xapi's stunnel folder on the coordinator (default /etc/stunnel).")
@click.option("--state-dir", default=None,
              help="Where wlbplan keeps its apply lock on the coordinator.")
@click.option("--cert-path", default=None,
              help="The certificate file stunnel serves on the appliance "
                   "(default /etc/ssl/certs/server.pem).")
@click.option("--key-path", default=None,
              help="Its private key on the appliance: only its public half is read "
                   "(default /etc/ssl/certs/server.key).")
@click.option("--restart", default=None, help="The command that restarts stunnel on the "
                                              "appliance (default: killall stunnel; stunnel).")
@click.option("--stunnel-conf", default=None, help="The appliance's stunnel configuration file.")
@click.option("--resolve", multiple=True, metavar="NAME=ADDRESS", callback=_resolve_pair,
              help="Connect to ADDRESS for NAME (the spec's resolve:), repeatable.")
def import_(pool_host: str, wlb_host: str | None, out: Path | None, force: bool, name: str | None,
            report: Path | None, report_target: str | None, connection: str,
            **options: Any) -> int:
    """Write a spec that describes a pool and its WLB appliance as they are now.

    The certificate source (self-signed or CA-signed), verify and trust are as found, so
    that `wlbplan plan` on the spec shows no changes; comments say what each part was
    derived from, and a CA-signed spec's public certificates are written beside it.
    """
    from wlbplan.commands.paths import check_destination
    from wlbplan.core import imported

    if wlb_host is None and connection == "ssh":
        raise click.UsageError("--wlb HOST is needed: where to reach the appliance over SSH")
    if report is None and report_target is not None:
        raise click.UsageError("--target goes with --from-inspect")
    if report is not None and (options["cert_path"] or options["key_path"]):
        raise click.UsageError("--from-inspect: the report says which certificate and key "
                               "files were read; --cert-path and --key-path do not apply")
    observed = _read_report(report, report_target) if report is not None else None
    chosen = name or (observed.target if observed else imported.default_name(pool_host))
    access = _access(chosen, pool_host, wlb_host or "localhost", connection, options)
    spec_path = out or Path(f"{chosen}.yaml")
    # The options (and a name from a report) checked as a spec before any file or host.
    skeleton = imported.load(imported.skeleton(access), spec_path, "the options given",
                             check_files=True)
    _refuse_existing([spec_path], force)
    check_destination(spec_path, "spec")
    if observed is None:
        from wlbplan.run.discover import discover

        observed = discover(skeleton, skeleton.targets[0])
        origin = f"an inspection of {pool_host}" + (f" and {wlb_host}" if wlb_host else "")
    else:
        origin = f"{report} (wlbplan inspect)"
    observed = imported.as_target(observed, chosen)
    made = imported.derive(observed, access, when=_today(), origin=origin)
    _write_spec(made, observed, spec_path, force)
    return 0


def _read_report(report: Path, target: str | None) -> Observed:
    from wlbplan.core.imported import read_report
    from wlbplan.limits import INSPECTION, TooLarge, read_file

    try:
        data = read_file(report, INSPECTION)
    except OSError as err:
        raise WlbplanError(f"cannot read {report}: {err.strerror or err}") from None
    except TooLarge as err:
        raise WlbplanError(str(err)) from None
    return read_report(data, target, str(report))


def _write_spec(made: Imported, observed: Observed, spec_path: Path, force: bool) -> None:
    """The certificates, then plan's verdict on the spec (it reads them), then the spec."""
    from wlbplan.core.imported import load, verdict
    from wlbplan.core.plan import plan_or_refusal
    from wlbplan.model.text import visible

    spec = load(made.text(), spec_path, "the spec wlbplan import made")
    files = {spec_path.parent / file_name: pem for file_name, pem in made.files}
    _refuse_existing(list(files), force)
    for path, pem in files.items():
        _write(path, pem)
    said = verdict(plan_or_refusal(spec, spec.targets[0], observed))
    _write(spec_path, made.text(said))
    written = ", ".join(str(p) for p in [spec_path, *files])
    # Host text (a subject in a refusal) is shown escaped, as everywhere.
    lines = [f"Wrote {written}.", *(line for line in said if line)]
    click.echo("\n".join(visible(line) for line in lines), err=True)


def _access(name: str, pool_host: str, wlb_host: str, connection: str,
            options: dict[str, Any]) -> Access:
    from wlbplan.core.imported import Access

    def given(*keys: str) -> tuple[tuple[str, Any], ...]:
        return tuple((k, options[k]) for k in keys if options[k] is not None)

    ssh = [(key.removeprefix("ssh_"), value)
           for key, value in given("ssh_user", "ssh_port", "identity_file", "known_hosts",
                                   "host_key_policy", "connect_timeout")]
    # A path given here is relative to where wlbplan runs, one in a spec to the spec's
    # folder: the spec gets it absolute.
    ssh = [(k, str(v.expanduser().absolute()) if isinstance(v, Path) else v) for k, v in ssh]
    return Access(
        name=name, coordinator=pool_host, appliance=wlb_host,
        connection="local" if connection == "local" else "ssh",
        pool=given("xe", "trust_dir", "state_dir"),
        wlb=given("restart", "stunnel_conf"),
        paths=tuple((k.removesuffix("_path"), v) for k, v in given("cert_path", "key_path")),
        ssh=tuple(ssh),
        resolve=options["resolve"],
    )


def _today() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _refuse_existing(paths: list[Path], force: bool) -> None:
    if force:
        return
    for path in paths:
        if os.path.lexists(path):
            raise WlbplanError(f"{path} exists; wlbplan import does not overwrite files: "
                               "choose another --out, or give --force")


def _write(path: Path, text: str) -> None:
    """``text`` to ``path``, 0644 (a spec and public certificates, nothing secret), whole or
    not at all: written beside it, then renamed over it (never through a symlink)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o644)
            handle.write(text)
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise WlbplanError(f"cannot write {path}: {err.strerror or err}") from None
