"""ACME issuance plus install against the install alone, on the lab's Pebble.

Brings up a lab with ``--acme`` in a temporary folder, then applies the ACME spec
--repeat times (the first run issues from the self-signed appliance; each later one is a
renewal forced by renew_before_days). From each apply's own events it splits the wall
time into the request stage (key and CSR on the appliance), the ACME order (account,
challenge, finalize, download) and the install steps that follow (the CA-signed path:
trust, sync, backup, install, restart, preflight, verify, confirm). Prints medians and
ratios; asserts nothing. Takes the lab down, also on failure or ^C.

    .venv/bin/python benchmarks/bench_acme.py [--repeat 3] [--ssh]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from wlbplan.core.plan import plan_one
from wlbplan.lab import control, pebble
from wlbplan.run import pipeline
from wlbplan.run.apply import apply_target
from wlbplan.run.sessions import open_sessions
from wlbplan.spec import load_spec


def one_apply(spec_path: Path, state: Path) -> dict[str, float]:
    """Seconds: the whole apply (plan included), the order step, the install steps."""
    spec = load_spec(spec_path)
    target = spec.targets[0]
    marks: dict[str, float] = {}

    def record(event: dict[str, Any]) -> None:
        now = time.perf_counter()
        step = str(event.get("step", ""))
        if event["type"] == "apply_start" and step.endswith("acme.order"):
            marks["order_start"] = now
        elif event["type"] == "apply_complete" and step.endswith("acme.order"):
            marks["order_end"] = now
        elif event["type"] == "acme_issued":
            marks["install_start"] = now

    start = time.perf_counter()
    observed = pipeline.inspect_all(spec, [target])[0]
    plan = plan_one(spec, target, observed)
    with open_sessions(spec, target) as sessions:
        outcome = apply_target(spec, target, plan, sessions, state, record, threading.Event())
    end = time.perf_counter()
    if outcome.status != "applied":
        raise RuntimeError(f"the apply did not go through: {outcome.status}: {outcome.error}")
    return {"total": end - start, "request": marks["order_start"] - start,
            "order": marks["order_end"] - marks["order_start"],
            "replan": marks["install_start"] - marks["order_end"],
            "install": end - marks["install_start"]}


def renewing(spec_path: Path, folder: Path) -> Path:
    """The lab's spec with a margin longer than Pebble's validity: always due."""
    data = yaml.safe_load(spec_path.read_text())
    data["targets"][0]["certificate"]["acme"]["renew_before_days"] = pebble.VALIDITY_DAYS + 10
    path = folder / "renew.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ssh", action="store_true")
    args = parser.parse_args()
    if not pebble.installed():
        print("pebble is not installed (apt-get install pebble)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="wlbplan-bench-acme-") as tmp:
        folder = Path(tmp)
        try:
            started = time.perf_counter()
            lab = control.up(folder / "lab", hosts=2, ssh=args.ssh, acme=True)
            print(f"lab up (stunnel, pool, Pebble, challtestsrv): "
                  f"{time.perf_counter() - started:.2f}s")
            spec = renewing(lab.spec_path, folder)
            runs = [one_apply(spec, folder / "state") for _ in range(max(1, args.repeat))]
        finally:
            control.down(folder / "lab")
    median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    print(f"{len(runs)} apply(s), {'SSH' if args.ssh else 'local'} connector, median:")
    for key, label in (("request", "key + CSR on the appliance (and the plan)"),
                       ("order", "ACME order (issuance)"),
                       ("replan", "look again, plan the install from the chain"),
                       ("install", "install alone (CA-signed steps)"),
                       ("total", "issuance + install, whole apply")):
        print(f"  {label:45s} {median[key]:7.2f}s")
    print(f"issuance + install / install alone: {median['total'] / median['install']:.2f}x")
    print(f"the ACME order's share of the apply: {median['order'] / median['total']:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
