"""Helpers for the apply / rollback / lock suite, on the real lab.

Everything the tests judge is read from the lab's files and processes directly: a
snapshot of every file (sha256 + mode) under the target's appliance fake root and pool
folder, the certificate stunnel really serves (a TLS handshake), and the pool's flag
through the lab's own ``xe``. The library and the CLI under test are only ever asked to
*do* things, never to report on themselves.

Labs and child processes are always stopped by pid in teardown, even when a test fails.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from pool_connectors import forwarded, logins
from pool_connectors import up as lab_up
from pool_state import LOCK_KEY, pool_state_digest

from wlbplan import actions
from wlbplan.actions.base import Action, StepFailed
from wlbplan.core.plan import TargetPlan, plan_one
from wlbplan.lab import control, pki, stunnel, xe_state
from wlbplan.lab.layout import TargetLayout
from wlbplan.lab.procs import alive
from wlbplan.model.events import TargetOutcome
from wlbplan.model.lock import LockInfo, parse_lock
from wlbplan.run import pipeline
from wlbplan.run.apply import apply_target
from wlbplan.run.sessions import open_sessions
from wlbplan.spec import load_spec

HERE = Path(__file__).resolve().parent
CHILD = HERE / "_child.py"
TARGET = "pool1"
PYTHON = sys.executable

# Files that legitimately change while a lab runs: stunnel's pid and log (a restart
# rewrites them), the emulator's flock file, and bytecode caches.
VOLATILE = {"appliance/run/stunnel.pid", "appliance/var/log/stunnel.log",
            "pool/state.json.lock", "pool/xenapi-sessions.json"}
CACHE_PARTS = {".pycache", "__pycache__"}

Snapshot = dict[str, tuple[str, int]]


# ---- running wlbplan ---------------------------------------------------------------------

def _env() -> dict[str, str]:
    """A clean environment, with the XenAPI login of the test's lab (pool_connectors)."""
    return {"NO_COLOR": "1", "PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8", **forwarded()}


def wlbplan(*args: str, stdin: str | None = None, timeout: float = 120,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``wlbplan ARGS`` as an operator runs it: a subprocess, stdin not a terminal;
    ``env``: variables to add (a XenAPI login)."""
    return subprocess.run([PYTHON, "-m", "wlbplan", *args], capture_output=True, text=True,
                          timeout=timeout, env={**_env(), **(env or {})},
                          input=stdin if stdin is not None else "", check=False)


@dataclass
class Children:
    """Every child process a test starts; whatever is still alive at teardown is killed
    by its pid (never by name)."""

    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def start(self, argv: list[str], **kw: Any) -> subprocess.Popen[str]:
        options: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE,
                                   "stdin": subprocess.DEVNULL, "text": True, "env": _env()}
        proc = subprocess.Popen(argv, **{**options, **kw})
        self.procs.append(proc)
        return proc

    def wlbplan(self, *args: str, **kw: Any) -> subprocess.Popen[str]:
        return self.start([PYTHON, "-m", "wlbplan", *args], **kw)

    def hooked(self, hook: dict[str, Any] | list[dict[str, Any]],
               *args: str, **kw: Any) -> subprocess.Popen[str]:
        """``wlbplan ARGS`` in a child that acts on one of its own apply events (_child.py)."""
        return self.start([PYTHON, str(CHILD), json.dumps(hook), *args], **kw)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out or "", err or ""


def wait_for_text(path: Path, text: str, proc: subprocess.Popen[str],
                  timeout: float = 60) -> None:
    """Until ``text`` shows in the file a child writes to (or fail if the child ends)."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and text in path.read_text()):
        assert proc.poll() is None, f"the child ended early ({proc.returncode})"
        assert time.monotonic() < deadline, f"{text!r} never showed in {path}"
        time.sleep(0.05)


# ---- labs ----------------------------------------------------------------------------

@contextlib.contextmanager
def running_lab(folder: Path, connector: str = "xe", **kw: Any) -> Iterator[control.Lab]:
    """A lab that is taken down (every daemon, by pid file) whatever happens; its pool
    reached by ``connector`` (pool_connectors)."""
    lab: control.Lab | None = None
    try:
        lab = lab_up(folder, connector, **kw)
        yield lab
    finally:
        control.down(folder)
        if lab is not None:
            for name, pid in control.pids(lab).items():  # belt and braces
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
                    raise AssertionError(f"lab process {name} (pid {pid}) survived lab down")


def layout(lab: control.Lab, target: str = TARGET) -> TargetLayout:
    return lab.layout(target)


def xe(lab: control.Lab, *args: str, check: bool = True,
       target: str = TARGET) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(layout(lab, target).xe), *args], capture_output=True,
                            text=True, check=False, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"xe {' '.join(args)} failed: {result.stderr}")
    return result


