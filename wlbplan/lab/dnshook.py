"""The lab's dns-01 hook: ``dns-hook set NAME VALUE`` / ``dns-hook clear NAME`` publish or
remove a TXT record through pebble-challtestsrv's management API (on 127.0.0.1).

Stdlib only: the program the lab writes runs it with ``python -S`` on every challenge.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request


def main(port: int, argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("set", "clear") or (argv[0] == "set") != (len(argv) == 3):
        sys.stderr.write("usage: dns-hook set NAME VALUE | dns-hook clear NAME\n")
        return 2
    name = argv[1].rstrip(".") + "."  # challtestsrv keys records by FQDN
    body: dict[str, str] = {"host": name}
    if argv[0] == "set":
        body["value"] = argv[2]
    request = urllib.request.Request(f"http://127.0.0.1:{port}/{argv[0]}-txt",
                                     data=json.dumps(body).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
            answer.read()
    except (OSError, urllib.error.URLError) as err:
        sys.stderr.write(f"dns-hook: challtestsrv on 127.0.0.1:{port}: {err}\n")
        return 1
    return 0
