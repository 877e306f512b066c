"""Every string a spec can hold, in one table: where it sits, and how a hostile value is
put there. The injection tests walk this table; ``schema_string_fields`` walks the JSON
Schema, and a test keeps the two equal, so a new string field fails until it is listed.

A field's ``kind`` says how a value is placed (``placements``):

- ``text``: as it is (host names, names, subject values, commands, enums ...);
- ``remote_path``: as it is, and as a folder inside an absolute path (``/srv/V/leaf``),
  since a path that does not start with ``/`` is refused before anything else is read;
- ``local_path``: as it is (relative to the spec's folder), and as a folder inside an
  absolute path to a file that exists;
- ``program``: as it is (a name looked up on PATH), and as a folder inside an absolute path;
- ``alt_name``: as it is, after ``DNS:`` and after ``IP:``;
- ``argv``: as one more argument of the signer's command (which keeps its placeholders);
- ``resolve_key`` / ``resolve_value``: as the name, or the address, of a resolve entry;
- ``report``: as it is; shown in audit reports (escaped), never part of a command;
- ``sent``: as it is; sent to a server as data (the ACME account's contact e-mail, in the
  JSON the ACME library signs), never part of a command or a path.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from wlbplan.spec import schema_text

Where = tuple[str, ...]
"""A field's place: mapping keys, ``[]`` for a list's items, ``{name}`` for a mapping's
keys and ``{value}`` for its values (``resolve``)."""


@dataclass(frozen=True)
class Field:
    where: Where
    kind: str = "text"

    @property
    def name(self) -> str:
        return ".".join(self.where)

    @property
    def in_target(self) -> bool:
        return self.where[0] == "targets"


TARGET = ("targets", "[]")
CERT = (*TARGET, "certificate")
REQUEST = (*CERT, "request")
SUBJECT = (*REQUEST, "subject")
CREDENTIALS = (*TARGET, "wlb", "credentials")
POOL = (*TARGET, "pool")
XENAPI = {"connector": "xenapi", "state_dir": None,
          "credentials": {"username_env": "XS_USER", "password_env": "XS_PASS"}}
ACME = (*CERT, "acme")
IGNORE = ("audit", "ignore", "[]")
LOGINS = ("username_env", "password_env", "xenserver_username_env", "xenserver_password_env")


def _ssh(prefix: Where) -> list[Field]:
    return [Field((*prefix, "user")), Field((*prefix, "host_key_policy")),
            Field((*prefix, "identity_file"), "local_path"),
            Field((*prefix, "known_hosts"), "local_path")]


FIELDS: tuple[Field, ...] = (
    *_ssh(("defaults", "ssh")),
    Field(("resolve", "{name}"), "resolve_key"),
    Field(("resolve", "{value}"), "resolve_value"),
    Field((*TARGET, "name")),
    *_ssh((*TARGET, "ssh")),
    Field((*TARGET, "pool", "coordinator")),
    Field((*TARGET, "pool", "xe"), "program"),
    Field((*TARGET, "pool", "getent"), "program"),
    Field((*TARGET, "pool", "connection")),
    Field((*TARGET, "pool", "ssh_host")),
    Field((*TARGET, "pool", "trust_dir"), "remote_path"),
    Field((*TARGET, "pool", "state_dir"), "remote_path"),
    Field((*TARGET, "pool", "connector")),
    Field((*TARGET, "pool", "url")),
    Field((*TARGET, "pool", "credentials", "username_env")),
    Field((*TARGET, "pool", "credentials", "password_env")),
    Field((*TARGET, "pool", "tls", "ca_file"), "local_path"),
    Field((*TARGET, "pool", "tls", "fingerprint_sha256")),
    Field((*TARGET, "wlb", "address")),
    Field((*TARGET, "wlb", "connection")),
    Field((*TARGET, "wlb", "ssh_host")),
    Field((*TARGET, "wlb", "paths", "cert"), "remote_path"),
    Field((*TARGET, "wlb", "paths", "key"), "remote_path"),
    Field((*TARGET, "wlb", "restart")),
    Field((*TARGET, "wlb", "stunnel_conf"), "remote_path"),
    *(Field((*CREDENTIALS, key)) for key in LOGINS),
    Field((*CERT, "source")),
    Field((*REQUEST, "common_name")),
    Field((*REQUEST, "alt_names", "[]"), "alt_name"),
    *(Field((*SUBJECT, key)) for key in ("C", "ST", "L", "O", "OU", "emailAddress")),
    Field((*REQUEST, "key", "type")),
    Field((*REQUEST, "csr_out"), "local_path"),
    Field((*CERT, "signed"), "local_path"),
    Field((*CERT, "intermediates", "[]"), "local_path"),
    Field((*CERT, "root"), "local_path"),
    Field((*CERT, "signer", "command", "[]"), "argv"),
    Field((*ACME, "directory")),
    Field((*ACME, "ca_file"), "local_path"),
    Field((*ACME, "root"), "local_path"),
    Field((*ACME, "account", "email"), "sent"),
    Field((*ACME, "account", "key_file"), "local_path"),
    Field((*ACME, "eab", "kid_env")),
    Field((*ACME, "eab", "hmac_env")),
    Field((*ACME, "challenge", "type")),
    Field((*ACME, "challenge", "set", "[]"), "argv"),
    Field((*ACME, "challenge", "clear", "[]"), "argv"),
    Field(("audit", "ignore", "[]", "rule")),
    Field(("audit", "ignore", "[]", "target")),
    Field(("audit", "ignore", "[]", "until")),
    Field(("audit", "ignore", "[]", "reason"), "report"),
)
BY_NAME = {field.name: field for field in FIELDS}

# Strings the schema allows that wlbplan never reads: nothing there can reach a command.
NOT_READ = {("{x-}",): "x- extension keys (a place for YAML anchors) are ignored"}


# ---- the schema's own list --------------------------------------------------------------

def schema_string_fields() -> set[Where]:
    """Every place the JSON Schema allows a string (its ``$ref``s followed)."""
    schema = json.loads(schema_text())
    found: set[Where] = set()
    _walk(schema, schema, (), found)
    return found


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _is_string(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    return kind == "string" or (isinstance(kind, list) and "string" in kind) or \
        ("enum" in node and all(isinstance(v, str) for v in node["enum"]))


def _walk(node: dict[str, Any], root: dict[str, Any], where: Where, found: set[Where]) -> None:
    node = _resolve(node, root)
    if _is_string(node):
        found.add(where)
    for key, child in node.get("properties", {}).items():
        _walk(child, root, (*where, key), found)
    if isinstance(node.get("items"), dict):
        _walk(node["items"], root, (*where, "[]"), found)
    if isinstance(node.get("propertyNames"), dict):
        _walk(node["propertyNames"], root, (*where, "{name}"), found)
    if isinstance(node.get("additionalProperties"), dict):
        _walk(node["additionalProperties"], root, (*where, "{value}"), found)
    if node.get("patternProperties"):
        found.add((*where, "{x-}"))


# ---- putting values in a spec ---------------------------------------------------------------

def placements(field: Field, value: str) -> Iterator[tuple[str, str]]:
    """(label, text) for each way ``value`` goes into ``field`` (see the module's doc);
    ``{base}`` in a text stands for the folder of the spec's files."""
    yield "as-is", value
    if field.kind in ("remote_path", "program"):
        yield "in-path", f"/srv/wlbplan/{value}/leaf"
    elif field.kind == "local_path":
        yield "in-path", f"{{base}}/{value}/leaf.pem"
    elif field.kind == "alt_name":
        yield "dns", f"DNS:{value}"
        yield "ip", f"IP:{value}"


SIGNER = ("sign-it", "{csr}", "{cert}")
BASE_FILES = ("leaf.pem", "root.pem")
"""Files every spec built here may name (made in ``base`` by the caller)."""


def _address(index: int) -> str:
    return f"wlb{index}.example.test"


def _target(index: int) -> dict[str, Any]:
    # Hosts, lock folders and files of their own: no two targets share a pool or an appliance.
    return {"name": f"t{index}",
            "pool": {"coordinator": f"xs{index}.example.test",
                     "state_dir": f"/var/lib/wlbplan/t{index}"},
            "wlb": {"address": _address(index),
                    "paths": {"cert": f"/etc/ssl/t{index}/server.pem"}},
            "certificate": {"source": "self-signed"}}


def _context(base: Path, index: int) -> list[tuple[Where, Where, dict[str, Any]]]:
    """(fields under, the part to fill in, with what): what a field needs beside it to be
    read at all."""
    request = {"source": "ca-signed", "request": {"common_name": _address(index)}}
    signed = {**request, "signed": f"{base}/leaf.pem", "root": f"{base}/root.pem"}
    return [
        (IGNORE, IGNORE, {"rule": "WLB-CERT-EXPIRING", "reason": "accepted"}),
        (REQUEST, CERT, request),
        *(((*CERT, key), CERT, signed) for key in ("signed", "intermediates", "root")),
        ((*CERT, "signer"), CERT, {**signed, "signer": {"command": list(SIGNER)}}),
        (CREDENTIALS, CREDENTIALS, {key: key.upper() for key in LOGINS}),
        # XenAPI's keys are read with connector: xenapi only, which has no lock folder.
        *(((*POOL, key), POOL, XENAPI) for key in ("url", "credentials", "tls")),
        (ACME, CERT, {"source": "acme", "request": {"common_name": _address(index)},
                      "acme": {"directory": "https://ca.example.test/dir",
                               "root": f"{base}/root.pem",
                               "challenge": {"type": "dns-01", "set": ["hook", "{value}"],
                                             "clear": ["hook"]}}}),
        ((*ACME, "eab"), (*ACME, "eab"), {"kid_env": "ACME_KID", "hmac_env": "ACME_HMAC"}),
    ]


def _node(data: dict[str, Any], where: Where) -> Any:
    """The container holding the last part of ``where``, made on the way when missing."""
    node: Any = data
    for part, nxt in itertools.pairwise(where):
        if part == "[]":
            if not node:
                node.append({})
            node = node[0]
        elif part not in ("{name}", "{value}"):
            node = node.setdefault(part, [] if nxt == "[]" else {})
    return node


def _fill(data: dict[str, Any], where: Where, base: Path, index: int) -> None:
    """What the field at ``where`` needs beside it (a fresh target's own part replaced,
    a part the spec's other fields share only where nothing is set yet)."""
    for under, part, needs in _context(base, index):
        if where[: len(under)] == under:
            node = _node(data, (*part, ""))
            for key, value in needs.items():
                if value is None:
                    node.pop(key, None)  # a key the field's context must not have
                elif part[0] == "targets" or key not in node:
                    node[key] = copy.deepcopy(value)


RESOLVED = "resolved.example.test"


def _put(data: dict[str, Any], where: Where, text: str) -> Place:
    """Set ``where`` (in ``data``, whose first target is the field's) to ``text``; returns
    the concrete place, as diagnostics name it."""
    *parents, last = where
    node = _node(data, (*parents, last))
    concrete: list[str | int] = [0 if part == "[]" else part for part in parents]
    if last == "[]":
        node.append(text)
        return (*concrete, len(node) - 1)
    if last == "{name}":
        node[text] = "127.0.0.1"
        return (*concrete, text)
    if last == "{value}":
        node[RESOLVED] = text
        return (*concrete, RESOLVED)
    node[last] = text
    return (*concrete, last)


Entry = tuple[Field, str]


Place = tuple[str | int, ...]


def spec_of(entries: Sequence[Entry], base: Path) -> tuple[dict[str, Any], list[Place]]:
    """One valid spec holding every (field, text) of ``entries``: each field of a target in
    a target of its own, the others (defaults, resolve) on the spec, each at most once.
    Returns the spec and, per entry, the place diagnostics name it by."""
    data: dict[str, Any] = {"version": 1, "targets": []}
    places: list[Place] = []
    for field, text in entries:
        if not field.in_target:
            _fill(data, field.where, base, 0)
            places.append(_put(data, field.where, text))
            continue
        index = len(data["targets"])
        target = _target(index)
        wrapper: dict[str, Any] = {"targets": [target]}
        _fill(wrapper, field.where, base, index)
        place = _put(wrapper, field.where, text)
        data["targets"].append(target)
        places.append(("targets", index, *place[2:]))
    if not data["targets"]:
        data["targets"].append(_target(0))
    return data, places


def dump(data: dict[str, Any]) -> str:
    """The spec as YAML that reads back exactly: JSON (YAML's flow style, one key a line),
    every unprintable character escaped (a raw U+0085 or U+2028 would be read as a line
    break and folded). Much faster than yaml.safe_dump, which the sweep would wait on."""
    if _long_key(data):
        # YAML reads a key written in flow style as at most 1024 characters.
        return yaml.safe_dump(data, allow_unicode=False, sort_keys=False, width=1 << 16)
    text = json.dumps(data, indent=1, ensure_ascii=False)
    return "".join(c if c.isprintable() or c == "\n" else _escape(c) for c in text) + "\n"


def _long_key(node: Any) -> bool:
    if isinstance(node, dict):
        return any(len(k) > 1000 or _long_key(v) for k, v in node.items())
    return isinstance(node, list) and any(_long_key(item) for item in node)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
