"""The emulated pool's state: its xapi database (``state.json``) and each host's trust store.

Stdlib only at import time: ``bin/xe`` imports this on every call.

``state.json`` (owned here, read and written by :mod:`wlbplan.lab.xe`)::

    {
      "format": 1,
      "xapi": "current" | "legacy" | "ch82", # the lab mode; the version itself is per host
      "pool": {"uuid", "name-label", "name-description", "master", "default-SR",
               "wlb-url", "wlb-username", "wlb-enabled", "wlb-verify-cert",
               "tls-verification-enabled", "other-config": {...}},  # xe's field names
      "wlb_password": "...",                 # the pool's WLB secret; never printed
      "hosts": [                             # first = coordinator
        {"uuid", "name-label", "name-description", "enabled", "hostname",
         "software-version": {"xapi": "25.33.1", ...}, "dir": "xs1-01"}  # pool/hosts/<dir>
      ],
      "ca_certificates": ["root.pem", ...],  # Certificate DB records (type=ca) by name
      "ca_records": {"root.pem": {"uuid", "not_before", "not_after", "fingerprint_sha256",
                                  "fingerprint_sha1"}},  # what each record holds
      "resolve": {"wlb1.lab.test": "127.0.0.1"},   # the lab's name service
      "wlb_accounts": "/abs/appliance/etc/wlb/accounts.json"
    }

CRLs have no DB records in xapi, so they live only as files under each host's
``etc/stunnel/crls``. ``names.hosts`` beside it is the ``resolve`` map again, as
``ADDRESS NAME`` lines, rewritten with every change of the map: what the coordinator's
``bin/getent`` reads.
"""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager

# Not typing's: importing typing costs every xe call ~10 ms. mypy reads it as true.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path
    from typing import Any

    from wlbplan.lab.layout import HostLayout, TargetLayout

FORMAT = 1
# What `software-version` says as `xapi` in each lab mode. The 1.249 line (Citrix
# Hypervisor 8.2) says a hard-coded `1.20` (util/xapi_version.ml) and has no `xapi_build`
# key (make_software_version, since v22.9.0): `1.20` compares below every threshold
# below, as 1.249 itself does, so the emulator judges every version by what it reports.
XAPI_VERSIONS = {"current": "25.33.1", "legacy": "24.19.2", "ch82": "1.20"}
# xapi v24.40.0 (CA-403767) switched the WLB stunnel client from verifyPeer to verifyChain.
VERIFY_CHAIN_SINCE = (24, 40)
# xapi 1.290.0: pool-install-ca-certificate / pool-uninstall-ca-certificate (and
# pool-enable-tls-verification), with a Certificate DB record per CA that
# pool-certificate-list reads; before, only pool-certificate-install / -uninstall over
# the folder (1.249-lcm cli_frontend.ml, certificates.ml).
CA_COMMANDS_SINCE = (1, 290)
# xapi v1.304.0: an installed CA certificate is checked (one PEM certificate, in its dates).
CONTENT_CHECK_SINCE = (1, 304)
_PRODUCTS = {
    "8": {"product_version": "8.4.0", "product_version_text": "8",
          "product_brand": "XenServer", "platform_version": "3.4.0", "xen": "4.17.5"},
    "8.2": {"product_version": "8.2.1", "product_version_text": "8.2",
            "product_brand": "Citrix Hypervisor", "platform_version": "3.2.1",
            "xen": "4.13.5"},
}
NOT_IN_DATABASE = "<not in database>"
NAMES_FILE = "names.hosts"
# `getent hosts [--] NAME…` as glibc's answers it (a line per known name, exit 0; exit 2
# when none is known; exit 1 for what it does not serve), over the pool's name map only:
# an IP literal is its own answer, no name is looked up anywhere else. Shell and awk, not
# Python: it runs on every inspection of the pool.
_GETENT = """#!/bin/sh
# wlbplan lab: getent hosts on the coordinator of pool {pool}; names: {names}
if [ "$1" != hosts ]; then echo "lab getent: only 'getent hosts [--] NAME...'" >&2; exit 1; fi
shift; if [ "$1" = -- ]; then shift; fi
if [ $# = 0 ]; then echo "lab getent: no name given" >&2; exit 1; fi
rc=2
for name do
  case $name in
    *:*) ;;                # an IPv6 literal: its own answer
    *[!0-9.]*)             # a name: the map's address, or nothing
      key=$(printf '%s' "${{name%.}}" | tr 'A-Z' 'a-z')
      K=$key N=$name awk '$2 == ENVIRON["K"] {{ printf "%-15s %s\\n", $1, ENVIRON["N"]; f = 1 }}
        END {{ exit !f }}' {names} && rc=0
      continue;;
  esac
  printf '%-15s %s\\n' "$name" "$name"; rc=0
done
exit $rc
"""

