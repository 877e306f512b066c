"""No injection (issue 10, SECURITY.md): every hostile value (tests/hostile.py) in every
string field of the spec (spec_fields.FIELDS, checked against the schema) is refused by
``wlbplan validate`` at its FILE:LINE:COL, or accepted; the accepted ones go through
``wlbplan apply`` and ``wlbplan plan`` on the lab, over both connectors, and are handled
literally: the paths are the files written, the arguments the ones received, the subject
the CSR's. No value ever creates the canary.

One module: the validation sweep says which values each field accepts, and the lab runs
must place every accepted value that is not a plain word (a plain word — letters, digits,
``._-`` — is all the schema lets into names, hosts and logins, and nothing reads it as
anything but itself).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import ssl
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from corpus_lab import (
    LabCA,
    fits_a_folder_name,
    hostile_chain,
    pack_subjects,
    recorded,
    restart_wrapper,
    shell_command,
)
from cryptography import x509
from cryptography.x509.oid import NameOID
from hostile import BY_ID, VALUES, could_run, plain
from inprocess import Run, unprintable_lines, wlbplan
from spec_fields import (
    BASE_FILES,
    FIELDS,
    NOT_READ,
    Entry,
    Field,
    dump,
    placements,
    schema_string_fields,
    spec_of,
)

from wlbplan.core.steps.appliance import subject_line
from wlbplan.lab import control, pki, xe_state
from wlbplan.model.spec import CertificateRequest, Subject
from wlbplan.model.text import visible
from wlbplan.spec.report import format_path

REMOTE_PATHS = [f.name for f in FIELDS if f.kind == "remote_path"]
# pool.tls.ca_file is opened by Python's ssl on this machine (XenAPI), never in a command:
# validate checks every value in it; this lab reaches its pools over SSH and locally.
LOCAL_FILES = [f.name for f in FIELDS if f.kind == "local_path" and "ssh" not in f.where
               and "tls" not in f.where]
SSH_FILES = [f.name for f in FIELDS if f.kind == "local_path" and "ssh" in f.where]
SUBJECT = {k: f"targets.[].certificate.request.subject.{k}"
           for k in ("ST", "L", "O", "OU", "emailAddress")}
ARGV = "targets.[].certificate.signer.command.[]"
XE = "targets.[].pool.xe"
GETENT = "targets.[].pool.getent"
RESTART = "targets.[].wlb.restart"
FQDN = "wlb1.lab.test"
# Fields that take any text (a program, a shell command, subject values): the lab places
# every value they accept. Every other text field lets plain words only.
SPEC_TEXT = {XE, GETENT, RESTART, *SUBJECT.values()}


@pytest.fixture(scope="module")
def canary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one file every value that could run a command would create (a short path:
    subject values that name it must fit RFC 5280's caps)."""
    return tmp_path_factory.mktemp("c") / "C"


# ---- the table and the corpus ----------------------------------------------------------------

def test_the_table_lists_every_string_field_of_the_schema() -> None:
    listed = {f.where for f in FIELDS}
    missing = schema_string_fields() - listed - set(NOT_READ)
    assert not missing, f"string fields of the schema missing from spec_fields.FIELDS: {missing}"
    assert not listed - schema_string_fields(), "FIELDS lists fields the schema does not have"


def test_the_corpus_holds_what_the_issue_names() -> None:
    texts = [v.text for v in VALUES]
    assert len(VALUES) >= 50
    for needle in (";", "&&", "$(", "`", "'", '"', "\n", "\r", "\x00", "*", "?", "[", "~",
                   "%n", "\\", "=", " ", "\t", "\u202e", "\u200b", "🔥", "é"):
        assert any(needle in t for t in texts), needle
    assert any(t.startswith("--") for t in texts)
    assert {"-", "..", "../../.."} <= set(texts)
    assert sum(map(could_run, VALUES)) >= 20  # each aims at the canary
    lengths = {len(t) for t in texts if plain(t)}
    for cap in (32, 63, 64, 128, 253, 255):  # the schema's caps and NAME_MAX, each side
        assert {cap, cap + 1} <= lengths, cap


