"""Names that become file names, logins or addresses: one rule each, shared by the spec's
validation (which reports them at FILE:LINE:COL) and by the code that uses them (which
refuses what it did not validate itself, such as a name a host reported).
"""

from __future__ import annotations

import ipaddress
import re

# xapi's own rule for CA certificate names (certificates.ml is_unsafe): what it would
# refuse with CERTIFICATE_NAME_INVALID is never a name wlbplan uploads, removes or reads.
FILE_NAME_CHARS = "A-Za-z0-9._-"
_FILE_NAME = re.compile(f"[{FILE_NAME_CHARS}]+")
MAX_FILE_NAME = 255  # NAME_MAX on Linux; every character allowed here is one byte
CA_SUFFIX = ".pem"


def file_name_problem(name: str, *, suffix: str = CA_SUFFIX) -> str | None:
    """Why ``name`` cannot be one file name inside its folder, else None.

    Only ``[A-Za-z0-9._-]``, not starting with ``.`` (so never ``.`` or ``..``, never a
    hidden file), ending in ``suffix``: no separator, no way out of the folder.
    """
    if not name:
        return "is empty"
    if not _FILE_NAME.fullmatch(name):
        return f"may contain only letters, digits, '.', '_' and '-' ({FILE_NAME_CHARS})"
    if name.startswith("."):
        return "must not start with '.'"
    if len(name) > MAX_FILE_NAME:
        return f"is longer than {MAX_FILE_NAME} characters"
    if suffix and (not name.endswith(suffix) or name == suffix):
        return f"must end in {suffix}"
    return None


def shell_skip_unsafe_file_name(variable: str) -> str:
    """A ``case`` line that skips (``continue``) a loop's ``$variable`` unless it is one
    file name by the same characters, for a remote script that must not let a name reach
    a path; the parser then refuses the host over the name (``file_name_problem``)."""
    return f"case ${variable} in .*|*[!{FILE_NAME_CHARS}]*) continue;; esac"


# A login name: POSIX's portable user names, as useradd accepts them. No '@' or ':' (the
# SSH library would read user@host:port shorthand), no leading '-' (an option), no
# space or control character.
SSH_USER_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._-]*$"
_SSH_USER = re.compile(SSH_USER_PATTERN)
MAX_SSH_USER = 32


def ssh_user_problem(user: str) -> str | None:
    """Why ``user`` is not a login name wlbplan can use, else None."""
    if not _SSH_USER.match(user):
        return ("must be a login name: letters, digits, '.', '_' and '-', not starting "
                "with '-' or '.'")
    if len(user) > MAX_SSH_USER:
        return f"must be at most {MAX_SSH_USER} characters"
    return None


IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def ip_address_problem(text: str) -> str | None:
    """Why ``text`` is not a plain IPv4 or IPv6 literal, else None.

    A scoped IPv6 address (``fe80::1%eth0``) is refused: the zone means something only on
    the machine that says it, and neither a wlb-url, nor a certificate's IP SAN, nor
    OpenSSL's ``-connect`` can carry it.
    """
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return "is not an IP address"
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        return "is a scoped IPv6 address (with %zone): give the address without the zone"
    return None


def join_host_port(host: str, port: int) -> str:
    """``host:port``, an IPv6 literal in brackets (``[::1]:8012``): the one form wlb-url,
    OpenSSL's ``-connect`` and people read."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
