"""Files on the hosts, proven on the lab (SECURITY.md, "Files on the hosts").

- Temporary folders are made by ``mktemp -d`` (0700) and removed afterwards: after a
  success, after a step fails while its folder exists, and after a Ctrl-C (SIGINT to
  wlbplan) that lands while it exists.
- Private keys are created under ``umask 077``; no key file grants group or others
  anything, not for an instant.
- The live certificate and key are only ever replaced by a rename onto them: a reader
  sees the old file or the new one, whole; never a part of one, never nothing.
- A rollback gives each file back byte for byte, with its mode and owner.
- Every path an apply writes on the hosts is one the spec names, a backup of one, an
  entry of the pool's trust folders, or a temporary name that is gone afterwards.

Which TMPDIR the lab's hosts use: over the local connector a host's commands inherit
wlbplan's environment, so ``mktemp -d`` honours wlbplan's TMPDIR (else /tmp); over SSH
the session has no TMPDIR (sshd sets none) and it is /tmp on the host. The runs here set
TMPDIR to a folder of their own, so that "nothing is left" can mean nothing at all.

Two witnesses judge each run of the CA-signed flow (a request, an install that fails
after the restart and is rolled back, an install; its plan has every kind of step a
fresh lab's plan has, and the appliance's too):

- the kernel's record of every file operation made by wlbplan and everything it started
  (strace, see syscalls.py). It is complete, whatever the timing: a key file cannot be
  created, chmod-ed, renamed or linked without a call that says with which mode, and
  under which umask. A window of a microsecond shows as plainly as one of a second;
- a watcher process (_watch.py) that, while the apply runs, polls the modes of the key
  folder's key files and reads the live certificate and key again and again, as stunnel
  or an operator's script would. It samples (every millisecond or so), so it is the
  witness that the files really looked so, not the proof that no window exists; a key
  created loose and chmod-ed later stays loose for all of openssl's key generation (it
  opens its output first), which it does not miss.

A hook right after the key step also reads the pending key's mode (0600) at that moment.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import syscalls
import yaml
from applylab import (
    PYTHON,
    TARGET,
    _env,
    before,
    ca_names,
    layout,
    no_key_material,
    running_lab,
    served_fingerprint,
    snapshot,
    snapshot_diff,
    verify_flag,
)
from hostfiles import (
    Stat,
    Watched,
    changed_paths,
    digest,
    key_named,
    loose_keys,
    not_allowed,
    replaced_in_place,
    run_traced,
    stat_tree,
    under,
    watching,
    written,
)
from syscalls import FileOp

from wlbplan.lab import control, pki, stunnel, xe_state
from wlbplan.lab.layout import TargetLayout

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(not syscalls.available(),
                                 reason="strace missing or not allowed to trace")]


@dataclass
class Run:
    """One wlbplan run and what the hosts looked like around it."""

    code: int
    said: str
    left: list[str]  # what the hosts' TMPDIR holds afterwards
    ops: list[FileOp] = field(default_factory=list)
    before: dict[str, Stat] = field(default_factory=dict)
    after: dict[str, Stat] = field(default_factory=dict)
    watched: Watched | None = None
    live_before: dict[str, str] = field(default_factory=dict)
    live_after: dict[str, str] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)  # on the lab, from before the run


def _hosts(where: TargetLayout, tmpdir: Path) -> list[Path]:
    """The lab's host folders: the appliance's root, the pool's hosts and database, and
    the TMPDIR their commands use."""
    return [where.appliance, where.pool_dir, tmpdir]


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _live(where: TargetLayout) -> dict[str, str]:
    return {str(p): digest(p.read_bytes()) for p in (where.cert, where.key)}


def _traced(lab: control.Lab, folder: Path, tmpdir: Path, args: list[str],
            hook: Any = None, watch: bool = True) -> Run:
    where = layout(lab)
    roots = _hosts(where, tmpdir)
    stats, live = stat_tree(*roots), _live(where)
    daemon = where.stunnel_pid.read_text()
    if watch:
        with watching(where.key, [where.cert, where.key], folder / "watch") as seen:
            done = run_traced(folder, args, hook=hook, env={"TMPDIR": str(tmpdir)})
    else:
        seen, done = None, run_traced(folder, args, hook=hook, env={"TMPDIR": str(tmpdir)})
    if where.stunnel_pid.read_text() != daemon:
        # A stunnel started under strace keeps strace's seccomp filter once strace has
        # detached, and its traced calls then fail (ENOSYS): start it again, untraced.
        stunnel.restart(where)
    no_key_material(done.out, done.err)
    assert "Traceback" not in done.err, done.said
    return Run(done.code, done.said, _listing(tmpdir), done.ops, stats, stat_tree(*roots),
               seen, live, _live(where))


# ---- what an apply may write on the hosts ----------------------------------------------

def allowed_on_hosts(lab: control.Lab) -> list[str]:
    """Regular expressions, relative to the target's lab folder, for every path an apply
    may create, change or remove on the appliance and the pool."""
    where = layout(lab)
    certs = re.escape(os.path.relpath(where.certs_dir, where.root))
    coordinator = re.escape(os.path.relpath(xe_state.coordinator(where).root, where.root))
    return [
        # The spec's wlb.paths, replaced by rename; their backups; the staged chain, as
        # it is written and once written; a restore's copies before their rename.
        rf"{certs}/server\.(pem|key)",
        rf"{certs}/server\.(pem|key)_orig(\.[0-9]{{8}}T[0-9]{{6}}Z)?",
        rf"{certs}/server\.pem\.wlbplan-new",
        rf"{certs}/\.(server\.pem\.wlbplan-new|server\.csr\.pending)\.wlbplan-[0-9a-f]{{12}}",
        rf"{certs}/server\.(pem|key)\.wlbplan-restore",
        # The request: the pending key and CSR (and the ones a replace keeps aside).
        rf"{certs}/server\.(key|csr)\.pending(\.wlbplan-old)?",
        # The spec's restart command: stunnel writes its pid file and log.
        r"appliance/run/stunnel\.pid", r"appliance/var/log/stunnel\.log",
        # xapi's own files, changed by the xe commands (the lab's emulator): its
        # database and the pool hosts' trust folders, each written by temp + rename.
        r"pool/state\.json(\.lock)?", r"pool/\.state\.json\.[0-9]+\.tmp",
        r"pool/hosts/[^/]+/etc/stunnel/certs/\.?wlbplan-(wlb|leaf|intermediate|root)-"
        r"[0-9a-f]{16}\.pem(\.[0-9]+\.tmp)?",
        r"pool/hosts/[^/]+/etc/stunnel/\.?xapi-stunnel-ca-bundle\.pem(\.[0-9]+\.tmp)?",
        # The apply lock on the coordinator (pool.state_dir), and its record's temp file.
        rf"{coordinator}/var(/lib(/wlbplan(/apply\.lock(\.[A-Za-z0-9]{{6}})?)?)?)?",
    ]


# Relative to the hosts' TMPDIR; nothing may be left there. mktemp -d's upload folders
# (a CA certificate inside, as it is written and once written); on this machine, which
# is also the local connector's "host": the local verdict's folder and Python's check
# that TMPDIR is writable.
ALLOWED_IN_TMP = [
    r"tmp\.[A-Za-z0-9]{10}(/\.?wlbplan-[a-z]+-[0-9a-f]{16}\.pem(\.wlbplan-[0-9a-f]{12})?)?",
    r"wlbplan-verify-[a-z0-9_]+(/(trust|untrusted|leaf)\.pem)?",
    r"[a-z0-9_]{8}",
]


def assert_only_allowed(lab: control.Lab, tmpdir: Path, run: Run) -> None:
    """Every path the run wrote on the hosts, as the kernel saw it and as the files show
    it afterwards (mode, owner, size, time, inode), is an allowed one."""
    where = layout(lab)
    calls = written(run.ops)
    seen = list(calls) + sorted(changed_paths(run.before, run.after))
    on_hosts = [p for p in seen if under(p, where.appliance) or under(p, where.pool_dir)]
    bad = not_allowed(on_hosts, where.root, allowed_on_hosts(lab))
    bad += not_allowed([p for p in seen if p.startswith(str(tmpdir) + "/")], tmpdir,
                       ALLOWED_IN_TMP)
    assert not bad, "written on the hosts, and not allowed:\n" + "\n".join(
        f"{p}: {calls.get(str(where.root / p)) or calls.get(str(tmpdir / p)) or 'changed'}"
        for p in bad)
    assert run.left == [], f"left in the hosts' TMPDIR: {run.left}"


# ---- a fresh lab: a failure and a Ctrl-C while an upload's folder exists -----------------

XE_WRAPPER = """#!/bin/sh
# The lab's xe, and a fault while an upload's temporary folder exists: every upload's
# folder and file are recorded (mode, owner, path); the fault file says what happens then.
case "$1" in
pool-install-ca-certificate|pool-certificate-install)
  file=${{2#filename=}}
  stat -c '%a %u %n' -- "${{file%/*}}" "$file" >> {record}
  case $(cat -- {fault}) in
    fail) echo "injected: the pool refuses the upload" >&2; exit 1 ;;
    sigint) kill -INT "$PPID" ;;
  esac ;;