# ---- validate: refused at FILE:LINE:COL, or accepted -------------------------------------------

Key = tuple[str, str, str]  # (field name, placement label, value id)


@dataclass
class Sweep:
    accepted: set[Key] = field(default_factory=set)
    refused: set[Key] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    runs: int = 0

    def accepted_ids(self, name: str, *labels: str) -> list[str]:
        """Value ids ``name`` accepted (in any of ``labels``, default any), corpus order."""
        return [v.id for v in VALUES if any(
            (name, label, v.id) in self.accepted
            for label in (labels or ("as-is", "in-path", "dns", "ip")))]


def _group(f: Field) -> str:
    """Local files are checked only once the rest of the spec is sound, so they go apart;
    so does the CSR's output (a missing one is no error, a missing certificate is)."""
    if f.kind == "local_path":
        return "ssh-files" if "ssh" in f.where else \
            "csr-out" if f.where[-1] == "csr_out" else "files"
    return "other"


def _validate(spec: Path, entries: list[tuple[Entry, Key]], base: Path,
              sweep: Sweep) -> list[tuple[Entry, Key]]:
    """Validate one spec holding ``entries``; record each verdict; return the entries no
    verdict could be given for (their files were not checked: the spec failed elsewhere)."""
    data, places = spec_of([entry for entry, _ in entries], base)
    spec.write_text(dump(data))
    run = wlbplan("validate", spec)
    sweep.runs += 1
    said = run.out + run.err
    if run.code not in (0, 1) or "Traceback" in said or "Internal error" in said:
        sweep.problems.append(f"{[k for _, k in entries]}: {run.said}")
        return []
    if run.code == 0:
        sweep.accepted.update(k for _, k in entries)
        return []
    located = re.compile(rf"^{re.escape(str(spec))}:\d+:\d+: error: (.*)$", re.M)
    errors = located.findall(run.out)
    unsure = []
    for (entry, key), place in zip(entries, places, strict=True):
        f = entry[0]
        if any(_names(error, place, f) for error in errors):
            sweep.refused.add(key)
        elif len(entries) == 1:
            sweep.problems.append(f"{key}: refused without naming {format_path(place)} at "
                                  f"FILE:LINE:COL:\n{run.said}")
        elif _group(f) == "other" and f.in_target and \
                all(re.match(r"targets\[\d+\]", e) for e in errors) and \
                not any(_names(e, place[:2], f) for e in errors):
            # Each target's rules read that target only: a clean one is accepted, when
            # every error is another target's.
            sweep.accepted.add(key)
        else:
            unsure.append((entry, key))
    return unsure


def _names(error: str, place: tuple[str | int, ...], f: Field) -> bool:
    """Does the error (``PATH: message``) name the field (or a part of it), or, for a
    list's item or a mapping's key, the list or mapping itself (a placeholder missing from
    the signer's command; a key that is not text)?"""
    where = visible(format_path(place))
    if error.startswith(where) and error[len(where):][:1] in (":", ".", "["):
        return True
    holder = visible(format_path(place[:-1]))
    return f.where[-1] in ("[]", "{name}") and error.startswith(f"{holder}: ")


