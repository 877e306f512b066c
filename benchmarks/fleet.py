"""The fleet benchmark: wlbplan plan/audit against the bare SSH floor, N = 1 … 100 targets.

For each N, brings up ``wlbplan lab up --ssh --targets N --hosts 3`` in a temporary
folder (sshd logging every connection and command) and times, as a user runs them
(subprocesses, wall clock, best of --repeat, interleaved):

- ``wlbplan plan`` and ``wlbplan audit``, at ``--parallelism 1`` and at the default;
- the bare floor (benchmarks/floor.py, paramiko: one session and one ``true`` per host
  wlbplan contacts, same parallelism, same user, key and known_hosts, strict host keys);
- the work floor: the same loop running wlbplan's own inspection scripts instead of
  ``true``, so what is left above it is wlbplan's local cost, not the hosts' work;
- SSH sessions and remote commands per host, counted from the lab's sshd log.

Then, once: ``wlbplan validate`` on a generated 500-target spec, ``wlbplan --version``,
the interpreter's bare start, the lab's emulated ``xe`` (lab cost, not wlbplan's), and the
fleet at N = 50 behind a delay proxy (25 ms each way): the default parallelism's speed-up
over ``--parallelism 1``. Prints tables; asserts nothing. Every lab is taken down, also on
failure or ^C. See benchmarks/README.md for the targets and the results.

    .venv/bin/python benchmarks/fleet.py [--quick] [--repeat 3] [--sizes 1,10,50,100]
                                         [--no-latency]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from wlbplan.inspect import appliance as appliance_facts
from wlbplan.inspect import pool as pool_facts
from wlbplan.lab import control, sshd_log
from wlbplan.model.command import script
from wlbplan.model.spec import Spec
from wlbplan.spec import load_spec

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
WLBPLAN = str(BIN / "wlbplan")
FULL_SIZES = (1, 10, 50, 100)
QUICK_SIZES = (1, 10)
LATENCY_SIZE = 50
DELAY = 0.025
VALIDATE_TARGETS = 500
# Targets of issue 9.
RATIO_TARGET = 1.25
VALIDATE_TARGET = 0.5
VERSION_TARGET = 0.25
SPEED_UP_TARGET = 8.0

err = Console(stderr=True, highlight=False)


@dataclass(frozen=True)
class Run:
    seconds: float
    ok: bool
    cpu: float = 0.0  # user + sys of the command and its children: what load hides less
    connections: int = 0
    commands: int = 0
    sftp: int = 0
    most_commands_on_one: int = 0

    def per_host(self, hosts: int) -> tuple[float, float]:
        return self.connections / hosts, self.commands / hosts


@dataclass
class Size:
    targets: int
    runs: dict[tuple[str, int], Run] = field(default_factory=dict)
    loads: list[float] = field(default_factory=list)  # 1-min load average, per round

    @property
    def hosts(self) -> int:
        return 2 * self.targets  # coordinator + appliance: the hosts wlbplan contacts

    def keep(self, kind: str, parallelism: int, run: Run) -> None:
        """The fastest run; SSH counts from the first (they do not vary run to run)."""
        seen = self.runs.get((kind, parallelism))
        if seen is None:
            self.runs[(kind, parallelism)] = run
        elif run.ok and (not seen.ok or run.seconds < seen.seconds):
            self.runs[(kind, parallelism)] = Run(
                run.seconds, True, run.cpu, seen.connections, seen.commands, seen.sftp,
                seen.most_commands_on_one)


# --- the sshd log -------------------------------------------------------------------


def count_sessions(log: Path, start: int) -> tuple[int, int, int, int]:
    """Connections, commands, SFTP sessions and the most commands on one connection, from
    what sshd logged after byte ``start`` (`wlbplan lab up --ssh-log`)."""
    logged = sshd_log.connections(log, start)
    return (len(logged), sum(c.commands for c in logged), sum(c.sftp for c in logged),
            max((c.commands for c in logged), default=0))


# --- running things -----------------------------------------------------------------


def wall(argv: Sequence[str], ok_codes: tuple[int, ...] = (0,)) -> tuple[float, bool]:
    seconds, ok, _ = timed(argv, ok_codes)
    return seconds, ok


def timed(argv: Sequence[str], ok_codes: tuple[int, ...] = (0,)) -> tuple[float, bool, float]:
    """Wall seconds, whether the exit code was one of ``ok_codes``, and CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode not in ok_codes:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        err.print(f"  ! {' '.join(argv[:3])} … exit {done.returncode}: {' | '.join(tail)}")
    return seconds, done.returncode in ok_codes, cpu


