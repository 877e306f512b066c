"""The leak scan (issue 10, "No leaked secrets"): after every test, everything the test
captured and every file it left is searched for private-key PEM headers, any 40-character
slice of a private key's base64 body, and every password the test put in the environment.
A test that leaked fails at teardown with a message that names where, never the secret.

What counts as captured: the stdout, stderr and log records pytest captured (the report
sections of every phase); the failure report of setup and call (exception messages and
tracebacks); the output of every subprocess a test runs itself (``Popen.communicate``,
which ``subprocess.run`` uses too), of every ``CliRunner.invoke`` and of every wlbplan run
in-process (tests/inprocess.py); the message of every ``WlbplanError`` made in the test's
process; crash logs a captured text points at.

What counts as left: every file under the test's tmp folders: folders made since the
previous test ended (its ``tmp_path``, module fixtures set up for it) and the folders its
fixtures hand it (a module's lab, the session's sshd). Files are cached by path and stat,
so an unchanged file is read once per set of secrets. Keys belong in two places only (see
``on_appliance`` and ``keeps_keys``): an emulated appliance's files, and files of keys
alone not named as wlbplan's outputs; everywhere else a key is a leak.

Where the secrets come from: every private key in those folders (the lab's appliance keys
and backups, its sshd host and client keys, test CAs' keys), the passwords of the lab's
``logins.env`` and WLB accounts, and every password-named variable the test passed to a
subprocess or a CliRunner or set in ``os.environ`` (8 characters or more: shorter values
would match by chance).

A key slice is a match of at least 40 characters between a text and a key's base64 body,
found with 20-character probes: every 20-character slice of every body is indexed, and a
text is looked up every 21 characters, which any 40-character match must contain. A match
lying entirely in the key's public half (an RSA modulus, an EC point, an Ed25519 public
key: what certificates, ``.pub`` files and known_hosts show in the open) is no leak.
Bodies are compared without line breaks (PEM re-wrapped, JSON ``\\n`` escapes).

Run without it: ``pytest -p no:leakscan``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

import wlbplan
from wlbplan.errors import WlbplanError

TESTS = Path(__file__).resolve().parent
WINDOW = 40  # the promise: no 40-character slice of a key's body
PROBE = 20
STRIDE = WINDOW - PROBE + 1  # any WINDOW-long match holds a probe at a multiple of this
MIN_PASSWORD = 8
MAX_READ = 16 << 20  # a file's first 16 MiB; the suite leaves nothing larger
HEADER = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)
_SQUEEZE = re.compile(r"\s+|\\[nrt]")  # line breaks, also JSON-escaped ones
_RUN = re.compile(rf"[A-Za-z0-9+/=]{{{WINDOW},}}")
_BODY_HEADERS = re.compile(r"^[\w-]+:.*$", re.M)  # "Proc-Type: 4,ENCRYPTED" and the like
PASSWORD_NAME = re.compile(r"PASS|SECRET|TOKEN|HMAC|(?:^|_)PW(?:$|_)", re.I)
CRASH_LOG = re.compile(r"/\S*wlbplan-crash-[\w.-]+\.log")
_SKIP_DIRS = frozenset({"__pycache__", ".pycache"})


# ---- the secrets ------------------------------------------------------------------------


class KeySecret:
    """One private key: its base64 body, indexed by every PROBE-long slice."""

    def __init__(self, label: str, block: str, body: str, origin: str) -> None:
        self.label = label
        self.block = block
        self.body = body
        self.origin = origin
        self.probes: dict[str, list[int]] = {}  # a stretch may repeat (OpenSSH keys)
        for pos in range(len(body) - PROBE + 1):
            self.probes.setdefault(body[pos:pos + PROBE], []).append(pos)
        self._public: frozenset[str] | None = None

    def public_windows(self) -> frozenset[str]:
        """Every WINDOW-long slice of the public key's encodings, at each of base64's three
        alignments: a match inside these shows only what the key's certificate shows."""
        if self._public is None:
            found: set[str] = set()
            for form in _public_forms(self.label, self.block):
                for pad in range(3):
                    text = base64.b64encode(b"\0" * pad + form).decode()
                    found.update(text[i:i + WINDOW] for i in range(len(text) - WINDOW + 1))
            self._public = frozenset(found)
        return self._public

    def private_between(self, start: int, end: int) -> bool:
        """Does body[start:end] hold a WINDOW-long slice that is not public?"""
        public = self.public_windows()
        return any(self.body[i:i + WINDOW] not in public for i in range(start, end - WINDOW + 1))


