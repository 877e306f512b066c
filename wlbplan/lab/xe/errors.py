"""How xe reports a failure: the datamodel's declared errors, usage errors, CLI failures."""

from __future__ import annotations

# Not typing's: importing typing costs every xe call ~10 ms. mypy reads it as true.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Sequence


class XeError(Exception):
    """A failure: its lines go to stderr and xe exits 1.

    A server error (xapi's ``Server_error``) also keeps its code and parameters: the lab's
    XenAPI server answers with those, where xe prints them as lines.
    """

    def __init__(self, *lines: str, code: str | None = None,
                 params: Sequence[str] = ()) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines
        self.code = code
        self.params = tuple(params)


# Codes declared in the datamodel (ocaml/idl/datamodel_errors.ml): description, parameter
# names. xe prints the description then `name: value` per parameter (cli_util.ml
# get_server_error); any other code prints `Error code:` / `Error parameters:` (newcli.ml).
DECLARED: dict[str, tuple[str, tuple[str, ...]]] = {
    "CERTIFICATE_DOES_NOT_EXIST": ("The specified certificate does not exist.", ("name",)),
    "CERTIFICATE_ALREADY_EXISTS": (
        "A certificate already exists with the specified name.", ("name",)),
    "CERTIFICATE_NAME_INVALID": ("The specified certificate name is invalid.", ("name",)),
    "CRL_DOES_NOT_EXIST": ("The specified CRL does not exist.", ("name",)),
    "CRL_ALREADY_EXISTS": ("A CRL already exists with the specified name.", ("name",)),
    "CRL_NAME_INVALID": ("The specified CRL name is invalid.", ("name",)),
    "UUID_INVALID": ("The uuid you supplied was invalid.", ("type", "uuid")),
    "INVALID_VALUE": ("The value given is invalid", ("field", "value")),
    "MAP_DUPLICATE_KEY": (
        "You tried to add a key-value pair to a map, but that key is already there.",
        ("type", "param_name", "uuid", "key")),
    "INTERNAL_ERROR": (
        "The server failed to handle your request, due to an internal error. The given "
        "message may give details useful for debugging the problem.", ("message",)),
    "SSL_VERIFY_ERROR": (
        "The remote system's SSL certificate failed to verify against our certificate "
        "library.", ("reason",)),
    "WLB_NOT_INITIALIZED": ("No WLB connection is configured.", ()),
    "WLB_CONNECTION_REFUSED": ("WLB refused a connection to the server.", ()),
    "WLB_UNKNOWN_HOST": ("The configured WLB server name failed to resolve in DNS.", ()),
    "WLB_TIMEOUT": ("The communication with the WLB server timed out.", ("configured_timeout",)),
    "WLB_AUTHENTICATION_FAILED": ("WLB rejected our configured authentication details.", ()),
    "WLB_CONNECTION_RESET": ("The connection to the WLB server was reset.", ()),
    "WLB_URL_INVALID": (
        "The WLB URL is invalid. Ensure it is in the format: <ipaddress>:<port>. "
        "The configured/given URL is returned.", ("url",)),
}


def _pp_params(names: Sequence[str], values: Sequence[str]) -> list[str]:
    """cli_util.ml pp_params: pair names with values, tolerating either list being short."""
    lines = [f"{n}: {v}" for n, v in zip(names, values, strict=False)]
    lines += [f"<extra>: {v}" for v in values[len(names):]]
    lines += [f"{n}: <unknown>" for n in names[len(values):]]
    return lines


def server_error(code: str, *params: str) -> XeError:
    declared = DECLARED.get(code)
    if declared is None:
        return XeError(f"Error code: {code}", "Error parameters: " + ", ".join(params),
                       code=code, params=params)
    description, names = declared
    return XeError(description, *_pp_params(names, params), code=code, params=params)


def usage_error(what: str, detail: str) -> XeError:
    """xapi_cli.ml param_error: unknown command, missing parameter, syntax error."""
    return XeError(f"{what}: {detail}", "For usage run: 'xe help'")


def cli_failure(message: str) -> XeError:
    """cli_operations.ml's failwith raises Cli_failure, printed as `Error: <message>`."""
    return XeError(f"Error: {message}")

