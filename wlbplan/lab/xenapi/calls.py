"""The XenAPI calls the lab serves: their parameters, versions, roles and effects.

Effects are the xe emulator's own functions (``wlbplan.lab.xe``) over the same state, so a
change made through one interface is what the other sees. Sources: datamodel_pool.ml
(calls, parameters, roles, lifecycles), xapi_pool.ml (what each does),
gen_server.ml/server_helpers.ml (the dispatcher's checks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wlbplan.lab import xe_state
from wlbplan.lab.xe import trust, wlb
from wlbplan.lab.xe.cli import Context, Printer
from wlbplan.lab.xe.errors import server_error
from wlbplan.lab.xenapi import rbac, records

if TYPE_CHECKING:
    from pathlib import Path

    from wlbplan.lab.xe_state import State


@dataclass(frozen=True)
class Caller:
    """One call's context: the pool, who calls, the coordinator's server certificate."""

    state_path: Path
    role: str | None  # None: the local superuser
    host_certificate: records.Record | None = None

    @property
    def ctx(self) -> Context:
        """What the xe emulator's functions take (no command line, no printing)."""
        return Context({}, self.state_path, Printer(minimal=False))

    def state(self) -> State:
        return xe_state.load(self.state_path)


Handler = Callable[..., Any]


@dataclass(frozen=True)
class Signature:
    """Parameters after the session, as ``(name, type)``; the trailing ``defaults`` may be
    left out (gen_server.ml: `default_args`, and then extra arguments are ignored)."""

    params: tuple[tuple[str, str], ...]
    defaults: tuple[Any, ...] = ()
    since: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class Call:
    run: Handler
    signatures: tuple[Signature, ...]  # by xapi version, oldest first
    roles: tuple[str, ...] = rbac.READ_ONLY
    since: tuple[int, int] | None = None
    until: tuple[int, int] | None = None  # the first version without it

    def offered(self, state: State) -> bool:
        version = xe_state.xapi_version(state)
        return (self.since is None or version >= self.since) and (
            self.until is None or version < self.until)

    def signature(self, state: State) -> Signature:
        version = xe_state.xapi_version(state)
        return [s for s in self.signatures if version >= s.since][-1]


def _sig(*params: tuple[str, str], defaults: tuple[Any, ...] = ()) -> tuple[Signature, ...]:
    return (Signature(params, defaults),)


# --- effects ---------------------------------------------------------------------------


def _pool_of(caller: Caller, handle: str) -> State:
    state = caller.state()
    records.find("pool", [state["pool"]], handle)
    return state


def _set_pool_field(name: str) -> Handler:
    """A RW field's setter: the DB write, under the pool's lock."""
    def run(caller: Caller, handle: str, value: Any) -> str:
        with xe_state.locked(caller.state_path) as state:
            records.find("pool", [state["pool"]], handle)
            state["pool"][name] = value
            xe_state.save(caller.state_path, state)
        return ""

    return run


def _add_to_other_config(caller: Caller, handle: str, key: str, value: str) -> str:
    """db_cache_types.ml add_to_map: an empty key fails; a key already there with another
    value is MAP_DUPLICATE_KEY [table; field; ref; key] (db_cache_impl.ml): the
    test-and-set wlbplan's lock relies on."""
    with xe_state.locked(caller.state_path) as state:
        records.find("pool", [state["pool"]], handle)
        config = state["pool"].setdefault("other-config", {})
        if not key:
            raise server_error("INTERNAL_ERROR", "Db_exn.Empty_key_in_map")
        if key in config and config[key] != value:
            raise server_error("MAP_DUPLICATE_KEY", "pool", "other_config", handle, key)
        config[key] = value
        xe_state.save(caller.state_path, state)
    return ""


def _remove_from_other_config(caller: Caller, handle: str, key: str) -> str:
    """db_cache_types.ml remove_from_map: a missing key is no error."""
    with xe_state.locked(caller.state_path) as state:
        records.find("pool", [state["pool"]], handle)
        state["pool"].setdefault("other-config", {}).pop(key, None)
        xe_state.save(caller.state_path, state)
    return ""


def _install(caller: Caller, name: str, cert: str) -> str:
    trust.install_named(caller.ctx, trust.CA, name, cert.encode("utf-8", "surrogateescape"))
    return ""


def _uninstall(caller: Caller, name: str, force: bool = False) -> str:
    trust.uninstall_named(caller.ctx, trust.CA, name, force=force)
    return ""


def _certificate_list(caller: Caller) -> list[str]:
    return trust.installed_names(caller.ctx, trust.CA)


def _sync(caller: Caller) -> str:
    trust.sync(caller.ctx)
    return ""


def _initialize_wlb(caller: Caller, url: str, username: str, password: str,
                    _xs_username: str, _xs_password: str) -> str:
    wlb.initialize(caller.ctx, url, username, password)
    return ""


def _deconfigure_wlb(caller: Caller) -> str:
    wlb.deconfigure_wlb(caller.ctx)
    return ""


def _retrieve_wlb_configuration(caller: Caller) -> dict[str, str]:
    return dict(wlb.retrieve(caller.ctx))


def _enable_tls_verification(caller: Caller) -> str:
    wlb.enable_tls_verification(caller.ctx)
    return ""


def _pool_all(caller: Caller) -> list[str]:
    return [records.pool_ref(caller.state())]


def _pool_all_records(caller: Caller) -> dict[str, records.Record]:
    state = caller.state()
    return {records.pool_ref(state): records.pool_record(state)}


def _pool_record(caller: Caller, handle: str) -> records.Record:
    return records.pool_record(_pool_of(caller, handle))


def _pool_field(name: str) -> Handler:
    def run(caller: Caller, handle: str) -> Any:
        return records.pool_record(_pool_of(caller, handle))[name]

    return run