def counted(log: Path, argv: Sequence[str], ok_codes: tuple[int, ...] = (0,)) -> Run:
    start = log.stat().st_size
    seconds, ok, cpu = timed(argv, ok_codes)
    time.sleep(0.2)  # sshd's children append their last lines as the client leaves
    return Run(seconds, ok, cpu, *count_sessions(log, start))


def best(argv: Sequence[str], repeat: int) -> float:
    return min(wall(argv)[0] for _ in range(repeat))


@dataclass(frozen=True)
class Lab:
    dir: Path
    spec_path: Path
    spec: Spec

    @property
    def log(self) -> Path:
        return self.dir / "ssh" / "sshd.log"


@contextlib.contextmanager
def lab_up(root: Path, targets: int) -> Iterator[Lab]:
    lab_dir = root / f"lab{targets}"
    started = time.perf_counter()
    try:
        spec_path = _start_lab(lab_dir, targets)
        err.print(f"lab up: {targets} targets in {time.perf_counter() - started:.1f} s")
        yield Lab(lab_dir, spec_path, load_spec(spec_path))
    finally:
        stopped = control.down(lab_dir)
        err.print(f"lab down: stopped {len(stopped)} processes")


def _start_lab(lab_dir: Path, targets: int, tries: int = 2) -> Path:
    """The lab's spec; a second try when the first fails (on a loaded machine a daemon
    can miss its start-up wait, or another lab take a port between probe and bind)."""
    argv = [WLBPLAN, "lab", "up", "--dir", str(lab_dir), "--ssh", "--ssh-log",
            "--targets", str(targets), "--hosts", "3"]
    for attempt in range(1, tries + 1):
        made = subprocess.run(argv, capture_output=True, text=True, check=False)
        if made.returncode == 0:
            return Path(made.stdout.strip().splitlines()[-1])
        err.print(f"  ! lab up failed (try {attempt} of {tries}): {made.stderr.strip()}")
        control.down(lab_dir)
    raise RuntimeError(f"`wlbplan lab up --targets {targets}` failed {tries} times")


def floor_hosts(spec: Spec, folder: Path, *, work: bool) -> Path:
    """The floor's input: the hosts wlbplan contacts, with ``true`` or wlbplan's own
    inspection script as the one command."""
    first = spec.targets[0].ssh
    targets = []
    for target in spec.targets:
        pool = script(pool_facts.script(target)).shell() if work else "true"
        wlb = script(appliance_facts.script(target)).shell() if work else "true"
        targets.append([
            {"host": spec.address_of(target.pool.ssh_destination), "port": target.ssh.port,
             "command": pool},
            {"host": spec.address_of(target.wlb.ssh_destination), "port": target.ssh.port,
             "command": wlb},
        ])
    path = folder / ("floor-work.json" if work else "floor.json")
    path.write_text(json.dumps({
        "user": first.user, "identity_file": str(first.identity_file),
        "known_hosts": str(first.known_hosts), "targets": targets}))
    return path


def measure_fleet(lab: Lab, spec_path: Path, work_dir: Path, parallelisms: Sequence[int],
                  repeat: int, size: Size) -> None:
    """Every kind at every parallelism, ``repeat`` rounds, interleaved so that drifting
    load on a shared machine hits all kinds alike."""
    floor = floor_hosts(lab.spec, work_dir, work=False)
    work = floor_hosts(lab.spec, work_dir, work=True)
    python = sys.executable
    for round_no in range(repeat):
        size.loads.append(os.getloadavg()[0])
        for p in parallelisms:
            kinds: dict[str, tuple[list[str], tuple[int, ...]]] = {
                "floor": ([python, str(HERE / "floor.py"), str(floor), "--parallelism", str(p)],
                          (0,)),
                "work floor": ([python, str(HERE / "floor.py"), str(work),
                                "--parallelism", str(p)], (0,)),
                "plan": ([WLBPLAN, "plan", str(spec_path), "--parallelism", str(p)], (0,)),
                # audit exits 2 when it has findings: still a complete run.
                "audit": ([WLBPLAN, "audit", str(spec_path), "--parallelism", str(p)],
                          (0, 2)),
            }
            for kind, (argv, codes) in kinds.items():
                run = counted(lab.log, argv, codes)
                size.keep(kind, p, run)
                err.print(f"  N={size.targets} p={p} round {round_no + 1}: {kind} "
                          f"{run.seconds:.2f} s")