def pool_uuid(lab: control.Lab, target: str = TARGET) -> str:
    uuid: str = xe_state.load(layout(lab, target).pool_state)["pool"]["uuid"]
    return uuid


def verify_flag(lab: control.Lab, target: str = TARGET) -> str:
    return xe(lab, "pool-param-get", f"uuid={pool_uuid(lab, target)}",
              "param-name=wlb-verify-cert", target=target).stdout.strip()


def ca_names(lab: control.Lab, target: str = TARGET) -> set[str]:
    return set(xe(lab, "pool-certificate-list", target=target).stdout.split())


def install_command(lab: control.Lab) -> str:
    """How an operator installs a CA certificate on this lab's pools: Citrix Hypervisor 8.2
    (the ch82 lab, xapi 1.249) has only the older name."""
    return "pool-certificate-install" if lab.xapi == "ch82" else "pool-install-ca-certificate"


def install_foreign_ca(lab: control.Lab, folder: Path, name: str = "corp-root.pem",
                       target: str = TARGET) -> bytes:
    """Someone else's CA certificate, installed with xe as an operator would."""
    issued = pki.build(f"Corp Root CA {name}", ca=True)
    path = folder / name
    path.write_bytes(issued.cert_pem)
    xe(lab, install_command(lab), f"filename={path}", target=target)
    return issued.cert_pem


def host_layouts(lab: control.Lab, target: str = TARGET) -> list[Any]:
    state = xe_state.load(layout(lab, target).pool_state)
    return [xe_state.host_layout(layout(lab, target), h) for h in state["hosts"]]


def lock_file(lab: control.Lab, target: str = TARGET) -> Path:
    return xe_state.coordinator(layout(lab, target)).root / "var" / "lib" / "wlbplan" / \
        "apply.lock"




def held_locks(lab: control.Lab, target: str = TARGET) -> dict[str, LockInfo]:
    """The apply locks the pool holds, by place: ``file`` (on the coordinator),
    ``other-config`` (the pool's key)."""
    found = {}
    path = lock_file(lab, target)
    if path.exists():
        found["file"] = parse_lock(path.read_text(), target)
    config = xe_state.load(layout(lab, target).pool_state)["pool"]["other-config"]
    if LOCK_KEY in config:
        found["other-config"] = parse_lock(config[LOCK_KEY], target)
    return found


def held_lock(lab: control.Lab, target: str = TARGET) -> LockInfo:
    """The one apply lock the pool holds (the same record wherever it is kept)."""
    found = held_locks(lab, target)
    assert found, "the pool holds no apply lock"
    records = set(found.values())
    assert len(records) == 1, f"the pool holds different locks: {found}"
    return records.pop()


def state_dir(lab: control.Lab) -> Path:
    """Where the CLI keeps journals by default: ``.wlbplan/`` beside the spec."""
    return lab.spec_path.parent / ".wlbplan"


def journal_path(folder: Path, target: str = TARGET) -> Path:
    return folder / target / "journal.jsonl"


def history(folder: Path, target: str = TARGET) -> list[Path]:
    found = folder / target / "history"
    return sorted(found.iterdir()) if found.exists() else []


# ---- what is really there --------------------------------------------------------------

def snapshot(lab: control.Lab, target: str = TARGET) -> Snapshot:
    """{path relative to the target folder: (sha256, mode)} for every file (and folder, with
    its mode) of the appliance's fake root and of the pool (every host's fake dom0 and the
    pool state), except the ones that legitimately change; the apply lock (the
    coordinator's lock folder, the pool's other_config key) may appear: it is checked on
    its own (held_locks)."""
    where = layout(lab, target)
    lock_dir = lock_file(lab, target).parent
    found: Snapshot = {}
    for top in (where.appliance, where.pool_dir):
        for path in sorted(top.rglob("*")):
            rel = path.relative_to(where.root).as_posix()
            if rel in VOLATILE or CACHE_PARTS & set(path.parts):
                continue
            if path == lock_dir or lock_dir in path.parents or path in lock_dir.parents:
                continue  # the lock folder (and the folders made for it) may appear
            info = path.lstat()
            if stat.S_ISDIR(info.st_mode):
                digest = "(folder)"
            elif stat.S_ISLNK(info.st_mode):
                digest = f"-> {os.readlink(path)}"
            elif path == where.pool_state:
                digest = pool_state_digest(path)
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            found[rel] = (digest, stat.S_IMODE(info.st_mode))
    return found