esac
exec {xe} "$@"
"""


@dataclass
class Fresh:
    tmpdir: Path
    record: Path
    runs: dict[str, Run]


def _spec_with_xe(lab: control.Lab, folder: Path, xe: Path) -> Path:
    data = yaml.safe_load(lab.spec_path.read_text())
    for item in data["targets"]:
        item["pool"]["xe"] = str(xe)
    spec = folder / "spec.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    return spec


def _cli(args: list[str], tmpdir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "-m", "wlbplan", *args], capture_output=True, text=True,
                          timeout=180, env={**_env(), "TMPDIR": str(tmpdir)},
                          stdin=subprocess.DEVNULL, check=False)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fresh]:
    """A fresh lab's apply, twice: the pool refuses the upload while its folder exists;
    then a Ctrl-C arrives while it exists. (A success: the CA-signed flow below.)"""
    folder = tmp_path_factory.mktemp("fresh")
    tmpdir, record, fault = folder / "hosttmp", folder / "uploads", folder / "fault"
    tmpdir.mkdir()
    with running_lab(folder / "lab", hosts=1) as lab:
        xe = folder / "xe"
        xe.write_text(XE_WRAPPER.format(record=shlex.quote(str(record)),
                                        fault=shlex.quote(str(fault)),
                                        xe=shlex.quote(str(layout(lab).xe))))
        xe.chmod(0o755)
        spec = _spec_with_xe(lab, folder, xe)
        runs: dict[str, Run] = {}
        for how in ("fail", "sigint"):
            fault.write_text(how)
            was = before(lab)
            done = _cli(["apply", str(spec), "--auto-approve"], tmpdir)
            no_key_material(done.stdout, done.stderr)
            changed = snapshot_diff(was.files, snapshot(lab))
            changed += [] if verify_flag(lab) == was.flag else ["wlb-verify-cert changed"]
            changed += [] if ca_names(lab) == was.cas else ["the pool's CAs changed"]
            runs[how] = Run(done.returncode, done.stdout + done.stderr, _listing(tmpdir),
                            changed=changed)
        yield Fresh(tmpdir, record, runs)


def test_upload_folders_are_mktemp_folders_private_to_their_owner(fresh: Fresh) -> None:
    uploads = [line.split(" ", 2) for line in fresh.record.read_text().splitlines()]
    assert len(uploads) == 4, uploads  # its folder and file, in each run
    for (mode, uid, folder), (_, _, upload) in zip(uploads[::2], uploads[1::2], strict=True):
        assert re.fullmatch(re.escape(str(fresh.tmpdir)) + r"/tmp\.[A-Za-z0-9]{10}", folder)
        assert (mode, uid) == ("700", str(os.getuid())), folder
        assert os.path.dirname(upload) == folder


@pytest.mark.parametrize(("how", "code", "said"), [
    ("fail", 1, "injected: the pool refuses the upload"),
    ("sigint", 130, "STOPPED and rolled back"),
])
def test_no_temporary_folder_is_left_after_a_failure_or_a_ctrl_c(
        fresh: Fresh, how: str, code: int, said: str) -> None:
    run = fresh.runs[how]
    assert run.code == code, run.said
    assert said in run.said
    assert run.left == [], f"left in the hosts' TMPDIR after {how}: {run.left}"
    assert not run.changed, "not rolled back:\n" + "\n".join(run.changed)


# ---- the CA-signed flow: the request (a key is made), a rollback, then the install ---------

@dataclass
class Flow:
    lab: control.Lab
    tmpdir: Path
    key_mode_then: str
    originals: dict[str, tuple[bytes, os.stat_result]]
    restored: dict[str, tuple[bytes, os.stat_result]]
    served: tuple[str, str]  # before the failed install, after its rollback
    runs: dict[str, Run]


# Modes and owners an operator might have chosen: a rollback must give them back. (Only
# root can give a file away: as another user, the files keep their owner.)
ROOT = os.geteuid() == 0
UNUSUAL = {"cert": (0o604, 4242, 4243) if ROOT else (0o604, os.getuid(), os.getgid()),
           "key": (0o640, 0, 4244) if ROOT else (0o640, os.getuid(), os.getgid())}


def _signer(folder: Path) -> dict[str, Any]:
    """A CA whose key stays in ``folder``, and the spec's signer command using it."""
    root = pki.build("wlbplan host-files Root CA", ca=True)
    (folder / "root.pem").write_bytes(root.cert_pem)
    (folder / "root.key").write_bytes(pki.key_pem(root.key))
    (folder / "root.key").chmod(0o600)
    return {"root": str(folder / "root.pem"), "signer": {"command": [
        "openssl", "x509", "-req", "-in", "{csr}", "-CA", str(folder / "root.pem"),
        "-CAkey", str(folder / "root.key"), "-out", "{cert}", "-days", "365",
        "-copy_extensions", "copy"]}}


