"""Inspect N lab targets one after another, then with ``inspect_all(parallelism=P)``.

Brings a lab of N targets up in a temporary folder, times both ways (best of --repeat),
prints the speed-up and the round trips counted per host, and takes the lab down, also
on failure or ^C. Not a test: it prints, it does not assert.

    .venv/bin/python benchmarks/bench_inspect.py [--targets 10] [--parallelism 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from unittest import mock

from wlbplan.connectors.base import Runner
from wlbplan.inspect.run import inspect_target
from wlbplan.lab import control
from wlbplan.model.command import Command, CommandResult
from wlbplan.model.spec import Spec, Target
from wlbplan.run import pipeline
from wlbplan.run.sessions import Sessions, open_sessions
from wlbplan.spec import load_spec


class Counter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.runs = 0
        self.sessions = 0

    def add(self, runs: int = 0, sessions: int = 0) -> None:
        with self._lock:
            self.runs += runs
            self.sessions += sessions


class CountingRunner:
    def __init__(self, inner: Runner, counter: Counter) -> None:
        self.inner, self.counter = inner, counter

    @property
    def host(self) -> str:
        return self.inner.host

    def run(self, command: Command, *, timeout: float | None = None) -> CommandResult:
        self.counter.add(runs=1)
        return self.inner.run(command, timeout=timeout)

    def put(self, data: bytes, remote_path: str, *, mode: int = 0o600) -> None:
        self.inner.put(data, remote_path, mode=mode)

    def get(self, remote_path: str) -> bytes:
        return self.inner.get(remote_path)

    def close(self) -> None:
        self.inner.close()


def counting(counter: Counter) -> Callable[[Spec, Target], AbstractContextManager[Sessions]]:
    """An ``open_sessions`` whose runners count their round trips."""

    @contextmanager
    def opened(spec: Spec, target: Target) -> Iterator[Sessions]:
        with open_sessions(spec, target) as sessions:
            counter.add(sessions=2)
            yield Sessions(pool=CountingRunner(sessions.pool, counter),
                           appliance=CountingRunner(sessions.appliance, counter))

    return opened


def sequential(spec: Spec, counter: Counter) -> float:
    opened = counting(counter)
    start = time.perf_counter()
    for target in spec.targets:
        with opened(spec, target) as sessions:
            inspect_target(target, sessions)
    return time.perf_counter() - start


def parallel(spec: Spec, counter: Counter, parallelism: int) -> float:
    with mock.patch.object(pipeline, "open_sessions", counting(counter)):
        start = time.perf_counter()
        pipeline.inspect_all(spec, list(spec.targets), parallelism=parallelism)
        return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=10)
    parser.add_argument("--parallelism", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wlbplan-bench-inspect-") as tmp:
        lab_dir = Path(tmp) / "lab"
        try:
            started = time.perf_counter()
            lab = control.up(lab_dir, targets=args.targets, hosts=3)
            print(f"lab up: {args.targets} targets in {time.perf_counter() - started:.1f} s",
                  file=sys.stderr)
            spec = load_spec(lab.spec_path)
            seq_counter, par_counter = Counter(), Counter()
            seq = min(sequential(spec, seq_counter) for _ in range(args.repeat))
            par = min(parallel(spec, par_counter, args.parallelism) for _ in range(args.repeat))
        finally:
            stopped = control.down(lab_dir)
            print(f"lab down: stopped {len(stopped)} processes", file=sys.stderr)
    n, runs = args.targets, args.repeat
    print(f"inspect {n} targets (best of {runs}; {os.cpu_count()} CPUs):")
    print(f"  sequential:                   {seq:6.2f} s  ({seq / n * 1000:.0f} ms/target)")
    print(f"  inspect_all(parallelism={args.parallelism:<2}):  {par:6.2f} s  "
          f"({par / n * 1000:.0f} ms/target)")
    print(f"  speed-up: {seq / par:.2f}x")
    for label, counter in (("sequential", seq_counter), ("parallel", par_counter)):
        per_host = counter.runs / counter.sessions if counter.sessions else float("nan")
        print(f"  round trips, {label}: {counter.runs} over {counter.sessions} host sessions "
              f"({per_host:.2f} per host, {counter.runs / (n * runs):.2f} per target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