def _make_file(text: str, base: Path) -> None:
    """The file an in-path local value names, when it lies inside ``base``."""
    path = Path(text)
    try:
        if base in Path(os.path.realpath(path)).parents:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("-----BEGIN CERTIFICATE-----\n")
    except (OSError, ValueError):
        pass  # a name the OS refuses: validate must say so


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory, canary: Path) -> Sweep:
    """Every value in every field (each placement), through ``wlbplan validate``: many
    fields per spec (each in a target of its own), each field alone when its spec failed
    for another's reason."""
    base = tmp_path_factory.mktemp("sweep")
    # Real certificates: a field under test must be the only reason a spec is refused
    # (an ACME target names acme.root beside its account key file).
    real = pki.build("wlbplan hardening base", ca=True).cert_pem
    for name in BASE_FILES:
        (base / name).write_bytes(real)
    groups: dict[tuple[str, str, str], list[tuple[Entry, Key]]] = defaultdict(list)
    for value in VALUES:
        for f in FIELDS:
            for label, text in placements(f, value.value(canary)):
                text = text.replace("{base}", str(base))
                if f.kind == "local_path" and label == "in-path":
                    _make_file(text, base)
                # A spec holds a default or a resolve entry once, and one value of a file
                # that is missing fails the others' checks: their placements apart.
                apart = label if not f.in_target or _group(f) != "other" else ""
                groups[(value.id, _group(f), apart)].append(((f, text), (f.name, label,
                                                                         value.id)))
    made = Sweep()
    spec = base / "spec.yaml"
    for entries in groups.values():
        for unsure in _validate(spec, entries, base, made):
            _validate(spec, [unsure], base, made)
    return made


def test_every_value_in_every_field_is_refused_at_its_line_or_accepted(
        sweep: Sweep, canary: Path) -> None:
    assert not sweep.problems, "\n\n".join(sweep.problems[:5])
    every = {(f.name, label, v.id) for v in VALUES for f in FIELDS
             for label, _ in placements(f, v.value(canary))}
    assert sweep.accepted | sweep.refused == every
    assert not sweep.accepted & sweep.refused
    assert not canary.exists()


def test_what_the_schema_lets_into_names_hosts_and_logins_is_plain(sweep: Sweep) -> None:
    """Names, hosts, logins, variable names, alt names, enums, dates: only plain words
    pass, so none of them needs the lab to show it is taken literally."""
    for f in FIELDS:
        if f.kind in ("text", "alt_name", "resolve_key", "resolve_value") and \
                f.name not in SPEC_TEXT:
            odd = [i for i in sweep.accepted_ids(f.name) if not plain(BY_ID[i].text)]
            assert not odd, f"{f.name} accepts {odd}: place them in the lab runs below"



def test_every_subject_field_keeps_each_value_as_one_attribute(
        sweep: Sweep, canary: Path, tmp_path: Path) -> None:
    """The -subj wlbplan builds, read by the real ``openssl req``: whatever a value holds,
    it is that field's one value (the lab below sends every value through each connector)."""
    key = tmp_path / "k.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", key], check=True, capture_output=True)
    oids = {"ST": NameOID.STATE_OR_PROVINCE_NAME, "L": NameOID.LOCALITY_NAME,
            "O": NameOID.ORGANIZATION_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
            "emailAddress": NameOID.EMAIL_ADDRESS}
    for value in VALUES:
        fields = {k: value.value(canary) for k in oids
                  if value.id in sweep.accepted_ids(f"targets.[].certificate.request."
                                                    f"subject.{k}")}
        if not fields:
            continue
        request = CertificateRequest("wlb.example.test", subject=Subject(**fields))
        out = tmp_path / "r.csr"
        subprocess.run(["openssl", "req", "-new", "-key", key, "-utf8", "-subj",
                        subject_line(request), "-out", out], check=True, capture_output=True)
        subject = x509.load_pem_x509_csr(out.read_bytes()).subject
        for name, text in fields.items():
            assert [a.value for a in subject.get_attributes_for_oid(oids[name])] == [text], \
                (value.id, name)
        assert len(subject.rdns) == len(fields) + 1, value.id


# ---- the lab: apply and plan with every accepted value -------------------------------------------



def _odd(sweep: Sweep, names: list[str], *labels: str) -> list[str]:
    """Ids of the values some of ``names`` accept that are not plain words."""
    found = {i for n in names for i in sweep.accepted_ids(n, *labels)}
    return [v.id for v in VALUES if v.id in found and not plain(v.text)]


@dataclass
class Applied:
    connector: str
    lab: control.Lab
    folder: Path
    spec: Path
    canary: Path
    placed: dict[str, set[str]]
    remote: str
    local: str
    extra_args: list[str]
    restart_args: list[str]
    subjects: list[dict[str, str]]
    runs: list[Run] = field(default_factory=list)

    def csr(self, index: int) -> Path:
        return Path(self.local) / f"req{index}.csr"