def _public_forms(label: str, block: str) -> list[bytes]:
    data = block.encode()
    try:
        # Unvalidated: only the public half is wanted, and RSA's checks take 100+ ms.
        key: Any = (serialization.load_ssh_private_key(data, None) if "OPENSSH" in label
                    else serialization.load_pem_private_key(
                        data, None, unsafe_skip_rsa_key_validation=True))
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return []  # encrypted or unreadable: its body holds nothing public
    public = key.public_key()
    forms = [public.public_bytes(serialization.Encoding.DER,
                                 serialization.PublicFormat.SubjectPublicKeyInfo)]
    try:
        line = public.public_bytes(serialization.Encoding.OpenSSH,
                                   serialization.PublicFormat.OpenSSH)
        forms.append(base64.b64decode(line.split()[1]))
    except (ValueError, TypeError, UnsupportedAlgorithm):
        pass
    return forms


# The keys of recent tests by body (a module's lab serves many tests); bounded, as a
# key's index takes some 200 kB.
_KEYS: dict[str, KeySecret] = {}
_KEYS_KEPT = 64


def private_keys(text: str, origin: str) -> list[KeySecret]:
    """The private keys in ``text`` (PEM blocks)."""
    found = []
    for match in PEM.finditer(text):
        label = match.group(1)
        if not label.endswith("PRIVATE KEY"):
            continue
        body = "".join(_BODY_HEADERS.sub("", match.group(2)).split())
        if len(body) < WINDOW:
            continue
        key = _KEYS.pop(body, None) or KeySecret(label, match.group(0), body, origin)
        _KEYS[body] = key  # the most recent last
        if len(_KEYS) > _KEYS_KEPT:
            del _KEYS[next(iter(_KEYS))]
        found.append(key)
    return found


def is_key_file(text: str) -> bool:
    """A file of PEM blocks only, one of them a private key: what keys are kept in."""
    private = any(m.group(1).endswith("PRIVATE KEY") for m in PEM.finditer(text))
    return private and not PEM.sub("", text).strip()


@dataclass(frozen=True)
class Password:
    value: str
    origin: str  # "$NAME" or the file and variable it came from; never the value

    def forms(self) -> set[str]:
        """The value as it would be printed raw, in JSON, or quoted for a shell."""
        return {self.value, json.dumps(self.value)[1:-1], shlex.quote(self.value)}


@dataclass
class Secrets:
    keys: list[KeySecret] = field(default_factory=list)
    passwords: list[Password] = field(default_factory=list)

    def add_key(self, key: KeySecret) -> None:
        if all(known.body != key.body for known in self.keys):
            self.keys.append(key)

    def add_password(self, value: str, origin: str) -> None:
        if len(value) >= MIN_PASSWORD and all(p.value != value for p in self.passwords):
            self.passwords.append(Password(value, origin))

    def fingerprint(self) -> frozenset[str]:
        return frozenset([*(k.body for k in self.keys), *(p.value for p in self.passwords)])


# ---- the search -------------------------------------------------------------------------


def find_leaks(text: str, secrets: Secrets) -> list[str]:
    """What of ``secrets`` is in ``text``: each described, never quoted."""
    found = []
    if HEADER.search(text):
        found.append("a private-key PEM header")
    for password in secrets.passwords:
        if any(form in text for form in password.forms()):
            found.append(f"the password {password.origin}")
    if secrets.keys:
        found += [f"{WINDOW}+ characters of the private key {key.origin}"
                  for key in _key_slices(text, secrets)]
    return found


def _key_slices(text: str, secrets: Secrets) -> list[KeySecret]:
    leaked: list[KeySecret] = []
    runs = _RUN.findall(_SQUEEZE.sub("", text))
    for key in secrets.keys:
        if any(_holds_slice(run, key) for run in runs):
            leaked.append(key)
    return leaked