def _ca_spec(lab: control.Lab, folder: Path) -> Path:
    fqdn = lab.target(TARGET).fqdn
    certificate = {"source": "ca-signed", "signed": str(folder / "signed.pem"),
                   "request": {"common_name": fqdn, "alt_names": [f"DNS:{fqdn}"],
                               "key": {"type": "rsa", "bits": 2048},
                               "csr_out": str(folder / "request.csr")},
                   **_signer(folder)}
    data = yaml.safe_load(lab.spec_path.read_text())
    for item in data["targets"]:
        if item["name"] == TARGET:
            item["certificate"] = certificate
    spec = folder / "ca-signed.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    return spec


def _files(where: TargetLayout) -> dict[str, tuple[bytes, os.stat_result]]:
    return {name: (path.read_bytes(), path.stat())
            for name, path in (("cert", where.cert), ("key", where.key))}


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    folder = tmp_path_factory.mktemp("ca-flow")
    tmpdir = folder / "hosttmp"
    tmpdir.mkdir()
    with running_lab(folder / "lab", hosts=2) as lab:
        where = layout(lab)
        spec = str(_ca_spec(lab, folder))
        apply = ["apply", spec, "--auto-approve"]
        runs: dict[str, Run] = {}
        mode_then = folder / "key-mode"
        runs["request"] = _traced(lab, folder / "request", tmpdir, apply, hook={
            "on": "apply_complete", "action": "appliance.generate_key", "do": "stat",
            "path": str(where.key) + ".pending", "out": str(mode_then)})
        for name, path in (("cert", where.cert), ("key", where.key)):
            mode, uid, gid = UNUSUAL[name]
            os.chown(path, uid, gid)
            path.chmod(mode)
        originals, served_before, files = _files(where), served_fingerprint(lab), \
            snapshot(lab)
        runs["rolled back"] = _traced(lab, folder / "rolled-back", tmpdir, apply, hook={
            "on": "apply_complete", "action": "pool.confirm", "do": "fail"})
        runs["rolled back"].changed = snapshot_diff(files, snapshot(lab))
        restored, served_after = _files(where), served_fingerprint(lab)
        for path, mode in ((where.cert, 0o644), (where.key, 0o600)):
            os.chown(path, os.getuid(), os.getgid())
            path.chmod(mode)
        runs["installed"] = _traced(lab, folder / "installed", tmpdir, apply)
        (folder / "root.key").unlink()  # the test CA's key: no private key is left behind
        yield Flow(lab, tmpdir, mode_then.read_text() if mode_then.exists() else "",
                   originals, restored, (served_before, served_after), runs)


