"""The command table and ``main``, what ``bin/xe`` runs."""

from __future__ import annotations

import sys

from wlbplan.lab import xe_state
from wlbplan.lab.xe.cli import Context, Printer, parse
from wlbplan.lab.xe.errors import XeError, usage_error
from wlbplan.lab.xe.records import (
    HOST,
    POOL,
    ObjectClass,
    list_command,
    param_add_command,
    param_get_command,
    param_list_command,
    param_remove_command,
    param_set_command,
)
from wlbplan.lab.xe.trust import CA, CRL, install, list_installed, sync, uninstall
from wlbplan.lab.xe.wlb import (
    deconfigure_wlb,
    enable_tls_verification,
    initialize_wlb,
    retrieve_wlb_configuration,
)

# Not typing's: importing typing costs every xe call ~10 ms. mypy reads it as true.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from wlbplan.lab.xe.cli import Handler


class Command:
    """One entry of the command table (cli_frontend.ml cmdtable_data)."""

    def __init__(self, handler: Handler, required: tuple[str, ...] = (),
                 optional: tuple[str, ...] = (), *, help: str,
                 since: tuple[int, int] | None = None) -> None:
        self.handler = handler
        self.required = required
        self.optional = optional
        self.help = help
        self.since = since  # the xapi version that added it; None: every lab version has it


# cli_frontend.ml rio_help leaves these out of the names `xe help NAME…` is asked about.
_NOT_COMMANDS = frozenset({"server", "username", "password", "port", "minimal", "all"})


def help_command(ctx: Context) -> None:
    """cli_frontend.ml rio_help: each command named after `help` as a record, or `Unknown
    command 'NAME'` (still exit 0); with none, the usage and the command list."""
    asked = [name for name in ctx.params if name not in _NOT_COMMANDS]
    if not asked:
        ctx.printer.lines(["Usage: xe <command> [-s server] [-pw passwd] [-p port] [-u user] "
                           "[-pwf password-file]", "  [command specific arguments]", "",
                           "Full command list", "-----------------",
                           *sorted(n for n in COMMANDS if _offered(ctx, n))])
        return
    for name in asked:
        if not _offered(ctx, name):
            ctx.printer.lines([f"Unknown command '{name}'"])
            continue
        command = COMMANDS[name]
        ctx.printer.table([[("command name        ", name),
                            ("reqd params     ", ", ".join(command.required)),
                            ("optional params ", ", ".join(command.optional)),
                            ("description     ", command.help)]])


def _offered(ctx: Context, name: str) -> bool:
    """Does this pool's xapi have command ``name``? (The lab's versions differ in a few.)"""
    command = COMMANDS.get(name)
    if command is None:
        return False
    return command.since is None or xe_state.has(ctx.state(), command.since)


def _class_commands(cls: ObjectClass) -> dict[str, Command]:
    """cli_operations.ml make_param_funs: the generic commands of every class."""
    what = f"the {cls.name}"
    return {
        f"{cls.name}-list": Command(list_command(cls), (), ("params",),
                                    help=f"Lists {what} objects."),
        f"{cls.name}-param-list": Command(param_list_command(cls), ("uuid",),
                                          help=f"Lists every field of {what}."),
        f"{cls.name}-param-get": Command(param_get_command(cls), ("uuid", "param-name"),
                                         ("param-key",), help=f"Gets a field of {what}."),
        f"{cls.name}-param-set": Command(param_set_command(cls), ("uuid",),
                                         help=f"Sets fields of {what}."),
        f"{cls.name}-param-add": Command(param_add_command(cls), ("uuid", "param-name"),
                                         ("param-key",),
                                         help=f"Adds to a set or map field of {what}."),
        f"{cls.name}-param-remove": Command(param_remove_command(cls),
                                            ("uuid", "param-name", "param-key"),
                                            help=f"Removes from a set or map field of {what}."),
    }


_CA_COMMANDS = xe_state.CA_COMMANDS_SINCE
COMMANDS: dict[str, Command] = {
    "help": Command(help_command, help="Shows help on the commands named, or lists them."),
    "pool-install-ca-certificate": Command(
        lambda c: install(c, CA), ("filename",), since=_CA_COMMANDS,
        help="Installs a TLS CA certificate, pool-wide."),
    "pool-certificate-install": Command(  # deprecated alias
        lambda c: install(c, CA), ("filename",),
        help="Installs a TLS CA certificate, pool-wide."),
    "pool-uninstall-ca-certificate": Command(
        lambda c: uninstall(c, CA, force=c.flag("force")), ("name",), ("force",),
        since=_CA_COMMANDS, help="Uninstalls a pool-wide TLS CA certificate."),
    "pool-certificate-uninstall": Command(
        lambda c: uninstall(c, CA, force=False), ("name",),
        help="Uninstalls a pool-wide TLS CA certificate."),
    "pool-certificate-list": Command(
        lambda c: list_installed(c, CA), help="Lists the pool-wide TLS CA certificates."),
    "pool-certificate-sync": Command(
        sync, help="Syncs the coordinator's CA certificates and CRLs to every host."),
    "pool-crl-install": Command(lambda c: install(c, CRL), ("filename",),
                                help="Installs a TLS CRL, pool-wide."),
    "pool-crl-uninstall": Command(lambda c: uninstall(c, CRL, force=False), ("name",),
                                  help="Uninstalls a pool-wide TLS CRL."),
    "pool-crl-list": Command(lambda c: list_installed(c, CRL),
                             help="Lists the pool-wide TLS CRLs."),
    "pool-initialize-wlb": Command(
        initialize_wlb, ("wlb_url", "wlb_username", "wlb_password", "xenserver_username",
                         "xenserver_password"),
        help="Initializes workload balancing for the pool with the WLB server."),
    "pool-deconfigure-wlb": Command(
        deconfigure_wlb, help="Permanently removes the pool's workload balancing settings."),
    "pool-retrieve-wlb-configuration": Command(
        retrieve_wlb_configuration, help="Retrieves the pool's optimization criteria from WLB."),
    "pool-enable-tls-verification": Command(
        enable_tls_verification, since=_CA_COMMANDS,  # inferred: the same release
        help="Enables TLS verification for the pool (and for WLB)."),
    **_class_commands(POOL),
    **_class_commands(HOST),
}


def run(argv: Sequence[str], state_path: Path) -> None:
    call = parse(argv)
    name = call.command or "help"
    printer = Printer(call.minimal)
    ctx = Context(call.params, state_path, printer)
    if not _offered(ctx, name):
        raise usage_error("Unknown command", name)
    command = COMMANDS[name]
    for key in command.required:  # xapi_cli.ml check_required_keys, in the table's order
        if key not in call.params:
            raise usage_error("Required parameter not found", key)
    command.handler(ctx)
    printer.flush()


def main(argv: list[str], state_path: Path) -> int:
    try:
        run(argv, state_path)
    except FileNotFoundError:
        if state_path.exists():
            raise
        # like xe when xapi is not running, but saying which lab pool is missing
        sys.stderr.write(f"Error: no pool state at {state_path} (is the lab up?)\n")
        return 1
    except XeError as err:
        sys.stdout.flush()
        sys.stderr.write("".join(f"{line}\n" for line in err.lines))
        return 1
    return 0