def _holds_slice(run: str, key: KeySecret) -> bool:
    judged: set[int] = set()  # diagonals (run offset - body offset) already extended
    for at in range(0, len(run) - PROBE + 1, STRIDE):
        for pos in key.probes.get(run[at:at + PROBE], ()):
            if at - pos in judged:
                continue
            judged.add(at - pos)
            start, end = _extent(run, at, key.body, pos)
            if end - start >= WINDOW and key.private_between(start, end):
                return True
    return False


def _extent(run: str, at: int, body: str, pos: int) -> tuple[int, int]:
    """The body's span of the longest common stretch through run[at] == body[pos]."""
    start, end = pos, pos + PROBE
    while start > 0 and at - (pos - start) > 0 and run[at - (pos - start) - 1] == body[start - 1]:
        start -= 1
    while end < len(body) and at + (end - pos) < len(run) and run[at + (end - pos)] == body[end]:
        end += 1
    return start, end


# ---- the files a test left ----------------------------------------------------------------


def _under(path: Path, *parts: str) -> bool:
    return tuple(path.parts[-len(parts):]) == parts


# What wlbplan writes on this side, by name: none of these may hold a key, whatever
# else is in it (a CSR or certificate fetched or signed, plans, journals, reports).
_OUTPUTS = frozenset({".csr", ".crt", ".cer", ".json", ".jsonl", ".md", ".sarif", ".xml",
                      ".txt", ".log", ".yaml", ".yml", ".lock"})


def on_appliance(path: Path) -> bool:
    """Is this a file of an emulated appliance (the lab's ``poolN/appliance``, or a test's
    folder standing for it)? That filesystem is where the appliance's keys are made and
    kept by design, in any file (a combined or malformed server.pem too): the promise is
    that they never leave it, so its files are sources of keys, never leaks. The pools'
    hosts get no such pass: a key in a trust store or a journal there is a leak."""
    return "appliance" in path.parts[:-1]


def keeps_keys(path: Path, only_keys: bool) -> bool:
    """May this file (of PEM blocks only, one a private key) hold keys outside an
    appliance? A file of keys alone may: the lab's sshd host key and client identity,
    test CAs' keys, identities the tests make. Not one named as wlbplan's outputs, nor one
    with a certificate or CSR beside the key: what wlbplan fetches and writes on this side
    is certificates and CSRs, so a key among them came from where it must not. A key in
    any other file (a journal, a report, a plan) is a leak wherever it is."""
    named_as_output = path.suffix.lower() in _OUTPUTS or path.name == "known_hosts"
    return only_keys and not named_as_output


def keeps_passwords(path: Path) -> bool:
    """Files that hold the lab's passwords by design, exempt from the password search
    (never from the key search): the operator's ``logins.env``, the emulated WLB
    service's accounts, the emulated xapi's database, which holds the pool's WLB
    password as a real xapi does, the emulated xapi's XenAPI account (its user database),
    and the lab ACME CA's configuration (its EAB keys)."""
    return (path.name in ("logins.env", "pebble-config.json")
            or _under(path, "etc", "wlb", "accounts.json") or _under(path, "pool", "state.json")
            or _under(path, "pool", "xenapi-account.json"))


def lab_passwords(path: Path, text: str) -> Iterator[tuple[str, str]]:
    """(value, origin) of the passwords a lab file holds."""
    if path.name == "logins.env":
        for line in text.splitlines():
            name, sep, value = line.partition("=")
            if sep and PASSWORD_NAME.search(name) and not name.startswith("#"):
                yield value.strip(), f"{name.strip()} of {path.name}"
    elif _under(path, "etc", "wlb", "accounts.json"):
        try:
            value = json.loads(text).get("password")
        except (ValueError, AttributeError):
            return
        if isinstance(value, str):
            yield value, "of the appliance's WLB account"


@dataclass
class _Seen:
    stat: tuple[int, int, int]
    key_blocks: str  # the file's private-key PEM blocks, "" when it holds none
    key_file: bool  # PEM blocks only
    only_keys: bool  # and no block but private keys
    passwords: list[tuple[str, str]]
    clean_for: frozenset[str] | None = None

    def keys(self, path: str) -> list[KeySecret]:
        return private_keys(self.key_blocks, f"in {path}") if self.key_blocks else []