def test_the_ca_flow_ran_as_planned(flow: Flow) -> None:
    """The request and the install apply; the install that fails late is rolled back."""
    assert flow.runs["request"].code == 0, flow.runs["request"].said
    assert flow.runs["rolled back"].code == 1, flow.runs["rolled back"].said
    assert "rolled back" in flow.runs["rolled back"].said
    assert flow.runs["installed"].code == 0, flow.runs["installed"].said


def test_keys_are_made_under_umask_077_and_never_readable_by_others(flow: Flow) -> None:
    """The kernel's record: the key file was created by openssl in a process whose umask
    was 077, with no bit for group or others; and, followed through every chmod, rename
    and link of the folder, no key-named file ever had one. A hook right after the key
    step saw 0600; the watcher never saw a looser mode."""
    where = layout(flow.lab)
    pending = str(where.key) + ".pending"
    made = [op for op in flow.runs["request"].ops if op.path == pending
            and op.kind == "create"]
    assert [(op.program, op.umask, op.mode) for op in made] == [("openssl", 0o077, 0o600)], \
        [str(op) for op in made]
    assert flow.key_mode_then, "the hook right after the key step did not run"
    assert flow.key_mode_then == "0o600", flow.key_mode_then
    for name in ("request", "installed"):
        run = flow.runs[name]
        assert run.watched is not None
        assert not loose_keys(run.ops, where.key, run.before), \
            "\n".join(loose_keys(run.ops, where.key, run.before))
        assert run.watched.loose == {}, (name, run.watched.loose)
        assert run.watched.rounds > 100, run.watched
    for path in where.certs_dir.iterdir():
        if key_named(str(path), where.key):
            assert path.stat().st_mode & 0o077 == 0, oct(path.stat().st_mode)