def snapshot_diff(before: Snapshot, after: Snapshot) -> list[str]:
    lines = [f"gone: {p}" for p in sorted(before.keys() - after.keys())]
    lines += [f"new: {p}" for p in sorted(after.keys() - before.keys())]
    for path in sorted(before.keys() & after.keys()):
        (h1, m1), (h2, m2) = before[path], after[path]
        if h1 != h2:
            lines.append(f"content changed: {path}")
        if m1 != m2:
            lines.append(f"mode changed: {path} {m1:o} -> {m2:o}")
    return lines


def served_fingerprint(lab: control.Lab, target: str = TARGET, timeout: float = 10) -> str:
    """sha256 of the leaf stunnel serves now: a real TLS handshake on 127.0.0.1."""
    port = lab.target(target).port
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                    context.wrap_socket(raw, server_hostname=lab.target(target).fqdn) as tls:
                der = tls.getpeercert(binary_form=True)
            assert der is not None
            return hashlib.sha256(der).hexdigest()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def file_leaf_fingerprint(pem_path: Path) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    leaf = x509.load_pem_x509_certificates(pem_path.read_bytes())[0]
    return hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest()


@dataclass(frozen=True)
class Before:
    """Everything a rollback must give back, taken before an apply."""

    files: Snapshot
    served: str
    flag: str
    cas: frozenset[str]


def before(lab: control.Lab, target: str = TARGET) -> Before:
    return Before(snapshot(lab, target), served_fingerprint(lab, target),
                  verify_flag(lab, target), frozenset(ca_names(lab, target)))


class StaleServe(AssertionError):
    """stunnel serves another certificate than before the apply (its files are restored)."""


def assert_restored(lab: control.Lab, was: Before, journals: Path | None,
                    target: str = TARGET) -> None:
    """The acceptance bar after a rollback: nothing lost, nothing left behind.

    The certificate stunnel serves is checked last and fails with StaleServe, so that a
    known bug there (xfail raises=StaleServe) cannot hide any other difference."""
    changed = snapshot_diff(was.files, snapshot(lab, target))
    assert not changed, "the rollback did not restore the lab byte for byte:\n" + \
        "\n".join(changed)
    assert verify_flag(lab, target) == was.flag
    assert ca_names(lab, target) == was.cas
    assert not held_locks(lab, target), "the apply lock was left on the pool"
    lock_dir = lock_file(lab, target).parent
    left = sorted(p.name for p in lock_dir.iterdir()) if lock_dir.exists() else []
    assert not left, f"left in the coordinator's lock folder: {left}"
    if journals is not None:
        assert not journal_path(journals, target).exists(), "the journal was not archived"
        assert history(journals, target), "no journal in history/"
        for path in journals.rglob("*"):
            # acme/: the ACME account key's default home (by design, 0600); no journal.
            if path.is_file() and path.parent != journals / "acme":
                no_key_material(path.read_text())
    served = served_fingerprint(lab, target)
    if served != was.served:
        on_disk = file_leaf_fingerprint(layout(lab, target).cert)
        raise StaleServe(f"stunnel serves {served[:16]}…, not {was.served[:16]}… as before "
                         f"the apply (server.pem on disk: {on_disk[:16]}…)")


def assert_applied(lab: control.Lab, target: str = TARGET) -> None:
    """The spec's end state for a self-signed lab target with verify: true."""
    assert verify_flag(lab, target) == "true"
    where = layout(lab, target)
    leaf = where.cert.read_bytes()
    from cryptography import x509

    leaf_cert = x509.load_pem_x509_certificates(leaf)[0]
    for host in host_layouts(lab, target):
        held = [x509.load_pem_x509_certificates(p.read_bytes())[0]
                for p in sorted(host.certs_dir.iterdir())]
        assert leaf_cert in held, f"{host.root.name} does not hold the appliance leaf"
        bundle = x509.load_pem_x509_certificates(host.bundle.read_bytes())
        assert leaf_cert in bundle, f"{host.root.name}'s bundle lacks the appliance leaf"
    xe(lab, "pool-retrieve-wlb-configuration", target=target)
    assert not held_locks(lab, target)


# ---- the library, in process -------------------------------------------------------------