def warm_up(lab: Lab, work_dir: Path) -> None:
    """One untimed run of each program, so that every timed one finds its bytecode cached."""
    floor = floor_hosts(lab.spec, work_dir, work=False)
    for argv in ([sys.executable, str(HERE / "floor.py"), str(floor)],
                 [WLBPLAN, "plan", str(lab.spec_path)], [WLBPLAN, "audit", str(lab.spec_path)],
                 [WLBPLAN, "validate", str(lab.spec_path)]):
        wall(argv, (0, 2))


# --- the delay proxy ----------------------------------------------------------------


@contextlib.contextmanager
def delayed(lab: Lab, folder: Path) -> Iterator[Path]:
    """A copy of the lab's spec whose SSH goes through the delay proxy."""
    port = lab.spec.targets[0].ssh.port
    proxy = subprocess.Popen(
        [sys.executable, str(HERE / "delay_proxy.py"), "--upstream", f"127.0.0.1:{port}",
         "--delay", str(DELAY)], stdout=subprocess.PIPE, text=True)
    try:
        assert proxy.stdout is not None
        ready = proxy.stdout.readline().split()
        if len(ready) != 2 or ready[0] != "listening":
            raise RuntimeError(f"the delay proxy did not start: {ready}")
        proxy_port = int(ready[1].rsplit(":", 1)[1])
        data = yaml.safe_load(lab.spec_path.read_text())
        ssh = data["defaults"]["ssh"]
        known = Path(ssh["known_hosts"]).read_text().split()
        known_hosts = folder / "known_hosts.delayed"
        # Same host key, now also under the proxy's port: strict checking still holds.
        known_hosts.write_text(f"[127.0.0.1]:{proxy_port} {known[1]} {known[2]}\n")
        ssh["port"], ssh["known_hosts"] = proxy_port, str(known_hosts)
        spec_path = folder / "delayed.yaml"
        spec_path.write_text(yaml.safe_dump(data, sort_keys=False))
        yield spec_path
    finally:
        proxy.terminate()
        proxy.wait(10)


def measure_latency(lab: Lab, root: Path, parallelisms: Sequence[int], size: Size) -> None:
    with delayed(lab, root) as spec_path:
        measure_fleet(lab, spec_path, root, parallelisms, 1,
                      size)  # once: the serial runs are long


# --- start-up and validate ----------------------------------------------------------


def big_spec(lab: Lab, folder: Path, targets: int) -> Path:
    """The lab's one-target spec, repeated: ``targets`` targets, each its own pool
    coordinator and appliance by name, as a real fleet's spec (names resolved by DNS, so
    no ``resolve`` map). The local files it names exist, as validate checks them."""
    data = yaml.safe_load(lab.spec_path.read_text())
    model = data["targets"][0]
    data["targets"] = []
    data.pop("resolve", None)
    for i in range(1, targets + 1):
        one = json.loads(json.dumps(model))
        one["name"] = f"pool{i}"
        one["pool"]["coordinator"] = f"xs{i}.fleet.test"
        one["wlb"]["address"] = f"wlb{i}.fleet.test"
        one["wlb"].pop("ssh_host", None)
        data["targets"].append(one)
    path = folder / f"spec-{targets}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def median_ms(argv: Sequence[str], calls: int) -> float:
    wall(argv)  # warm the bytecode cache
    return statistics.median(wall(argv)[0] for _ in range(calls)) * 1000