class FileCache:
    """What each file held when last read, by path and (inode, size, mtime)."""

    def __init__(self) -> None:
        self.seen: dict[str, _Seen] = {}

    def look(self, path: str, st: os.stat_result) -> tuple[_Seen, str | None]:
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        known = self.seen.get(path)
        if known is not None and known.stat == stamp:
            return known, None
        text = read_text(Path(path))
        found = list(PEM.finditer(text)) if "PRIVATE KEY" in text else []
        keys = [m.group(0) for m in found if m.group(1).endswith("PRIVATE KEY")]
        seen = _Seen(stamp, "\n".join(keys), bool(keys) and is_key_file(text),
                     len(keys) == len(found), list(lab_passwords(Path(path), text)))
        self.seen[path] = seen
        return seen, text


def read_text(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_READ).decode("utf-8", "surrogateescape")
    except OSError:
        return ""


def walk(root: str) -> Iterator[tuple[str, os.stat_result]]:
    """Regular files under ``root``, never through a link (pytest's ``…current`` links
    name folders walked under their own names). Paths stay strings: it runs per test."""
    try:
        if os.path.islink(root):
            return
        entries = list(os.scandir(root))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in _SKIP_DIRS:
                    yield from walk(entry.path)
            elif entry.is_file(follow_symlinks=False):
                yield entry.path, entry.stat(follow_symlinks=False)
        except OSError:
            continue


def scan_files(roots: Iterable[Path], secrets: Secrets, cache: FileCache,
               shown: Path) -> list[str]:
    """Collect the keys and lab passwords under ``roots`` into ``secrets``, then search
    every other file for them; returns the leaks, each naming its file."""
    files = [(path, *cache.look(path, st)) for root in roots for path, st in walk(str(root))]
    for path, seen, _text in files:
        for key in seen.keys(path):
            secrets.add_key(key)
        for value, origin in seen.passwords:
            secrets.add_password(value, origin)
    mark = secrets.fingerprint()
    leaks = []
    for name, seen, text in files:
        if seen.clean_for == mark:
            continue
        path = Path(name)
        where = f"file {_relative(path, shown)}"
        holds_keys = on_appliance(path)
        if seen.key_file and not holds_keys:
            if not keeps_keys(path, seen.only_keys):
                leaks.append(f"{where}: a private key in a file that is not a key file")
            continue
        found = find_leaks(read_text(path) if text is None else text, secrets)
        if holds_keys:
            found = [leak for leak in found if leak.startswith("the password")]
        if keeps_passwords(path):
            found = [leak for leak in found if not leak.startswith("the password")]
        leaks += [f"{where}: {leak}" for leak in found]
        seen.clean_for = None if found else mark
    return leaks


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


# ---- what a test captured ------------------------------------------------------------------