def _chain_ids(sweep: Sweep, names: list[str], canary: Path, label: str = "in-path"
               ) -> list[str]:
    """The values some field of ``names`` accepts (``label``, or as they are) that are not
    plain words and can name folders, the ones climbing back (``..``) last, once the chain
    is deep (the spec made of them is validated again when applied)."""
    found = set(_odd(sweep, names, label, "as-is"))
    ids = [v.id for v in VALUES if v.id in found and fits_a_folder_name(v.value(canary))]
    return sorted(ids, key=lambda i: ".." in BY_ID[i].text)


def _subjects(sweep: Sweep, canary: Path) -> list[dict[str, str]]:
    texts = {k: [BY_ID[i].value(canary) for i in _odd(sweep, [n])] for k, n in SUBJECT.items()}
    for count in range(1, 12):
        packed = pack_subjects(texts, count)
        if packed is not None:
            return packed
    raise AssertionError("the subject values do not fit in 11 CSRs")


def _build(lab: control.Lab, folder: Path, sweep: Sweep, canary: Path,
           subjects: list[dict[str, str]]) -> Applied:
    ssh = lab.ssh_port is not None
    placed: dict[str, set[str]] = defaultdict(set)
    # Remote paths through one chain of hostile folders, xe through another.
    remote_ids = _chain_ids(sweep, REMOTE_PATHS, canary)
    remote, real = hostile_chain(folder / "r", [BY_ID[i].value(canary) for i in remote_ids])
    for name in REMOTE_PATHS:
        placed[name].update(remote_ids)
    # xe and getent (the coordinator's programs) through one chain of their own.
    xe_ids = _chain_ids(sweep, [XE, GETENT], canary)
    xe_dir, xe_real = hostile_chain(folder / "x", [BY_ID[i].value(canary) for i in xe_ids])
    placed[XE].update(xe_ids)
    placed[GETENT].update(xe_ids)
    layout = lab.layout("pool1")
    coordinator = xe_state.coordinator(layout)
    (real / "certs").symlink_to(layout.certs_dir)
    (real / "trust").symlink_to(coordinator.stunnel_dir)
    (xe_real / "xe").symlink_to(layout.xe)
    (xe_real / "getent").symlink_to(layout.getent)
    cert, key = f"{remote}/certs/server.pem", f"{remote}/certs/server.key"
    conf = layout.stunnel_conf.read_text()
    (real / "wlb.conf").write_text(conf.replace(str(layout.cert), cert)
                                   .replace(str(layout.key), key))
    # Local files through another; the signer through a third (its arguments).
    local_ids = _chain_ids(sweep, [*LOCAL_FILES, *SSH_FILES], canary)
    local, lreal = hostile_chain(folder / "l", [BY_ID[i].value(canary) for i in local_ids])
    for name in LOCAL_FILES + (SSH_FILES if ssh else []):
        placed[name].update(local_ids)
    argv_ids = _odd(sweep, [ARGV])
    signer_ids = _chain_ids(sweep, [ARGV], canary, "as-is")
    signer_dir, sreal = hostile_chain(folder / "s", [BY_ID[i].value(canary) for i in signer_ids])
    ca = LabCA.make(folder / "ca")
    shutil.copy(ca.root, lreal / "root.pem")
    shutil.copy(ca.intermediate, lreal / "int.pem")
    ca.signer(sreal / "sign.py", folder / "signer.json")
    extra_args = [BY_ID[i].value(canary) for i in argv_ids]
    placed[ARGV].update(argv_ids)
    # The restart: a shell command by contract; its quoted words arrive as written.
    restart_ids = _odd(sweep, [RESTART])
    restart_args = [BY_ID[i].value(canary) for i in restart_ids]
    restart_wrapper(real / "restart", folder / "restart.json", layout.restart)
    placed[RESTART].update(restart_ids)
    for subject in subjects:
        for name, text in subject.items():
            placed[SUBJECT[name]].update(
                i for i in _odd(sweep, [SUBJECT[name]]) if BY_ID[i].value(canary) in text)
    data = yaml.safe_load(lab.spec_path.read_text())
    for index, target in enumerate(data["targets"]):
        request = {"common_name": lab.targets[index].fqdn,
                   "alt_names": [f"DNS:{lab.targets[index].fqdn}"],
                   "subject": subjects[index], "key": {"type": "rsa", "bits": 2048},
                   "csr_out": f"{local}/req{index}.csr"}
        target["certificate"] = {"source": "ca-signed", "request": request}
        if not ssh:
            target["pool"]["connection"] = target["wlb"]["connection"] = "local"
    first = data["targets"][0]
    first["pool"].update(xe=f"{xe_dir}/xe", getent=f"{xe_dir}/getent",
                         trust_dir=f"{remote}/trust", state_dir=f"{remote}/state")
    first["wlb"].update(paths={"cert": cert, "key": key}, stunnel_conf=f"{remote}/wlb.conf",
                        restart=shell_command([f"{remote}/restart", *restart_args]))
    first["certificate"].update(
        signed=f"{local}/leaf.pem", intermediates=[f"{local}/int.pem"], root=f"{local}/root.pem",
        signer={"command": [f"{signer_dir}/sign.py", "{csr}", "{cert}", *extra_args]})
    if ssh:
        # The first target's own SSH files, the defaults' for the others: both fields.
        own = data["defaults"]["ssh"]
        for name, file in (("identity_file", "id"), ("known_hosts", "kh")):
            shutil.copy(own[name], lreal / file)
            shutil.copy(own[name], lreal / f"{file}2")
            own[name] = f"{local}/{file}2"
        first["ssh"] = {"identity_file": f"{local}/id", "known_hosts": f"{local}/kh"}
    spec = folder / "spec.yaml"
    spec.write_text(dump(data))
    return Applied("ssh" if ssh else "local", lab, folder, spec, canary, placed, remote,
                   local, extra_args, restart_args, subjects)


