"""What an inspection reads besides the facts (audit's findings, a plan's blockers): the
pool's apply lock and the appliance's stunnel.conf come in the host's one script, parsed
strictly, and stay apart from the facts a plan is made against (issue 9)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path, PurePosixPath

from wlbplan.connectors.local import LocalRunner
from wlbplan.core.stunnel_conf import Served
from wlbplan.inspect import appliance, pool
from wlbplan.inspect import script as facts
from wlbplan.inspect.script import RawFact
from wlbplan.lab.procs import free_port
from wlbplan.model.command import script
from wlbplan.model.lock import UNREADABLE, LockInfo
from wlbplan.model.spec import Target

HELD = LockInfo(id="1d2c", owner="ops@jump", pid=7, created="2026-01-02T03:04:05Z",
                target="pool1")


def _run(text: str) -> dict[str, RawFact]:
    return facts.parse(LocalRunner(command_timeout=60).run(script(text)).stdout)


def test_the_lock_is_read_by_the_pools_one_script(make_target: Callable[..., Target],
                                                  tmp_path: Path) -> None:
    base = make_target(xe=str(tmp_path / "no-xe"))
    target = dataclasses.replace(base, pool=dataclasses.replace(
        base.pool, state_dir=PurePosixPath(tmp_path)))
    assert pool.parse_held_lock(_run(pool.script(target)), target) is None  # not locked
    (tmp_path / "apply.lock").write_text(json.dumps(asdict(HELD)))
    assert pool.parse_held_lock(_run(pool.script(target)), target) == HELD
    (tmp_path / "apply.lock").write_text('{"id": "cut sh')
    assert pool.parse_held_lock(_run(pool.script(target)), target).id == UNREADABLE


def test_stunnel_conf_is_read_by_the_appliances_one_script(
        make_target: Callable[..., Target], tmp_path: Path) -> None:
    port = free_port()  # nothing serves there: the handshake fails at once
    base = make_target(cert=str(tmp_path / "c.pem"), key=str(tmp_path / "k.pem"), port=port)
    conf = tmp_path / "stunnel.conf"
    target = dataclasses.replace(base, wlb=dataclasses.replace(
        base.wlb, stunnel_conf=PurePosixPath(conf)))
    assert appliance.parse_stunnel_conf(_run(appliance.script(base)), base) is None
    got = appliance.parse_stunnel_conf(_run(appliance.script(target)), target)
    assert got is not None
    assert got.problem is not None
    assert got.problem.startswith("cannot be read (")
    conf.write_text(f"cert = /g.pem\n[wlb]\naccept = {port}\ncert = /c.pem\nkey = /k.pem\n")
    got = appliance.parse_stunnel_conf(_run(appliance.script(target)), target)
    assert got == Served(cert="/c.pem", key="/k.pem")


def test_a_script_cut_short_reads_no_lock_and_says_stunnel_conf_was_not_read(
        target: Target) -> None:
    with_conf = dataclasses.replace(target, wlb=dataclasses.replace(
        target.wlb, stunnel_conf=PurePosixPath("/etc/stunnel/stunnel.conf")))
    assert pool.parse_held_lock({}, target) is None
    got = appliance.parse_stunnel_conf({}, with_conf)
    assert got is not None
    assert got.problem is not None
    assert "not read" in got.problem


def test_an_unreadable_stunnel_conf_says_so_escaped(target: Target) -> None:
    with_conf = dataclasses.replace(target, wlb=dataclasses.replace(
        target.wlb, stunnel_conf=PurePosixPath("/x")))
    raw = {appliance.STUNNEL_CONF: RawFact("cat: /x:\nforged\x1b[2J", 1)}
    got = appliance.parse_stunnel_conf(raw, with_conf)
    assert got is not None
    assert got.problem == "cannot be read (cat: /x:\\nforged\\x1b[2J)"