@dataclass
class Recorder:
    """What one test got: texts by source, and the passwords it handed out."""

    texts: list[tuple[str, str]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    env: list[tuple[str, str]] = field(default_factory=list)

    def text(self, source: str, value: object) -> None:
        if isinstance(value, bytes):
            value = value.decode("utf-8", "surrogateescape")
        if isinstance(value, str) and value:
            self.texts.append((source, value))

    def environment(self, env: object) -> None:
        if isinstance(env, dict):
            self.env += [(str(k), str(v)) for k, v in env.items()
                         if PASSWORD_NAME.search(str(k)) and v is not None]


_ACTIVE: list[Recorder] = []


def record(source: str, *texts: str | bytes) -> None:
    """Add what a test got some other way (a run in this process whose output went to a
    buffer) to what its scan reads."""
    for text in texts:
        if _ACTIVE:
            _ACTIVE[-1].text(source, text)


_NOT_TESTS = (str(Path(wlbplan.__file__).parent), sys.prefix, sys.base_prefix, "<")


def _from_test_code() -> bool:
    """Was the wrapped call made by test code, not by the package under test (whose
    subprocesses' output is its own input, not what the test is shown) nor a library?"""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename in (subprocess.__file__, __file__):
        frame = frame.f_back  # type: ignore[assignment]
    return frame is not None and not frame.f_code.co_filename.startswith(_NOT_TESTS)


def _program(args: object) -> str:
    argv = [args] if isinstance(args, str | bytes | os.PathLike) else list(args)  # type: ignore[call-overload]
    shown = [os.path.basename(os.fsdecode(argv[0]))] + [os.fsdecode(a) for a in argv[1:3]]
    return " ".join(shown)


class _Patches:
    """Subprocess, CliRunner and error recording, installed for the session."""

    def __init__(self) -> None:
        self.undo: list[tuple[Any, str, Any]] = []

    def _set(self, owner: Any, name: str, new: Any) -> None:
        self.undo.append((owner, name, getattr(owner, name)))
        setattr(owner, name, new)

    def install(self) -> None:
        popen_init = subprocess.Popen.__init__
        communicate = subprocess.Popen.communicate

        def init(self: subprocess.Popen[Any], *args: Any, **kw: Any) -> None:
            if _ACTIVE and _from_test_code():
                _ACTIVE[-1].environment(kw.get("env"))
            popen_init(self, *args, **kw)

        def talk(self: subprocess.Popen[Any], *args: Any, **kw: Any) -> Any:
            out, err = communicate(self, *args, **kw)
            if _ACTIVE and _from_test_code():
                where = f"the output of `{_program(self.args)} …`"
                _ACTIVE[-1].text(f"{where} (stdout)", out)
                _ACTIVE[-1].text(f"{where} (stderr)", err)
            return out, err

        self._set(subprocess.Popen, "__init__", init)
        self._set(subprocess.Popen, "communicate", talk)

        from click.testing import CliRunner

        invoke = CliRunner.invoke

        def invoked(self: CliRunner, cli: Any, args: Any = None, *more: Any, **kw: Any) -> Any:
            result = invoke(self, cli, args, *more, **kw)
            if _ACTIVE:
                recorder = _ACTIVE[-1]
                recorder.environment(kw.get("env"))
                recorder.text("a CliRunner result (stdout)", result.stdout_bytes)
                recorder.text("a CliRunner result (stderr)", result.stderr_bytes or b"")
                if result.exception is not None:
                    recorder.errors.append(result.exception)
            return result

        self._set(CliRunner, "invoke", invoked)

        error_init = WlbplanError.__init__

        def made(self: WlbplanError, *args: Any) -> None:
            error_init(self, *args)
            if _ACTIVE:
                _ACTIVE[-1].errors.append(self)

        self._set(WlbplanError, "__init__", made)

    def remove(self) -> None:
        for owner, name, old in reversed(self.undo):
            setattr(owner, name, old)
        self.undo.clear()


# ---- the plugin ---------------------------------------------------------------------------


def _paths_in(value: object, depth: int = 0, seen: set[int] | None = None) -> Iterator[Path]:
    """Paths a fixture value holds: itself, or in its fields, a few levels deep."""
    seen = set() if seen is None else seen
    if depth > 3 or id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, Path):
        yield value
    elif isinstance(value, dict):
        for item in list(value.values())[:100]:
            yield from _paths_in(item, depth + 1, seen)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in list(value)[:100]:
            yield from _paths_in(item, depth + 1, seen)
    elif is_dataclass(value) and not isinstance(value, type):
        for f in fields(value):
            yield from _paths_in(getattr(value, f.name, None), depth + 1, seen)
    elif _ours(type(value)) and isinstance(getattr(value, "__dict__", None), dict):
        for item in list(vars(value).values())[:100]:
            yield from _paths_in(item, depth + 1, seen)


def _ours(kind: type) -> bool:
    """A class of the tests or of wlbplan: its objects' fields are worth a look."""
    module = sys.modules.get(kind.__module__)
    source = getattr(module, "__file__", None) or ""
    return source.startswith(str(TESTS)) or kind.__module__.startswith("wlbplan")


@dataclass
class _Test:
    recorder: Recorder
    environ: dict[str, str]
    roots: set[Path] = field(default_factory=set)
    failures: list[tuple[str, str]] = field(default_factory=list)


_TEST = pytest.StashKey[_Test]()


