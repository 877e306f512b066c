"""The bare SSH floor: one session and one command per host, nothing else.

What any SSH tool must pay to touch a fleet: per host, connect, check the host key
(strict: only the given known_hosts), authenticate with the given key, run one command,
read its exit status. The targets run ``--parallelism`` at a time and a target's hosts at
once, the shape wlbplan's inspection has. Run as its own program (``python floor.py``),
so it pays interpreter start-up and the paramiko import as the wlbplan CLI does; see
benchmarks/README.md for why.

    python benchmarks/floor.py HOSTS.json [--parallelism 16]

HOSTS.json: ``{"user", "identity_file", "known_hosts", "targets": [[{"host", "port",
"command"}, ...], ...]}``; "command" is optional (default ``true``). Exit 0 when every
command exited 0, 1 otherwise; prints nothing on success.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import paramiko


def one_host(spec: dict[str, Any], host: dict[str, Any]) -> int:
    client = paramiko.SSHClient()
    client.load_host_keys(spec["known_hosts"])
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(host["host"], port=host["port"], username=spec["user"],
                       key_filename=spec["identity_file"], allow_agent=False,
                       look_for_keys=False, timeout=30)
        _, stdout, _ = client.exec_command(host.get("command", "true"), timeout=60)
        stdout.read()
        return stdout.channel.recv_exit_status()
    finally:
        client.close()


def one_target(spec: dict[str, Any], hosts: list[dict[str, Any]]) -> list[int]:
    with ThreadPoolExecutor(max_workers=len(hosts)) as each:
        return list(each.map(lambda host: one_host(spec, host), hosts))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("hosts", type=Path)
    parser.add_argument("--parallelism", type=int, default=16)
    args = parser.parse_args()
    spec = json.loads(args.hosts.read_text())
    with ThreadPoolExecutor(max_workers=args.parallelism) as workers:
        statuses = [s for each in workers.map(lambda t: one_target(spec, t), spec["targets"])
                    for s in each]
    failed = [s for s in statuses if s != 0]
    if failed:
        print(f"floor: {len(failed)} of {len(statuses)} commands failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