def startup(lab: Lab, folder: Path, repeat: int) -> dict[str, float]:
    spec500 = big_spec(lab, folder, VALIDATE_TARGETS)
    if not wall([WLBPLAN, "validate", str(spec500)])[1]:
        err.print(f"  ! the generated {VALIDATE_TARGETS}-target spec is not valid")
    target = lab.spec.targets[0]
    xe = target.pool.xe
    pool_script = script(pool_facts.script(target)).argv
    wlb_script = script(appliance_facts.script(target)).argv
    calls = max(5, repeat * 3)
    return {
        "wlbplan --version": best([WLBPLAN, "--version"], calls),
        f"wlbplan validate ({VALIDATE_TARGETS} targets)":
            best([WLBPLAN, "validate", str(spec500)], calls),
        "python -c pass (the venv's interpreter)": best([sys.executable, "-c", "pass"], calls),
        "python -c 'import paramiko' (the floor's imports)":
            best([sys.executable, "-c", "import paramiko"], calls),
        "lab xe: one call (median)": median_ms(
            [xe, "pool-param-get", f"uuid={_pool_uuid(xe)}", "param-name=wlb-url"], calls) / 1000,
        f"lab coordinator script, run locally ({_xe_calls(target)} xe calls; median)":
            median_ms(pool_script, calls) / 1000,
        "lab appliance script, run locally (median)": median_ms(wlb_script, calls) / 1000,
    }


def _pool_uuid(xe: str) -> str:
    return subprocess.run([xe, "pool-list", "--minimal"], check=True, capture_output=True,
                          text=True).stdout.strip()


def _xe_calls(target: Any) -> int:
    return sum(1 for line in pool_facts.script(target).splitlines()
               if line.lstrip().startswith("_f ") and f" {target.pool.xe} " in f"{line} ")


# --- the report ---------------------------------------------------------------------


def default_parallelism() -> int:
    from wlbplan.cli import cli

    for param in cli.commands["plan"].params:
        if param.name == "parallelism" and isinstance(param.default, int):
            return param.default
    raise RuntimeError("wlbplan plan has no --parallelism")


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs ({cpu}); "
            f"Python {platform.python_version()}; {shutil.which('sshd') or 'sshd'}; "
            f"load average {load}")


def mark(ratio: float, target: float) -> str:
    """The ratio, in red when above its target."""
    shown = f"{ratio:.2f}"
    return shown if ratio <= target else f"[red]{shown}[/red]"


def fleet_table(title: str, sizes: Sequence[Size], parallelisms: Sequence[int]) -> Table:
    table = Table(title=title, title_justify="left")
    for name in ("N", "load", "p", "floor s", "work s", "plan s", "audit s", "plan/floor",
                 "audit/floor", "plan/work", "audit/work", "sessions/host plan audit floor",
                 "commands/host plan audit floor"):
        table.add_column(name, justify="right")
    for size in sizes:
        for p in parallelisms:
            runs = [size.runs.get((kind, p)) for kind in ("floor", "work floor", "plan", "audit")]
            if any(r is None for r in runs):
                continue
            floor, work, plan, audit = (r for r in runs if r is not None)
            counts = [(r.per_host(size.hosts)) for r in (plan, audit, floor)]
            load = f"{min(size.loads):.0f}-{max(size.loads):.0f}" if size.loads else "?"
            table.add_row(
                str(size.targets), load, str(p),
                *(f"{r.seconds:.2f}" + ("" if r.ok else " failed")
                  for r in (floor, work, plan, audit)),
                mark(plan.seconds / floor.seconds, RATIO_TARGET),
                mark(audit.seconds / floor.seconds, RATIO_TARGET),
                f"{plan.seconds / work.seconds:.2f}", f"{audit.seconds / work.seconds:.2f}",
                " ".join(mark(c[0], 1.0) for c in counts),
                " ".join(mark(c[1], 1.0) for c in counts),
            )
    return table


def cpu_table(sizes: Sequence[Size], parallelisms: Sequence[int]) -> Table:
    table = Table(title="CPU seconds on this side (user + sys of the command and its "
                        "children; the hosts' side, sshd and xe, is not in it)",
                  title_justify="left")
    for name in ("N", "p", "floor", "plan", "audit", "plan - floor", "audit - floor"):
        table.add_column(name, justify="right")
    for size in sizes:
        for p in parallelisms:
            runs = [size.runs.get((kind, p)) for kind in ("floor", "plan", "audit")]
            if any(r is None for r in runs):
                continue
            floor, plan, audit = (r for r in runs if r is not None)
            table.add_row(str(size.targets), str(p), f"{floor.cpu:.2f}", f"{plan.cpu:.2f}",
                          f"{audit.cpu:.2f}", f"{plan.cpu - floor.cpu:.2f}",
                          f"{audit.cpu - floor.cpu:.2f}")
    return table