class LeakScan:
    def __init__(self) -> None:
        self.cache = FileCache()
        self.known_roots: set[str] | None = None
        self.basetemp: Path | None = None
        self.last_secrets = Secrets()

    def start(self, item: pytest.Item, basetemp: Path) -> Recorder:
        self.basetemp = basetemp
        if self.known_roots is None:
            self.known_roots = set()
        test = _Test(Recorder(), dict(os.environ))
        item.stash[_TEST] = test
        _ACTIVE.append(test.recorder)
        return test.recorder

    def stop(self, recorder: Recorder) -> None:
        if recorder in _ACTIVE:
            _ACTIVE.remove(recorder)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        test = item.stash.get(_TEST, None)
        if test is None:
            return report
        if report.failed:
            test.failures.append((f"the {report.when} failure report", report.longreprtext))
        if report.when in ("setup", "call"):
            self._remember(item, test)
        if report.when == "teardown":
            began = time.perf_counter()
            leaks = self.scan(test, report)
            report.user_properties.append((_SECONDS, time.perf_counter() - began))
            del item.stash[_TEST]  # items live as long as the session: let texts go
            if leaks:
                # The sections that leaked are not shown again with the failure.
                report.sections = [(title, text) for title, text in report.sections
                                   if not find_leaks(text, self.last_secrets)]
                report.outcome = "failed"
                report.longrepr = ("leak scan: secrets reached what this test captured or "
                                   "left (see tests/leakscan.py):\n"
                                   + "\n".join(f"  - {leak}" for leak in sorted(set(leaks))))
        return report

    def _remember(self, item: pytest.Item, test: _Test) -> None:
        """The folders its fixtures hand the test, and the passwords it set in the
        environment (monkeypatch undoes them before teardown ends)."""
        funcargs = getattr(item, "funcargs", None) or {}
        for value in funcargs.values():
            for path in _paths_in(value):
                root = self._root_of(path)
                if root is not None:
                    test.roots.add(root)
        for name, value in os.environ.items():
            if PASSWORD_NAME.search(name) and test.environ.get(name) != value:
                test.recorder.env.append((name, value))

    def _root_of(self, path: Path) -> Path | None:
        base = self.basetemp
        if base is None or not path.is_absolute():
            return None
        try:
            return base / path.relative_to(base).parts[0]
        except (ValueError, IndexError):
            return None

    def _new_roots(self) -> set[Path]:
        if self.basetemp is None or self.known_roots is None:
            return set()
        try:
            now = set(os.listdir(self.basetemp))
        except OSError:
            return set()
        new = now - self.known_roots
        self.known_roots = now
        return {self.basetemp / name for name in new}

    def scan(self, test: _Test, report: pytest.TestReport) -> list[str]:
        recorder = test.recorder
        secrets = Secrets()
        for name, value in recorder.env:
            secrets.add_password(value, f"${name}")
        roots = sorted(test.roots | self._new_roots())
        leaks = scan_files(roots, secrets, self.cache, self.basetemp or Path("/"))
        self.last_secrets = secrets
        texts = [*((title.lower(), text) for title, text in report.sections),
                 *recorder.texts, *test.failures,
                 *((f"a {type(e).__name__} message", str(e)) for e in recorder.errors)]
        for _source, text in list(texts):
            texts += [(f"crash log {log}", read_text(Path(log)))
                      for log in CRASH_LOG.findall(text) if Path(log).is_file()]
        for source, text in texts:
            leaks += [f"{source}: {leak}" for leak in find_leaks(text, secrets)]
        base = f"{self.basetemp}{os.sep}" if self.basetemp else None
        return [leak.replace(base, "") for leak in leaks] if base else leaks


_PATCHES = _Patches()
_SECONDS = "leakscan_seconds"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line: how long the scans took (summed over workers), for the suite's budget."""
    spent = [value for reports in terminalreporter.stats.values() for report in reports
             for name, value in getattr(report, "user_properties", ()) if name == _SECONDS]
    if spent:
        terminalreporter.write_line(f"leak scan: {len(spent)} tests scanned in "
                                    f"{sum(spent):.1f}s")


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(LeakScan(), "leakscan-session")
    if not _PATCHES.undo:
        _PATCHES.install()


def pytest_unconfigure(config: pytest.Config) -> None:
    _PATCHES.remove()


@pytest.fixture(autouse=True)
def _leak_scan(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Record what this test captures; the scan itself runs once its teardown is over
    (LeakScan.pytest_runtest_makereport), so module fixtures' last words count too."""
    plugin: LeakScan = request.config.pluginmanager.get_plugin("leakscan-session")  # type: ignore[assignment]
    recorder = plugin.start(request.node, tmp_path_factory.getbasetemp())
    yield
    plugin.stop(recorder)
