"""Pool facts from XenAPI records (``inspect.pool_xenapi``): the same facts the xe
inspection yields for the same pool, and hostile records refused in wlbplan's words."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from property_settings import PARSER

from wlbplan import certs
from wlbplan.connectors.local import LocalRunner
from wlbplan.errors import RemoteCommandError
from wlbplan.inspect import pool
from wlbplan.inspect import script as facts
from wlbplan.inspect.pool_xenapi import ApiRecords, fingerprint, parse
from wlbplan.lab import xe_state
from wlbplan.lab.layout import TargetLayout
from wlbplan.lab.pki import build, make_key
from wlbplan.lab.xenapi import server as xenapi_server
from wlbplan.lab.xenapi.daemon import endpoint as xenapi_endpoint
from wlbplan.lab.xenapi.daemon import make_pool_identity
from wlbplan.model.command import script as shell_script
from wlbplan.model.names import file_name_problem
from wlbplan.model.spec import Target

CANONICAL = re.compile(r"([0-9A-F]{2}:){31}[0-9A-F]{2}")


def read_records(dispatcher: xenapi_server.Dispatcher, *, pre_1290: bool) -> ApiRecords:
    """What the connector reads in one session, through the lab's call table."""
    account = json.loads(dispatcher.endpoint.account.read_text())
    session = dispatcher._dispatch("session.login_with_password",
                                   (account["username"], account["password"]))["Value"]

    def call(name: str) -> Any:
        answer = dispatcher._dispatch(name, (session,))
        assert answer["Status"] == "Success", answer
        return answer["Value"]

    return ApiRecords(pools=call("pool.get_all_records"), hosts=call("host.get_all_records"),
                      certificates=call("Certificate.get_all_records"),
                      ca_names=call("pool.certificate_list") if pre_1290 else None,
                      ca_commands="pre-1.290" if pre_1290 else "current")


@pytest.mark.lab
@pytest.mark.parametrize("xapi", ["current", "ch82"])
def test_same_facts_as_the_xe_inspection(tmp_path: Path, make_target: Callable[..., Target],
                                         xapi: str) -> None:
    """One pool, read through xe (the SSH path's script) and through XenAPI: every fact
    equal; trust by the same names, the fingerprint where xe reads the content."""
    layout = TargetLayout(tmp_path / "pool1")
    xe_state.create_pool(layout, hosts=3, xapi=xapi, wlb_url="wlb1.lab.test:8012",
                         wlb_username="wlbuser", wlb_password="pw", resolve={})
    xe_state.write_xe_wrapper(layout)
    make_pool_identity(layout, "pool-operator")
    install = "pool-certificate-install" if xapi == "ch82" else "pool-install-ca-certificate"
    for name in ("wlbplan-root-0123456789abcdef.pem", "other-ca.pem"):
        (tmp_path / name).write_bytes(build(name, key=make_key("ec", 256), ca=True).cert_pem)
        LocalRunner().run(shell_script(f'"$1" {install} filename="$2"', str(layout.xe),
                                       str(tmp_path / name)))
    coordinator = xe_state.coordinator(layout)
    target = make_target(xe=str(layout.xe), trust_dir=str(coordinator.stunnel_dir))
    raw = facts.parse(LocalRunner().run(shell_script(pool.script(target))).stdout)
    by_xe = pool.parse(raw, target)
    endpoint = xenapi_endpoint(layout, 0)
    dispatcher = xenapi_server.Dispatcher(
        endpoint, xenapi_server.host_certificate(endpoint.cert))
    by_api = parse(read_records(dispatcher, pre_1290=xapi == "ch82"), target)

    assert by_api.trusted
    assert [t.name for t in by_api.trusted] == [t.name for t in by_xe.trusted]
    for seen_by_api, seen_by_xe in zip(by_api.trusted, by_xe.trusted, strict=True):
        assert seen_by_api.pem is None
        assert seen_by_api.by_name is (xapi == "ch82")  # 1.249 has no CA records
        assert seen_by_xe.pem is not None
        wanted = None if xapi == "ch82" else certs.fingerprint(
            certs.parse_pem_bundle(seen_by_xe.pem.encode())[0])
        assert seen_by_api.fingerprint == wanted
    assert by_api.__dict__ | {"trusted": ()} == by_xe.__dict__ | {"trusted": ()}
    assert not [t for t in by_xe.trusted if t.by_name]


