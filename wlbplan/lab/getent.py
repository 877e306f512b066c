"""The lab's ``getent hosts NAME``: the coordinator's resolver, answering from the pool's
name map (``state.json``'s ``resolve``), the one the lab's xe connects WLB by.

Stdlib only: ``bin/getent`` runs it on every inspection. Like glibc's getent: one
``ADDRESS NAME`` line and exit 0 for a known name (an IP literal is its own answer), exit
2 for an unknown one, exit 1 for a database or usage it does not serve. The lab's name
service is the map alone: no name is ever looked up outside it.
"""

from __future__ import annotations

import json
import sys

# Not typing's: this runs on every inspection. mypy reads it as true.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from pathlib import Path

NOT_FOUND = 2


def main(argv: list[str], state_path: Path) -> int:
    args = argv[1:] if argv[:1] == ["hosts"] else None
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        sys.stderr.write("lab getent: only `getent hosts [--] NAME…` is served\n")
        return 1
    with open(state_path) as handle:
        names = {k.lower(): v for k, v in json.load(handle)["resolve"].items()}
    found = False
    for name in args:
        address = _address(name, names)
        if address is not None:
            sys.stdout.write(f"{address:<15} {name}\n")
            found = True
    return 0 if found else NOT_FOUND


def _address(name: str, names: dict[str, str]) -> str | None:
    import ipaddress

    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return names.get(name.lower().rstrip("."))
