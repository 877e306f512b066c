"""The command table and ``main``, what ``bin/xe`` runs."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from wlbplan.lab.xe.cli import Context, Printer, parse
from wlbplan.lab.xe.errors import XeError, usage_error
from wlbplan.lab.xe.records import (
    HOST,
    POOL,
    ObjectClass,
    list_command,
    param_get_command,
    param_list_command,
    param_set_command,
)
from wlbplan.lab.xe.trust import CA, CRL, install, list_installed, sync, uninstall
from wlbplan.lab.xe.wlb import (
    deconfigure_wlb,
    enable_tls_verification,
    initialize_wlb,
    retrieve_wlb_configuration,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from wlbplan.lab.xe.cli import Handler


def help_command(ctx: Context) -> None:
    ctx.printer.lines(["Usage: xe <command> [-s server] [-u user] [-pw password] "
                       "[-p port] [--minimal] [param=value ...]", "Commands:",
                       *sorted(COMMANDS)])


def _class_commands(cls: ObjectClass) -> dict[str, tuple[tuple[str, ...], Handler]]:
    """cli_operations.ml make_param_funs: the generic commands of every class."""
    return {
        f"{cls.name}-list": ((), list_command(cls)),
        f"{cls.name}-param-list": (("uuid",), param_list_command(cls)),
        f"{cls.name}-param-get": (("uuid", "param-name"), param_get_command(cls)),
        f"{cls.name}-param-set": (("uuid",), param_set_command(cls)),
    }


COMMANDS: dict[str, tuple[tuple[str, ...], Handler]] = {
    "help": ((), help_command),
    "pool-install-ca-certificate": (("filename",), lambda c: install(c, CA)),
    "pool-certificate-install": (("filename",), lambda c: install(c, CA)),  # deprecated alias
    "pool-uninstall-ca-certificate": (
        ("name",), lambda c: uninstall(c, CA, force=c.flag("force"))),
    "pool-certificate-uninstall": (("name",), lambda c: uninstall(c, CA, force=False)),
    "pool-certificate-list": ((), lambda c: list_installed(c, CA)),
    "pool-certificate-sync": ((), sync),
    "pool-crl-install": (("filename",), lambda c: install(c, CRL)),
    "pool-crl-uninstall": (("name",), lambda c: uninstall(c, CRL, force=False)),
    "pool-crl-list": ((), lambda c: list_installed(c, CRL)),
    "pool-initialize-wlb": (
        ("wlb_url", "wlb_username", "wlb_password", "xenserver_username",
         "xenserver_password"), initialize_wlb),
    "pool-deconfigure-wlb": ((), deconfigure_wlb),
    "pool-retrieve-wlb-configuration": ((), retrieve_wlb_configuration),
    "pool-enable-tls-verification": ((), enable_tls_verification),
    **_class_commands(POOL),
    **_class_commands(HOST),
}


def run(argv: Sequence[str], state_path: Path) -> None:
    call = parse(argv)
    name = call.command or "help"
    if name not in COMMANDS:
        raise usage_error("Unknown command", name)
    required, handler = COMMANDS[name]
    for key in required:  # xapi_cli.ml check_required_keys, in the table's order
        if key not in call.params:
            raise usage_error("Required parameter not found", key)
    printer = Printer(call.minimal)
    handler(Context(call.params, state_path, printer))
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