# --- hostile records ------------------------------------------------------------------

HOST = "OpaqueRef:host-1"
GOOD_FP = ":".join(["AB"] * 32)


def good() -> dict[str, Any]:
    return {
        "pools": {"OpaqueRef:p": {
            "uuid": "11111111-2222-3333-4444-555555555555", "master": HOST,
            "wlb_url": "wlb.example.com:8012", "wlb_username": "wlb", "wlb_enabled": True,
            "wlb_verify_cert": False, "other_config": {}}},
        "hosts": {HOST: {"uuid": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
                         "software_version": {"xapi": "25.33"}}},
        "certificates": {
            "OpaqueRef:c1": {"type": "ca", "name": "root.pem", "fingerprint": GOOD_FP,
                             "fingerprint_sha256": GOOD_FP.lower()},
            "OpaqueRef:c2": {"type": "host", "name": "", "fingerprint": "x"}},
    }


def test_a_good_record(target: Target) -> None:
    got = parse(ApiRecords(**good()), target)
    assert (got.xapi_version, got.coordinator, got.wlb_verify_cert) == (
        "25.33", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", False)
    assert [(t.name, t.fingerprint, t.pem) for t in got.trusted] == [("root.pem", GOOD_FP, None)]


@pytest.mark.parametrize(("where", "value", "said"), [
    (("pools",), {}, "one pool"),
    (("pools", "OpaqueRef:p", "master"), "OpaqueRef:elsewhere", "one of its hosts"),
    (("pools", "OpaqueRef:p", "wlb_verify_cert"), "true", "true or false"),
    (("pools", "OpaqueRef:p", "uuid"), "../../etc", "a UUID"),
    (("hosts", HOST, "software_version"), "25.33", "a map"),
    (("certificates", "OpaqueRef:c1", "name"), "../../x.pem", "not a safe certificate name"),
    (("certificates", "OpaqueRef:c1", "name"), 7, "a text"),
])
def test_refused_records(target: Target, where: tuple[str, ...], value: Any,
                         said: str) -> None:
    data = good()
    node = data
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    with pytest.raises(RemoteCommandError, match=re.escape(said)):
        parse(ApiRecords(**data), target)


def test_two_rows_of_one_name_that_disagree_are_unreadable(target: Target) -> None:
    data = good()
    data["certificates"]["OpaqueRef:c3"] = {"type": "ca", "name": "root.pem",
                                            "fingerprint": ":".join(["CD"] * 32)}
    (item,) = parse(ApiRecords(**data), target).trusted
    assert (item.name, item.fingerprint) == ("root.pem", None)


_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                  st.text(max_size=80), st.just(GOOD_FP), st.just("root.pem"), st.just("ca"))
_value = st.recursive(_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=12), inner, max_size=3)),
    max_leaves=8)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    return found


@PARSER
@given(data=st.data())
def test_hostile_records_are_refused_or_sound(target: Target, data: st.DataObject) -> None:
    """Any value anywhere in the records: wlbplan's error, or facts that hold their
    promises (UUIDs, safe names, canonical fingerprints, a coordinator among the hosts)."""
    records = good()
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(records)))
        node = records
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = data.draw(_value)
    try:
        got = parse(ApiRecords(**copy.deepcopy(records)), target)
    except RemoteCommandError as err:
        said = str(err)
        assert said.startswith(f"{target.name}: ")
        return
    assert got.coordinator in got.hosts
    assert isinstance(got.wlb_verify_cert, bool)
    for item in got.trusted:
        assert file_name_problem(item.name) is None
        assert item.pem is None
        assert item.fingerprint is None or CANONICAL.fullmatch(item.fingerprint)


@given(st.text(max_size=100))
def test_fingerprint_is_canonical_or_none(text: str) -> None:
    got = fingerprint(text)
    assert got is None or CANONICAL.fullmatch(got)


def test_fingerprint_forms() -> None:
    assert fingerprint(GOOD_FP.lower()) == GOOD_FP
    assert fingerprint("ab" * 32) == GOOD_FP
    assert fingerprint(GOOD_FP + ":AB") is None
    assert fingerprint(b"AB") is None


