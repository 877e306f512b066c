"""What a host prints is bad input too (issue 10): garbage, output cut short, output far
over the cap, xe errors wlbplan does not expect, an xe that crashes, a certificate file on
the appliance cut short. `plan` and `audit` report each for its own target, in words and
without a traceback, exit 1, and finish every other target.

One lab, one target per case (each pool's ``xe`` wrapped by a script that misbehaves),
one `plan` and one `audit` over all of them: a case that broke the run would break
every target's assertions, not only its own.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from wlbplan.lab import control
from wlbplan.limits import OUTPUT

pytestmark = pytest.mark.lab

INTERNALS = re.compile(r"Traceback|Internal error|\b\w+(Error|Exception)\b(?!: )")


@dataclass(frozen=True)
class Case:
    xe: str | None  # the wrapper's body ({xe}: the lab's real xe), None: the real xe
    says: str  # in the target's reason (plan) and its finding (audit)


CASES: dict[str, Case] = {
    "good": Case(None, ""),
    "garbage": Case("printf '\\377\\376 garbage \\033[31m red \\001\\n'; exit 0",
                    "printed '\ufffd\ufffd garbage \\x1b[31m red \\x01' for pool-list, not a "
                    "UUID; is it the xe CLI of a pool coordinator?"),
    "truncated": Case('{xe} "$@" | head -c 7',
                      "for pool-list, not a UUID"),
    "huge": Case(f'[ "$1" = pool-list ] && {{ yes wlbplan | head -c {OUTPUT.size + 1}; '
                 'exit 0; }\nexec {xe} "$@"',
                 f"is larger than {OUTPUT}, the most wlbplan reads from the output of one "
                 "remote command; it was not read (the host printed far more than that "
                 "command should"),
    "huge-under-the-cap": Case('[ "$1" = pool-list ] && { yes wlbplan | head -c 2000000; '
                               'exit 0; }\nexec {xe} "$@"',
                               "printed 'wlbplan\\nwlbplan\\n"),
    "internal-error": Case('[ "$1" = pool-param-list ] && { echo "Error code: INTERNAL_ERROR" '
                           '>&2; echo "Error parameters: Db_exn.Read_missing_uuid" >&2; '
                           'exit 1; }\nexec {xe} "$@"',
                           "xe failed reading pool.params: Error code: INTERNAL_ERROR"),
    "crashes": Case('[ "$1" = pool-certificate-list ] && kill -SEGV $$\nexec {xe} "$@"',
                    "xe failed reading certs: no output (exit 139)"),
    "unknown-help": Case('[ "$1" = help ] && { echo "Usage: xe <command>"; exit 0; }\n'
                         'exec {xe} "$@"',
                         "printed 'Usage: xe <command>' for `xe help "
                         "pool-install-ca-certificate`, not that command's help"),
}
TRUNCATED_CERT = "truncated-certificate"  # the appliance's server.pem, cut in half


@dataclass(frozen=True)
class Ran:
    lab: control.Lab
    names: dict[str, str]  # case -> target name
    plan: subprocess.CompletedProcess[str]
    audit: subprocess.CompletedProcess[str]


def wlbplan(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {"NO_COLOR": "1", "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "HOME": os.environ.get("HOME", "/root")}
    return subprocess.run([sys.executable, "-m", "wlbplan", *map(str, args)],
                          capture_output=True, text=True, timeout=180, env=env, check=False)


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ran]:
    folder = tmp_path_factory.mktemp("bad-host-output")
    cases = [*CASES, TRUNCATED_CERT]
    lab = control.up(folder / "lab", targets=len(cases), hosts=1)
    try:
        data = yaml.safe_load(lab.spec_path.read_text())
        names = {}
        for case, target in zip(cases, data["targets"], strict=True):
            names[case] = target["name"]
            body = CASES[case].xe if case in CASES else None
            if body is not None:
                wrapper = folder / f"xe-{case}"
                real = target["pool"]["xe"]
                wrapper.write_text("#!/bin/sh\n" + body.replace("{xe}", real) + "\n")
                wrapper.chmod(0o755)
                target["pool"]["xe"] = str(wrapper)
        cert = lab.layout(names[TRUNCATED_CERT]).cert
        cert.write_bytes(cert.read_bytes()[: len(cert.read_bytes()) // 2])
        spec = folder / "spec.yaml"
        spec.write_text(yaml.safe_dump(data, sort_keys=False))
        yield Ran(lab, names, wlbplan("plan", spec, "--format", "json"),
                  wlbplan("audit", spec, "--format", "json"))
    finally:
        control.down(lab.dir)


def _by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in document["targets"]}


@pytest.mark.parametrize("case", [c for c in CASES if c != "good"])
def test_plan_refuses_that_target_in_words(ran: Ran, case: str) -> None:
    name = ran.names[case]
    assert ran.plan.returncode == 1, ran.plan.stderr
    planned = _by_name(json.loads(ran.plan.stdout))[name]
    assert planned["status"] == "unreachable", planned
    assert CASES[case].says in planned["reason"], planned["reason"]
    assert planned["reason"].startswith(f"{name}: ") or " on local" in planned["reason"]
    assert len(planned["reason"]) < 1000, "the host's output is quoted whole"
    assert f"  - {name} (unreachable): " in ran.plan.stderr


@pytest.mark.parametrize("case", [c for c in CASES if c != "good"])
def test_audit_reports_that_target_unreachable_in_words(ran: Ran, case: str) -> None:
    assert ran.audit.returncode == 1, ran.audit.stderr
    findings = {f["rule_id"]: f for f in _by_name(json.loads(ran.audit.stdout))[
        ran.names[case]]["findings"]}
    assert set(findings) == {"WLB-TARGET-UNREACHABLE"}, findings
    message = findings["WLB-TARGET-UNREACHABLE"]["message"]
    assert CASES[case].says in message, message
    assert len(message) < 1000, "the host's output is quoted whole"


def test_a_certificate_file_cut_short_on_the_appliance_is_said(ran: Ran) -> None:
    name = ran.names[TRUNCATED_CERT]
    cert = ran.lab.layout(name).cert
    planned = _by_name(json.loads(ran.plan.stdout))[name]
    assert planned["status"] == "refused", planned
    assert planned["reason"] == (
        f"{name}: the appliance's certificate {cert} cannot be used (the file holds no "
        "complete PEM certificate (empty, cut short, or not PEM)); a self-signed target "
        "trusts what the appliance has, so fix that first")
    findings = {f["rule_id"]: f for f in _by_name(json.loads(ran.audit.stdout))[name][
        "findings"]}
    assert findings["WLB-FILE-UNREADABLE"]["level"] == "error"
    assert f"{cert}: the file holds no complete PEM certificate (empty, cut short" in \
        findings["WLB-FILE-UNREADABLE"]["message"]


def test_the_other_targets_are_planned_and_audited(ran: Ran) -> None:
    name = ran.names["good"]
    planned = _by_name(json.loads(ran.plan.stdout))[name]
    assert planned["status"] == "planned", planned
    assert planned["steps"]
    audited = _by_name(json.loads(ran.audit.stdout))[name]
    assert "WLB-POOL-VERIFY-OFF" in {f["rule_id"] for f in audited["findings"]}


def test_nothing_reads_as_a_crash(ran: Ran) -> None:
    for done in (ran.plan, ran.audit):
        assert not INTERNALS.search(done.stderr), done.stderr
        assert "PEM removed" not in done.stderr