@pytest.fixture(scope="module", params=["local", pytest.param("ssh", marks=pytest.mark.ssh)])
def applied(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            sweep: Sweep, canary: Path) -> Iterator[Applied]:
    """A lab with every accepted value in its spec: applied (every target's key and CSR,
    pool1's signer), applied again (pool1's install: the others wait for their CA), then
    planned (nothing left to do; the CSRs still match their subjects)."""
    folder = tmp_path_factory.mktemp(f"injection-{request.param}")
    subjects = _subjects(sweep, canary)
    lab = control.up(folder / "lab", targets=len(subjects), hosts=1,
                     ssh=request.param == "ssh")
    try:
        made = _build(lab, folder, sweep, canary, subjects)
        made.runs.append(wlbplan("apply", made.spec, "--auto-approve"))
        made.runs.append(wlbplan("apply", made.spec, "--auto-approve", "--target", "pool1"))
        made.runs.append(wlbplan("plan", made.spec, "--format", "json", "--detailed-exitcode"))
        yield made
    finally:
        control.down(lab.dir)


@pytest.mark.lab
def test_the_lab_places_every_accepted_value(sweep: Sweep, applied: Applied) -> None:
    """Each value a field accepts that is not a plain word is in this lab's spec (xe as a
    bare name: see test_xe_is_run_by_the_name_given)."""
    ssh_only = set(SSH_FILES) if applied.connector == "local" else set()
    subject = set(SUBJECT.values())
    for name in SPEC_TEXT | set(REMOTE_PATHS) | set(LOCAL_FILES) | {ARGV} | set(SSH_FILES):
        if name in ssh_only or name in subject:
            continue  # SSH settings reach the SSH connector only; subjects: below
        # As bare names: xe in test_xe_is_run_by_the_name_given; getent is the same quoted
        # word of the same script.
        labels = ("in-path",) if name in (XE, GETENT) else ()
        missing = set(_odd(sweep, [name], *labels)) - applied.placed[name]
        assert not missing, f"{name}: accepted but not in the lab: {sorted(missing)}"
    # The -subj argument is one word holding every field: each value crosses each
    # connector in one of the fields that accept it (each field: the openssl test above).
    placed = set().union(*(applied.placed[n] for n in subject))
    missing = set(_odd(sweep, sorted(subject))) - placed
    assert not missing, f"subject values not in the lab: {sorted(missing)}"