@dataclass
class Planned:
    spec: Any
    target: Any
    plan: TargetPlan


def plan_now(spec_path: Path, target: str = TARGET) -> Planned:
    spec = load_spec(spec_path)
    chosen = pipeline.select(spec, [target])[0]
    observed = pipeline.inspect_all(spec, [chosen])[0]
    return Planned(spec, chosen, plan_one(spec, chosen, observed))


def run_apply(planned: Planned, journals: Path, events: list[dict[str, Any]] | None = None,
              report: Callable[[dict[str, Any]], None] | None = None,
              cancel: threading.Event | None = None, lock_timeout: float = 0.0
              ) -> TargetOutcome:
    seen = events if events is not None else []

    def record(event: dict[str, Any]) -> None:
        seen.append(event)
        if report is not None:
            report(event)

    with open_sessions(planned.spec, planned.target) as sessions:
        return apply_target(planned.spec, planned.target, planned.plan, sessions, journals,
                            record, cancel or threading.Event(), lock_timeout)


def step_index(event: dict[str, Any]) -> int:
    """``pool1.03.pool.preflight`` → 3."""
    return int(str(event["step"]).split(".")[1])


def failing_registry(k: int, how: str) -> Callable[[], dict[str, Action]]:
    """``actions.registry`` whose k-th run (the plan's step k: one target runs its steps one
    after the other) raises StepFailed, before (``fails``) or after (``fails-after-effect``:
    the remote change happened, the answer was lost) doing its work."""
    real = actions.registry
    calls = {"n": 0}

    def wrap(action: Action) -> Action:
        def run(ctx: Any, step: Any) -> None:
            calls["n"] += 1
            if calls["n"] != k:
                action.run(ctx, step)
                return
            if how == "fails-after-effect":
                action.run(ctx, step)
            raise StepFailed(f"injected failure at step {k} ({how})")

        return Action(action.undo_record, run, action.undo)

    def registry() -> dict[str, Action]:
        return {name: wrap(action) for name, action in real().items()}

    return registry


# ---- the plans the parametrized tests walk, read from a real lab at collection --------

@functools.cache
def fresh_plan_actions() -> tuple[str, ...]:
    """The actions of a fresh lab's plan, in order: the fault tests cover every one, so a
    step added to the plan is covered without touching the tests."""
    with tempfile.TemporaryDirectory(prefix="wlbplan-collect-") as folder, \
            running_lab(Path(folder) / "lab", hosts=2) as made:
        return tuple(s.action for s in plan_now(made.spec_path).plan.steps)


@functools.cache
def rotation_plan_actions() -> tuple[str, ...]:
    with tempfile.TemporaryDirectory(prefix="wlbplan-collect-") as folder, \
            running_lab(Path(folder) / "lab", hosts=2) as made:
        spec_path = prepare_rotation(made, Path(folder))
        return tuple(s.action for s in plan_now(spec_path).plan.steps)


MarksFor = Callable[[str, int, tuple[str, ...]], list[Any]]


def step_params(kind: str, marks_for: MarksFor | None = None) -> list[Any]:
    """One parameter per step of the plan: (index, id ``NN-action``), with the marks the
    test module's ``step_marks(test_name, index, actions)`` gives (known bugs)."""
    try:
        found = fresh_plan_actions() if kind == "fresh" else rotation_plan_actions()
    except Exception as err:  # no stunnel/openssl here: say so instead of a collection error
        return [pytest.param(0, marks=pytest.mark.skip(reason=f"no lab: {err}"))]
    return [pytest.param(i, id=f"{i:02d}-{a}",
                         marks=marks_for(kind, i, found) if marks_for else ())
            for i, a in enumerate(found, start=1)]


# ---- the CA-signed rotation: every kind of step in one plan ----------------------------

