"""Watch an appliance's key folder and live files while an apply runs (a separate process,
so that it polls on its own core, not sharing the test's interpreter).

    python _watch.py CONFIG_JSON

CONFIG: ``folder`` (the key's folder), ``key`` (the key's file name: every entry whose
name starts with it holds key material), ``read`` (paths a reader opens again and
again), ``ready`` (a file written once the first round is done), ``stop`` (the loop
ends when this file exists), ``out`` (the report, JSON), ``pause`` (seconds between
rounds: the machine's other work must go on).

Each round lists the folder, lstat()s every key-named entry (its mode must never grant
group or others anything), and reads every ``read`` path whole (each content must be
one complete PEM; a missing file is counted). The report holds digests and verdicts
only, never content: the key's bytes stay on the appliance.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import sys
import time
from pathlib import Path

_PEM = re.compile(rb"(-----BEGIN ([A-Z0-9 ]+)-----\n[A-Za-z0-9+/=\n]+-----END \2-----\n)+")


def complete(data: bytes) -> bool:
    """One or more whole PEM blocks and nothing else: a file cut short fails this."""
    return bool(data) and _PEM.fullmatch(data) is not None


def main() -> None:
    config = json.loads(sys.argv[1])
    folder, key = config["folder"], config["key"]
    stop, reads, pause = Path(config["stop"]), config["read"], config["pause"]
    loose: dict[str, str] = {}
    seen: dict[str, dict[str, bool]] = {path: {} for path in reads}
    missing = dict.fromkeys(reads, 0)
    rounds, started = 0, time.monotonic()
    while not stop.exists():
        for entry in os.scandir(folder):
            if not entry.name.startswith(key):
                continue
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(mode) or stat.S_IMODE(mode) & 0o077:
                loose.setdefault(entry.name, oct(stat.S_IMODE(mode)))
        for path in reads:
            try:
                with open(path, "rb") as handle:
                    data = handle.read()
            except FileNotFoundError:
                missing[path] += 1
                continue
            digest = hashlib.sha256(data).hexdigest()
            if digest not in seen[path]:
                seen[path][digest] = complete(data)
        rounds += 1
        time.sleep(pause)
        if rounds == 1:
            Path(config["ready"]).write_text("ready")
    Path(config["out"]).write_text(json.dumps({
        "rounds": rounds, "seconds": time.monotonic() - started, "loose": loose,
        "seen": seen, "missing": missing}))


if __name__ == "__main__":
    main()
