"""A nightly audit of a fleet: N lab targets audited with parallelism 1, then P.

Brings a lab of N targets up in a temporary folder (``--ssh``: every host reached through
a real sshd on 127.0.0.1), then times ``audit_all`` both ways (best of --repeat) and
splits one target's cost into inspecting (round trips) and judging (pure rules: the
``openssl verify`` verdicts, the modern verifier, the plan behind the drift rule). Prints
ratios; asserts nothing. Takes the lab down, also on failure or ^C.

    .venv/bin/python benchmarks/bench_audit.py [--targets 20] [--parallelism 10]
                                               [--repeat 3] [--ssh]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from wlbplan.core.audit import audit_target
from wlbplan.lab import control
from wlbplan.model.spec import Spec
from wlbplan.run import pipeline
from wlbplan.spec import load_spec


def timed_audit(spec: Spec, parallelism: int) -> tuple[float, int]:
    start = time.perf_counter()
    made = pipeline.audit_all(spec, list(spec.targets), parallelism)
    return time.perf_counter() - start, len(made.findings)


def split_cost(spec: Spec) -> tuple[float, float]:
    """Median per target: inspecting (sequential, one at a time) and judging."""
    inspect_ms, judge_ms = [], []
    for target in spec.targets:
        start = time.perf_counter()
        (seen,) = pipeline.inspect_all(spec, [target], parallelism=1)
        middle = time.perf_counter()
        audit_target(spec, target, seen)
        inspect_ms.append((middle - start) * 1000)
        judge_ms.append((time.perf_counter() - middle) * 1000)
    return statistics.median(inspect_ms), statistics.median(judge_ms)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--targets", type=int, default=20)
    parser.add_argument("--parallelism", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ssh", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wlbplan-bench-audit-") as tmp:
        lab_dir = Path(tmp) / "lab"
        try:
            started = time.perf_counter()
            lab = control.up(lab_dir, targets=args.targets, hosts=2, ssh=args.ssh)
            print(f"lab up: {args.targets} targets in {time.perf_counter() - started:.1f} s",
                  file=sys.stderr)
            spec = load_spec(lab.spec_path)
            one = min(timed_audit(spec, 1) for _ in range(args.repeat))
            many = min(timed_audit(spec, args.parallelism) for _ in range(args.repeat))
            inspect_ms, judge_ms = split_cost(spec)
        finally:
            stopped = control.down(lab_dir)
            print(f"lab down: stopped {len(stopped)} processes", file=sys.stderr)
    n = args.targets
    via = "ssh" if args.ssh else "local"
    print(f"audit {n} targets over {via} (best of {args.repeat}; {os.cpu_count()} CPUs; "
          f"{one[1]} findings):")
    print(f"  parallelism 1:   {one[0]:6.2f} s  ({one[0] / n * 1000:.0f} ms/target)")
    print(f"  parallelism {args.parallelism:<3} {many[0]:6.2f} s  "
          f"({many[0] / n * 1000:.0f} ms/target)")
    print(f"  speed-up: {one[0] / many[0]:.2f}x")
    print(f"  one target (median): inspect {inspect_ms:.0f} ms, judge {judge_ms:.0f} ms "
          f"(judging is {judge_ms / (inspect_ms + judge_ms):.0%} of it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