if TYPE_CHECKING:
    State = dict[str, Any]


# --- reading and writing -------------------------------------------------------------


def load(path: Path) -> State:
    state: State = json.loads(path.read_text())
    return state


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Temp file + rename, created with ``mode`` so no reader sees a half file or loose bits."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        os.fchmod(handle.fileno(), mode)  # the umask may have narrowed it
    os.replace(tmp, path)


def save(path: Path, state: State) -> None:
    # 0600: the state holds the pool's WLB password.
    write_atomic(path, json.dumps(state, indent=2).encode() + b"\n", mode=0o600)


def save_names(path: Path, state: State) -> None:
    """The name map again, as the lines the coordinator's getent reads: `ADDRESS NAME`,
    names lower-case. Written by what changes the map (create_pool, set_resolve), never
    by xe: an apply writes nothing on the coordinator but what xapi would."""
    names = "".join(f"{address} {name.lower()}\n" for name, address in state["resolve"].items())
    write_atomic(path.with_name(NAMES_FILE), names.encode(), mode=0o644)


@contextmanager
def locked(path: Path) -> Iterator[State]:
    """Hold the pool's lock for a read-modify-write; the caller saves what it changed.

    The lock is a sibling file because ``state.json`` itself is replaced by rename.
    """
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield load(path)


# --- the hosts' trust stores ----------------------------------------------------------


def host_layout(layout: TargetLayout, host: State) -> HostLayout:
    """Where the trust store of ``host`` (a record of ``state["hosts"]``) lives."""
    return layout.host(host["dir"])


def xapi_version(state: State) -> tuple[int, int]:
    """The coordinator's xapi version as (major, minor): what decides its behaviour."""
    major, minor = state["hosts"][0]["software-version"]["xapi"].split(".")[:2]
    return int(major), int(minor)


def has(state: State, since: tuple[int, int]) -> bool:
    """Does the coordinator's xapi have what arrived in version ``since``?"""
    return xapi_version(state) >= since


def coordinator(layout: TargetLayout) -> HostLayout:
    """The coordinator's fake dom0 root: its ``etc/stunnel`` is the pool's trust store."""
    return host_layout(layout, load(layout.pool_state)["hosts"][0])


def layout_of(state_path: Path) -> TargetLayout:
    """The target whose pool state lives at ``state_path`` (``<root>/pool/state.json``)."""
    # Imported here: layout needs dataclasses (~10 ms), which read-only xe calls never pay.
    from wlbplan.lab.layout import TargetLayout

    return TargetLayout(state_path.parent.parent)


def regular_files(directory: Path) -> list[str]:
    """Names of the regular files in ``directory`` (xapi's ``local_list``), sorted."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    return sorted(e.name for e in entries if e.is_file(follow_symlinks=False))


def folder_names(directory: Path) -> list[str]:
    """What xapi lists of a trust folder: its regular files (never the emulator's own
    ``.NAME.PID.tmp`` files of a write in progress)."""
    return [n for n in regular_files(directory) if not n.startswith(".")]


def ca_names(layout: TargetLayout, state: State) -> list[str]:
    """The CA certificates ``pool-certificate-list`` names: the Certificate DB's records,
    or (before xapi 1.290) the coordinator's folder."""
    if has(state, CA_COMMANDS_SINCE):
        return sorted(state["ca_certificates"])
    return folder_names(host_layout(layout, state["hosts"][0]).certs_dir)