def _sign_csr(csr_pem: bytes, root: pki.Issued, days: int = 300) -> bytes:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    csr = x509.load_pem_x509_csr(csr_pem)
    now = pki.now()
    sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    cert = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(root.cert.subject)
            .public_key(csr.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(sans, critical=False)
            .sign(root.key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def write_spec(lab: control.Lab, path: Path, certificate: dict[str, Any],
               target: str = TARGET) -> Path:
    data = yaml.safe_load(lab.spec_path.read_text())
    for item in data["targets"]:
        if item["name"] == target:
            item["certificate"] = certificate
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def prepare_rotation(lab: control.Lab, folder: Path, *, foreign: bool = True) -> Path:
    """Bring a lab to the eve of a CA-signed rotation and return that spec.

    The pool already verifies the appliance's self-signed certificate (applied by
    wlbplan), trusts someone else's CA too, and the appliance holds a pending key whose
    CSR a CA has signed. The plan then has every kind of step: install_ca, sync, backup,
    install_chain, restart, preflight, confirm, uninstall_ca, sync.
    """
    out = folder / "out"
    out.mkdir(exist_ok=True)
    journals = folder / "setup-journals"
    # Someone else's CA beside wlbplan's: it must survive the rotation and its rollbacks.
    if foreign:
        install_foreign_ca(lab, out, "corp-root.pem")
    done = run_apply(plan_now(lab.spec_path), journals)
    assert done.status == "applied", done
    fqdn = lab.target(TARGET).fqdn
    request = {"common_name": fqdn, "alt_names": [f"DNS:{fqdn}"],
               "key": {"type": "rsa", "bits": 2048}, "csr_out": str(out / "pool1.csr")}
    req_spec = write_spec(lab, folder / "request.yaml",
                          {"source": "ca-signed", "request": request})
    done = run_apply(plan_now(req_spec), journals)
    assert done.status == "applied", done
    root = pki.build("wlbplan test Root CA", ca=True)
    (out / "root.pem").write_bytes(root.cert_pem)
    (out / "signed.pem").write_bytes(_sign_csr((out / "pool1.csr").read_bytes(), root))
    return write_spec(lab, folder / "install.yaml", {
        "source": "ca-signed", "request": request,
        "signed": str(out / "signed.pem"), "root": str(out / "root.pem")})


def no_key_material(*texts: str) -> None:
    for text in texts:
        assert "PRIVATE" not in text
        assert "BEGIN RSA" not in text
        assert "BEGIN EC" not in text


def archived_journal(journals: Path, target: str = TARGET) -> list[dict[str, Any]]:
    """The one journal of this test's apply, from history/ (the apply is over)."""
    found = history(journals, target)
    assert len(found) == 1, f"expected one archived journal, found {found}"
    return [json.loads(line) for line in found[0].read_text().splitlines()]


def check_undo_order(journals: Path, outcome: TargetOutcome | None,
                     target: str = TARGET) -> list[dict[str, Any]]:
    """Every started step was undone once, last first; the outcome lists the real undos."""
    records = archived_journal(journals, target)
    started = [r for r in records if r["event"] == "step"]
    undone = [r["index"] for r in records if r["event"] == "undone"]
    assert undone == [r["index"] for r in reversed(started)], records
    assert all(r["ok"] for r in records if r["event"] == "undone"), records
    expected = tuple(f"{target}.{r['index']:02d}.{r['action']}" for r in reversed(started)
                     if r["undo"] is not None)
    if outcome is not None:
        assert outcome.undone == expected
    assert records[-1]["event"] == "end"
    assert records[-1]["outcome"] == "rolled_back"
    return records


# ---- the CA-signed rotation lab (fixtures in conftest.py) ---------------------------------

@dataclass
class Rotation:
    """A lab on the eve of a CA-signed rotation, shared by the module: each test starts
    from exactly that state (checked), rebuilt when a test left it damaged."""

    folder: Path
    connector: str = "xe"
    lab: control.Lab | None = None
    spec: Path | None = None
    was: Before | None = None
    builds: int = 0

    def build(self) -> None:
        self.down()
        where = self.folder / f"build{self.builds}"
        self.builds += 1
        where.mkdir()
        self.lab = lab_up(where / "lab", self.connector, hosts=2)
        with pytest.MonkeyPatch.context() as env:
            for key, value in logins(self.lab).items():
                env.setenv(key, value)
            self.spec = prepare_rotation(self.lab, where)
        self.was = before(self.lab)

    def down(self) -> None:
        if self.lab is not None:
            control.down(self.lab.dir)
            self.lab = None

    def ready(self) -> Rotation:
        assert self.lab is not None
        assert self.was is not None
        intact = (not snapshot_diff(self.was.files, snapshot(self.lab))
                  and verify_flag(self.lab) == self.was.flag
                  and ca_names(self.lab) == self.was.cas
                  and not held_locks(self.lab))
        if intact and served_fingerprint(self.lab) != self.was.served:
            # Only what stunnel serves differs (a known bug): restart it the lab's way.
            stunnel.restart(layout(self.lab))
        if intact and served_fingerprint(self.lab) == self.was.served:
            return self
        self.build()
        return self
