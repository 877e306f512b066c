"""Median start-up of the lab's ``xe`` emulator, the cost every benchmark pays per call.

Times ``xe pool-param-get`` through the generated ``bin/xe`` wrapper and compares it with
a bare ``python -S`` start. Not a test: it prints, it does not assert.

    .venv/bin/python benchmarks/bench_xe.py [--calls 20]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from wlbplan.lab import xe_state
from wlbplan.lab.layout import TargetLayout

BUDGET_MS = 60.0


def median_ms(argv: list[str], calls: int) -> float:
    subprocess.run(argv, check=True, capture_output=True)  # warm the bytecode cache
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20)
    calls = parser.parse_args().calls
    with tempfile.TemporaryDirectory() as tmp:
        layout = TargetLayout(Path(tmp) / "pool1")
        xe_state.create_pool(layout, hosts=3, xapi="current", wlb_url="wlb1.lab.test:8012",
                             wlb_username="wlbuser", wlb_password="unused",
                             resolve={"wlb1.lab.test": "127.0.0.1"})
        xe_state.write_xe_wrapper(layout)
        uuid = xe_state.load(layout.pool_state)["pool"]["uuid"]
        xe = median_ms([str(layout.xe), "pool-param-get", f"uuid={uuid}",
                        "param-name=wlb-verify-cert"], calls)
    bare = median_ms([sys.executable, "-S", "-c", "pass"], calls)
    print(f"xe pool-param-get: median {xe:.1f} ms over {calls} calls "
          f"(budget {BUDGET_MS:.0f} ms; {xe / BUDGET_MS:.2f} of it)")
    print(f"bare python -S:    median {bare:.1f} ms; xe costs {xe / bare:.1f}x a bare start")
    return 0


if __name__ == "__main__":
    sys.exit(main())