def bundle_order(names: list[str]) -> list[str]:
    """update-ca-bundle.sh's order: ``*.new.pem`` first, then the other ``*.pem``, each sorted."""
    pems = sorted(n for n in names if n.endswith(".pem"))
    return [n for n in pems if n.endswith(".new.pem")] + [
        n for n in pems if not n.endswith(".new.pem")
    ]


def rebuild_bundle(host: HostLayout) -> None:
    """Like update-ca-bundle.sh: ``cat cert; echo ""`` for each; no certificate, no bundle."""
    names = bundle_order(regular_files(host.certs_dir))
    if not names:
        host.bundle.unlink(missing_ok=True)
        return
    parts = [(host.certs_dir / name).read_bytes() + b"\n" for name in names]
    write_atomic(host.bundle, b"".join(parts), mode=0o644)


def make_trust_dirs(host: HostLayout) -> None:
    host.certs_dir.mkdir(parents=True, exist_ok=True)
    host.certs_dir.chmod(0o700)  # xapi's mkdir_cert_path
    host.crls_dir.mkdir(parents=True, exist_ok=True)


# --- creating a pool ------------------------------------------------------------------


def _target_index(layout: TargetLayout) -> int:
    """``pool2`` → 2: lab hosts are named after their target's number (layout.host_name)."""
    digits = "".join(ch for ch in layout.name if ch.isdigit())
    return int(digits) if digits else 1


def _software_version(xapi: str, hostname: str) -> dict[str, str]:
    """A host's software-version map in lab mode ``xapi``."""
    version = XAPI_VERSIONS[xapi]
    product = _PRODUCTS["8.2" if xapi == "ch82" else "8"]
    found = {
        "product_version": product["product_version"],
        "product_version_text": product["product_version_text"],
        "product_brand": product["product_brand"],
        "platform_name": "XCP",
        "platform_version": product["platform_version"],
        "build_number": "lab",
        "hostname": hostname,
        "xapi": version,
        "xapi_build": version,
        "xen": product["xen"],
        "network_backend": "openvswitch",
    }
    if xapi == "ch82":
        del found["xapi_build"]
    return found


def _host(layout: TargetLayout, index: int, number: int, xapi: str) -> State:
    import uuid

    from wlbplan.lab.layout import host_name

    hostname = host_name(index, number)
    label = hostname.split(".", 1)[0]
    return {
        "uuid": str(uuid.uuid4()),
        "name-label": label,
        "name-description": "Default install",
        "enabled": True,
        "hostname": hostname,
        "software-version": _software_version(xapi, label),
        "dir": label,
    }


def create_pool(
    layout: TargetLayout,
    *,
    hosts: int,
    xapi: str,
    wlb_url: str,
    wlb_username: str,
    wlb_password: str,
    resolve: dict[str, str],
) -> None:
    """A fresh pool of ``hosts`` hosts (the first is the coordinator), empty trust stores."""
    import uuid

    if xapi not in XAPI_VERSIONS:
        raise ValueError(f"xapi must be one of {', '.join(XAPI_VERSIONS)}, not {xapi!r}")
    if hosts < 1:
        raise ValueError("a pool needs at least one host")
    index = _target_index(layout)
    members = [_host(layout, index, n, xapi) for n in range(1, hosts + 1)]
    for member in members:
        make_trust_dirs(layout.host(member["dir"]))
    state: State = {
        "format": FORMAT,
        "xapi": xapi,
        "pool": {
            "uuid": str(uuid.uuid4()),
            "name-label": layout.name,
            "name-description": "",
            "master": members[0]["uuid"],
            "default-SR": NOT_IN_DATABASE,
            "wlb-url": wlb_url,
            "wlb-username": wlb_username if wlb_url else "",
            "wlb-enabled": bool(wlb_url),
            "wlb-verify-cert": False,
            "tls-verification-enabled": False,
            "other-config": {},
        },
        "wlb_password": wlb_password if wlb_url else "",
        "hosts": members,
        "ca_certificates": [],
        "ca_records": {},
        "resolve": dict(resolve),
        "wlb_accounts": str(layout.wlb_accounts.resolve()),
    }
    layout.pool_dir.mkdir(parents=True, exist_ok=True)
    save(layout.pool_state, state)
    save_names(layout.pool_state, state)