@pytest.mark.parametrize("name", ["rolled back", "installed"])
def test_live_files_are_only_replaced_by_a_rename(flow: Flow, name: str) -> None:
    """No call wrote, truncated, chmod-ed, removed or renamed away server.pem or
    server.key: each was only ever replaced by a rename onto it. The watcher, reading
    both again and again, saw the old file and the new one, each whole, and never a
    moment without one."""
    where, run = layout(flow.lab), flow.runs[name]
    live = [where.cert, where.key]
    assert not replaced_in_place(run.ops, live), "\n".join(replaced_in_place(run.ops, live))
    assert any(op.kind == "rename" and op.dest == str(where.key) for op in run.ops)
    assert run.watched is not None
    for path in map(str, live):
        seen = run.watched.seen[path]
        assert all(seen.values()), f"{path}: a reader saw a partial file"
        assert run.watched.missing[path] == 0, f"{path}: a reader found no file"
        old, now = run.live_before[path], run.live_after[path]
        # Installed: the old file, then the new one. Rolled back: the old file, the new
        # one, then the old one again (the same bytes).
        assert len(seen) == 2, f"{path}: a reader saw {len(seen)} different files"
        assert {old, now} <= set(seen), f"{path}: the watcher missed the change"
        assert (now != old) == (name == "installed"), path


def test_a_rollback_gives_back_content_mode_and_owner(flow: Flow) -> None:
    """server.pem 0604 owned by 4242:4243, server.key 0640 owned by root:4244 before an
    install that fails after the restart: afterwards each is byte for byte what it was,
    with that mode, owner and modification time; so is every other file (content, mode
    and owner); and stunnel serves the original certificate again."""
    for name, (data, was) in flow.originals.items():
        now_data, now = flow.restored[name]
        assert now_data == data, f"{name}: content differs after the rollback"
        assert (now.st_mode & 0o7777, now.st_uid, now.st_gid) == \
            (was.st_mode & 0o7777, was.st_uid, was.st_gid) == UNUSUAL[name], name
        assert now.st_mtime_ns == was.st_mtime_ns, f"{name}: modification time not kept"
    assert flow.served[1] == flow.served[0], "stunnel does not serve the original again"
    run = flow.runs["rolled back"]
    assert not run.changed, "\n".join(run.changed)
    owners = [p for p in run.before.keys() & run.after.keys()
              if run.before[p][:3] != run.after[p][:3]]
    assert not owners, f"mode or owner changed: {owners}"


def test_no_temporary_folder_is_left_after_a_success(flow: Flow) -> None:
    """Each upload folder was made by mktemp, 0700, and is gone after every run: the
    request, the install that is rolled back, the install that succeeds."""
    for name, run in flow.runs.items():
        assert run.left == [], f"left in the hosts' TMPDIR after {name}: {run.left}"
    made = [op for op in flow.runs["installed"].ops if op.kind == "mkdir"
            and op.path.startswith(str(flow.tmpdir) + "/tmp.")]
    assert made, "the install made no upload folder in the hosts' TMPDIR"
    assert {(op.program, op.mode) for op in made} == {("mktemp", 0o700)}, made


@pytest.mark.parametrize("name", ["request", "rolled back", "installed"])
def test_a_ca_signed_apply_writes_only_what_it_may_on_the_hosts(flow: Flow,
                                                                 name: str) -> None:
    assert_only_allowed(flow.lab, flow.tmpdir, flow.runs[name])
