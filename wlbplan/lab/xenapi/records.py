"""The pool state as XenAPI objects: references and records (field names as the
datamodel's, ``wlb_url`` where xe says ``wlb-url``)."""

from __future__ import annotations

import uuid
import xmlrpc.client
from typing import TYPE_CHECKING, Any

from wlbplan.lab import xe_state
from wlbplan.lab.xe.errors import server_error

if TYPE_CHECKING:
    from wlbplan.lab.xe_state import State

NULL = "OpaqueRef:NULL"
EPOCH = "19700101T00:00:00Z"
_NAMESPACE = uuid.UUID("6f1d1a52-3b1e-4c47-9a55-7a1e0b2f7c11")

Record = dict[str, Any]


def ref(cls: str, object_uuid: str) -> str:
    """An object's reference: stable for the lab's life, never its uuid (as in xapi,
    where both are random and distinct)."""
    return f"OpaqueRef:{uuid.uuid5(_NAMESPACE, f'{cls}:{object_uuid}')}"


def date(text: str) -> xmlrpc.client.DateTime:
    """xapi's DateTime on the wire: ``<dateTime.iso8601>YYYYMMDDTHH:MM:SSZ``."""
    return xmlrpc.client.DateTime(text)


def pool_ref(state: State) -> str:
    return ref("pool", state["pool"]["uuid"])


def host_ref(host: State) -> str:
    return ref("host", host["uuid"])


def pool_record(state: State) -> Record:
    pool = state["pool"]
    return {
        "uuid": pool["uuid"],
        "name_label": pool["name-label"],
        "name_description": pool["name-description"],
        "master": host_ref(state["hosts"][0]),
        "default_SR": NULL,
        "other_config": dict(pool.get("other-config", {})),
        "wlb_url": pool["wlb-url"],
        "wlb_username": pool["wlb-username"],
        "wlb_enabled": bool(pool["wlb-enabled"]),
        "wlb_verify_cert": bool(pool["wlb-verify-cert"]),
        "tls_verification_enabled": bool(pool["tls-verification-enabled"]),
    }


def host_record(host: State) -> Record:
    version = host["software-version"]
    return {
        "uuid": host["uuid"],
        "name_label": host["name-label"],
        "name_description": host["name-description"],
        "enabled": bool(host["enabled"]),
        "hostname": host["hostname"],
        "address": "127.0.0.1",
        "software_version": dict(version),
        "API_version_major": "2",
        "API_version_minor": "21" if "xapi_build" in version else "16",
        "other_config": {},
    }


def certificate_records(state: State, host_certificate: Record | None) -> dict[str, Record]:
    """Certificate.get_all_records: one row per CA certificate xapi recorded (since 1.290),
    and the coordinator's own server certificate (type ``host``). Before 1.294 rows have no
    ``name`` or ``type`` (datamodel_certificate.ml); before 1.290 CA certificates have no
    row at all, only files."""
    rows: dict[str, Record] = {}
    named = xe_state.has(state, (1, 294))
    if host_certificate is not None:
        row = {**host_certificate, "host": host_ref(state["hosts"][0])}
        if named:
            row |= {"name": "", "type": "host"}
        rows[ref("Certificate", row["uuid"])] = _shaped(row, state)
    if xe_state.has(state, xe_state.CA_COMMANDS_SINCE):
        kept = state.get("ca_records", {})
        for name in state["ca_certificates"]:
            stored = kept.get(name) or {"uuid": str(uuid.uuid5(_NAMESPACE, name))}
            row = {"uuid": stored["uuid"], "host": NULL, "name": name, "type": "ca",
                   "not_before": stored.get("not_before", EPOCH),
                   "not_after": stored.get("not_after", EPOCH),
                   "fingerprint_sha256": stored.get("fingerprint_sha256", ""),
                   "fingerprint_sha1": stored.get("fingerprint_sha1", "")}
            rows[ref("Certificate", row["uuid"])] = _shaped(row, state)
    return rows


def _shaped(row: Record, state: State) -> Record:
    """The fields this xapi has: ``fingerprint`` (SHA-256) always; the sha256/sha1 pair
    and ``purpose`` only on the lab's newer versions (inferred: they came with the
    deprecation of ``fingerprint`` in 24.19.0)."""
    shaped = {k: v for k, v in row.items() if k not in ("fingerprint_sha256", "fingerprint_sha1")}
    shaped["fingerprint"] = row["fingerprint_sha256"]
    shaped["not_before"] = date(row["not_before"])
    shaped["not_after"] = date(row["not_after"])
    if xe_state.has(state, (24, 19)):
        shaped |= {"fingerprint_sha256": row["fingerprint_sha256"],
                   "fingerprint_sha1": row["fingerprint_sha1"], "purpose": []}
    return shaped


def find(cls: str, objects: list[State], handle: Any) -> State:
    """The object ``handle`` refers to; HANDLE_INVALID [class; handle] otherwise
    (exnHelper.ml: a missing row)."""
    for obj in objects:
        if ref(cls, obj["uuid"]) == handle:
            return obj
    raise server_error("HANDLE_INVALID", cls, str(handle))