def write_xe_wrapper(layout: TargetLayout) -> None:
    """``bin/xe`` and ``bin/getent``: this interpreter with ``-S`` (fast start), running the
    emulator on this pool, and the coordinator's resolver over the pool's name map."""
    from wlbplan.lab.pyscript import program  # importlib.util: not for every xe call

    state = str(layout.pool_state.resolve())
    script = program(f"the emulated xe CLI of pool {layout.name!r} (state: {state}).",
                     "wlbplan.lab.xe.main", "main", f"sys.argv[1:], Path({state!r})",
                     layout.bin_dir / ".pycache", needs=("wlbplan", "cryptography"))
    import shlex

    names = str(layout.pool_state.resolve().with_name(NAMES_FILE))
    resolver = _GETENT.format(pool=shlex.quote(layout.name), names=shlex.quote(names))
    layout.bin_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(layout.xe, script, mode=0o755)
    write_atomic(layout.getent, resolver.encode(), mode=0o755)


# --- what the lab's other commands need ------------------------------------------------


def summary(layout: TargetLayout) -> str:
    """One line for ``wlbplan lab status`` (never the password)."""
    state = load(layout.pool_state)
    pool = state["pool"]
    coordinator = state["hosts"][0]
    flag = "true" if pool["wlb-verify-cert"] else "false"
    certs = ", ".join(ca_names(layout, state)) or "none"
    return (
        f"pool {pool['name-label']} ({len(state['hosts'])} hosts, "
        f"xapi {coordinator['software-version']['xapi']}): "
        f"wlb-url={pool['wlb-url'] or '(unset)'} wlb-verify-cert={flag}; CA certificates: {certs}"
    )


def set_wlb_url(layout: TargetLayout, url: str) -> None:
    """Change the recorded wlb-url behind xapi's back (a lab fault: reach WLB by IP)."""
    with locked(layout.pool_state) as state:
        state["pool"]["wlb-url"] = url
        save(layout.pool_state, state)


def set_resolve(layout: TargetLayout, name: str, address: str | None) -> None:
    """Point ``name`` at ``address`` in the pool's name map, or drop it (None): what the
    coordinator's resolver answers, behind xapi's back (a lab fault)."""
    with locked(layout.pool_state) as state:
        if address is None:
            state["resolve"].pop(name, None)
        else:
            state["resolve"][name] = address
        save(layout.pool_state, state)
        save_names(layout.pool_state, state)


def drop_member_certificate(layout: TargetLayout) -> tuple[str, str]:
    """Delete one CA certificate from the last member host only; returns (host, name).

    That host's bundle is rebuilt (as a host-local uninstall would), the coordinator and
    the Certificate DB keep it: the pool is out of sync until ``pool-certificate-sync``.
    """
    from wlbplan.errors import LabError

    with locked(layout.pool_state) as state:
        if len(state["hosts"]) < 2:
            raise LabError(f"pool {layout.name} has a single host: nothing can be out of sync")
        member = state["hosts"][-1]
        host = layout.host(member["dir"])
        names = [n for n in regular_files(host.certs_dir) if n.endswith(".pem")]
        if not names:
            raise LabError(
                f"host {member['name-label']} has no CA certificate to lose; "
                "install one first (xe pool-install-ca-certificate)"
            )
        (host.certs_dir / names[0]).unlink()
        rebuild_bundle(host)
        return member["name-label"], names[0]