def speed_up_table(size: Size, serial: int, parallel: int) -> Table:
    table = Table(title=f"N={size.targets} behind the delay proxy ({DELAY * 1000:.0f} ms each "
                        f"way): --parallelism {parallel} against 1", title_justify="left")
    for name in ("", "p=1 s", f"p={parallel} s", "speed-up", f"target >= {SPEED_UP_TARGET:.0f}x"):
        table.add_column(name, justify="right")
    for kind in ("floor", "work floor", "plan", "audit"):
        one, many = size.runs.get((kind, serial)), size.runs.get((kind, parallel))
        if one is None or many is None:
            continue
        gain = one.seconds / many.seconds
        table.add_row(kind, f"{one.seconds:.2f}", f"{many.seconds:.2f}", f"{gain:.1f}x",
                      "" if kind not in ("plan", "audit") else
                      ("met" if gain >= SPEED_UP_TARGET else "[red]missed[/red]"))
    return table


def startup_table(found: dict[str, float]) -> Table:
    table = Table(title="Start-up, validate and the lab's own cost", title_justify="left")
    for name in ("", "s", "target"):
        table.add_column(name, justify="right" if name else "left")
    targets = {"wlbplan --version": VERSION_TARGET,
               f"wlbplan validate ({VALIDATE_TARGETS} targets)": VALIDATE_TARGET}
    for what, seconds in found.items():
        goal = targets.get(what)
        shown = "" if goal is None else (f"<= {goal}" + ("" if seconds <= goal else
                                                          " [red]missed[/red]"))
        table.add_row(what, f"{seconds:.3f}", shown)
    return table


# --- main ---------------------------------------------------------------------------


def run_size(root: Path, n: int, args: argparse.Namespace, parallelisms: Sequence[int],
             first: bool, latency: bool, results: list[Size], delayed: list[Size],
             found: dict[str, float]) -> None:
    """One lab of ``n`` targets, measured; what it measured is added to the lists even
    when a later step fails."""
    size = Size(n)
    results.append(size)
    with lab_up(root, n) as lab:
        work_dir = root / f"work{n}"
        work_dir.mkdir()
        if first:
            warm_up(lab, work_dir)
            found.update(startup(lab, work_dir, args.repeat))
        measure_fleet(lab, lab.spec_path, work_dir, parallelisms,
                      args.repeat if n <= 10 else 1, size)
        if latency and not args.no_latency:
            delayed.append(Size(n))
            measure_latency(lab, work_dir, parallelisms, delayed[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 1 and 10 only")
    parser.add_argument("--sizes", default=None,
                        help="comma-separated N (default 1,10,50,100; --quick: 1,10)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds for N <= 10 (best kept); larger N run once")
    parser.add_argument("--no-latency", action="store_true",
                        help="skip the run behind the delay proxy")
    args = parser.parse_args()
    sizes = (tuple(int(n) for n in args.sizes.split(",")) if args.sizes
             else QUICK_SIZES if args.quick else FULL_SIZES)
    default = default_parallelism()
    parallelisms = (1, default)
    latency_n = max((n for n in sizes if n <= LATENCY_SIZE), default=None)
    # Subprocesses write and reuse bytecode caches, as an installed wlbplan has them (an
    # environment that sets PYTHONDONTWRITEBYTECODE would compile every module per run).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    console = Console(highlight=False, width=max(150, shutil.get_terminal_size().columns))
    console.print(f"wlbplan fleet benchmark: {machine()}")
    results: list[Size] = []
    delayed: list[Size] = []
    found: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="wlbplan-bench-fleet-") as tmp:
            root = Path(tmp)
            os.environ["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
            for n in sizes:
                run_size(root, n, args, parallelisms, n == sizes[0], n == latency_n,
                         results, delayed, found)
    finally:
        # Whatever was measured is shown, also when a size failed or on ^C.
        console.print(f"(finished: load average "
                      f"{' '.join(f'{x:.1f}' for x in os.getloadavg())})")
        console.print(fleet_table(
            f"plan and audit against the floor (best of {args.repeat} for N <= 10, one "
            f"run above; target ratio <= {RATIO_TARGET}; default parallelism {default})",
            results, parallelisms))
        console.print(cpu_table(results, parallelisms))
        for size in delayed:
            console.print(speed_up_table(size, 1, default))
        console.print(startup_table(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