def _host_all(caller: Caller) -> list[str]:
    return [records.host_ref(h) for h in caller.state()["hosts"]]


def _host_all_records(caller: Caller) -> dict[str, records.Record]:
    return {records.host_ref(h): records.host_record(h) for h in caller.state()["hosts"]}


def _host_record(caller: Caller, handle: str) -> records.Record:
    return records.host_record(records.find("host", caller.state()["hosts"], handle))


def _certificate_all_records(caller: Caller) -> dict[str, records.Record]:
    return records.certificate_records(caller.state(), caller.host_certificate)


def _certificate_all(caller: Caller) -> list[str]:
    return list(_certificate_all_records(caller))


# --- the table -------------------------------------------------------------------------

_CA_CALLS = xe_state.CA_COMMANDS_SINCE  # 1.290.0
_POOL = ("self", "ref")

CALLS: dict[str, Call] = {
    "pool.get_all": Call(_pool_all, _sig()),
    "pool.get_all_records": Call(_pool_all_records, _sig()),
    "pool.get_record": Call(_pool_record, _sig(_POOL)),
    "pool.get_master": Call(_pool_field("master"), _sig(_POOL)),
    "pool.get_wlb_url": Call(_pool_field("wlb_url"), _sig(_POOL)),
    "pool.get_wlb_username": Call(_pool_field("wlb_username"), _sig(_POOL)),
    "pool.get_wlb_enabled": Call(_pool_field("wlb_enabled"), _sig(_POOL)),
    "pool.get_wlb_verify_cert": Call(_pool_field("wlb_verify_cert"), _sig(_POOL)),
    "pool.get_other_config": Call(_pool_field("other_config"), _sig(_POOL)),
    # Field setters: the pool's writer roles default to its messages' (_R_POOL_OP);
    # wlb_enabled names _R_POOL_OP ++ _R_CLIENT_CERT.
    "pool.set_wlb_verify_cert": Call(_set_pool_field("wlb-verify-cert"),
                                     _sig(_POOL, ("value", "bool")), rbac.POOL_OP),
    "pool.set_wlb_enabled": Call(_set_pool_field("wlb-enabled"),
                                 _sig(_POOL, ("value", "bool")), rbac.POOL_OP_OR_CLIENT_CERT),
    "pool.add_to_other_config": Call(_add_to_other_config,
                                     _sig(_POOL, ("key", "string"), ("value", "string")),
                                     rbac.POOL_OP),
    "pool.remove_from_other_config": Call(_remove_from_other_config,
                                          _sig(_POOL, ("key", "string")), rbac.POOL_OP),
    "pool.install_ca_certificate": Call(
        _install, _sig(("name", "string"), ("cert", "string")), rbac.POOL_OP_OR_CLIENT_CERT,
        since=_CA_CALLS),
    "pool.uninstall_ca_certificate": Call(
        _uninstall,
        (Signature((("name", "string"),)),
         Signature((("name", "string"), ("force", "bool")), defaults=(False,),
                   since=(24, 35))),
        rbac.POOL_OP_OR_CLIENT_CERT, since=_CA_CALLS),
    "pool.certificate_install": Call(_install, _sig(("name", "string"), ("cert", "string")),
                                     rbac.POOL_OP),
    "pool.certificate_uninstall": Call(_uninstall, _sig(("name", "string")), rbac.POOL_OP),
    "pool.certificate_list": Call(_certificate_list, _sig(), rbac.POOL_OP),
    "pool.certificate_sync": Call(_sync, _sig(), rbac.POOL_OP),
    "pool.initialize_wlb": Call(
        _initialize_wlb,
        _sig(("wlb_url", "string"), ("wlb_username", "string"), ("wlb_password", "string"),
             ("xenserver_username", "string"), ("xenserver_password", "string")),
        rbac.POOL_OP),
    "pool.deconfigure_wlb": Call(_deconfigure_wlb, _sig(), rbac.POOL_OP),
    "pool.retrieve_wlb_configuration": Call(_retrieve_wlb_configuration, _sig()),
    "pool.enable_tls_verification": Call(_enable_tls_verification, _sig(), rbac.POOL_ADMIN,
                                         since=_CA_CALLS),
    "host.get_all": Call(_host_all, _sig()),
    "host.get_all_records": Call(_host_all_records, _sig()),
    "host.get_record": Call(_host_record, _sig(("self", "ref"))),
    "Certificate.get_all": Call(_certificate_all, _sig()),
    "Certificate.get_all_records": Call(_certificate_all_records, _sig()),
}

_TYPES: dict[str, type | tuple[type, ...]] = {"string": str, "ref": str, "bool": bool,
                                              "map": dict}


def arguments(name: str, call: Call, state: State, given: list[Any]) -> list[Any]:
    """gen_server.ml's pattern match: exactly the parameters, or at least those without
    a default (the rest filled in, extra ones ignored); else
    MESSAGE_PARAMETER_COUNT_MISMATCH [method; expected; received], counts without the
    session. Then each value's type (an unmarshalling failure: INTERNAL_ERROR)."""
    signature = call.signature(state)
    required = len(signature.params) - len(signature.defaults)
    if len(given) < required or (not signature.defaults and len(given) != required):
        raise server_error("MESSAGE_PARAMETER_COUNT_MISMATCH", name, str(required),
                           str(len(given)))
    values = list(given[: len(signature.params)])
    values += list(signature.defaults[len(values) - required:])
    for (param, kind), value in zip(signature.params, values, strict=True):
        if type(value) is not _TYPES[kind]:
            # The emulator's words; xapi reports the Rpc runtime error's text.
            raise server_error("INTERNAL_ERROR",
                               f"parameter {param} of {name} must be of type {kind}")
    return values