@pytest.mark.lab
def test_accepted_values_are_applied_literally(applied: Applied) -> None:
    first, second, plan = applied.runs
    for run in applied.runs:
        assert "Traceback" not in run.err, run.said
        assert "Internal error" not in run.err, run.said
        assert not unprintable_lines(run), unprintable_lines(run)
    assert first.code == 0, first.said
    assert second.code == 0, second.said
    assert plan.code == 2, plan.said  # the other targets wait for a CA: nothing to do here
    assert not applied.canary.exists()
    statuses = {t["name"]: t["status"] for t in json.loads(plan.out)["targets"]}
    assert statuses == {"pool1": "no_changes", **{t: "waiting" for t in list(statuses)[1:]}}
    local = applied.local
    # The signer got every argument as written, and the CSR and certificate paths.
    assert recorded(applied.folder / "signer.json") == [
        str(Path(f"{local}/req0.csr")), str(Path(f"{local}/leaf.pem")), *applied.extra_args]
    assert recorded(applied.folder / "restart.json") == applied.restart_args
    # What was written through the hostile paths is what stunnel serves.
    leaf = Path(f"{local}/leaf.pem").read_bytes()
    layout = applied.lab.layout("pool1")
    served = _served(applied.lab)
    assert x509.load_pem_x509_certificate(leaf) == served
    assert layout.key.stat().st_mode & 0o777 == 0o600
    assert Path(f"{applied.remote}/state").is_dir()
    assert not any(Path(f"{applied.remote}/state").iterdir()), "the lock was left"
    for index, subject in enumerate(applied.subjects):
        csr = x509.load_pem_x509_csr(applied.csr(index).read_bytes())
        for name, text in subject.items():
            oid = getattr(NameOID, _OIDS[name])
            assert [a.value for a in csr.subject.get_attributes_for_oid(oid)] == [text], name


_OIDS = {"ST": "STATE_OR_PROVINCE_NAME", "L": "LOCALITY_NAME", "O": "ORGANIZATION_NAME",
         "OU": "ORGANIZATIONAL_UNIT_NAME", "emailAddress": "EMAIL_ADDRESS"}


def _served(lab: control.Lab) -> x509.Certificate:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", lab.target("pool1").port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=FQDN) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


@pytest.mark.lab
def test_xe_is_run_by_the_name_given(sweep: Sweep, applied: Applied) -> None:
    """``pool.xe`` as a bare name (looked up on PATH): each accepted value, one target
    each, is run as that one program name; no such program, so each pool is refused with
    xe's failure, said on one line."""
    ids = _odd(sweep, [XE], "as-is")
    data: dict[str, Any] = yaml.safe_load(applied.spec.read_text())
    base = data["targets"][0]
    targets = []
    for n, i in enumerate(ids):
        targets.append({
            "name": f"xe{n}",
            "pool": {**base["pool"], "xe": BY_ID[i].value(applied.canary),
                     "state_dir": f"/var/lib/wlbplan/xe{n}"},
            "wlb": {"address": FQDN, "port": 1, "connection": "local",
                    "paths": {"cert": f"/nonexistent/xe{n}/server.pem"}},
            "certificate": {"source": "self-signed"}})
    data["targets"] = targets
    spec = applied.folder / "xe.yaml"
    spec.write_text(dump(data))
    run = wlbplan("plan", spec)
    assert run.code == 1, run.said
    assert "Traceback" not in run.err, run.said
    assert not unprintable_lines(run), unprintable_lines(run)
    failed = re.findall(r"^  - (xe\d+) \(unreachable\): ", run.err, re.M)
    assert sorted(failed) == sorted(t["name"] for t in targets), run.said
    assert not applied.canary.exists()
