"""Install stage: what ``wlbplan plan`` refuses, what it accepts, and whether its verdict on
"will the pool accept it" is OpenSSL's.

One lab, brought once to the eve of the install stage (the appliance holds a pending key
and CSR); each case makes the ``signed`` certificate (and intermediates) a CA might send
back, plans with it, and checks:

* the exit code (1 refused, 2 a plan with changes) and the words of the refusal;
* nothing changed on the appliance or on any pool host (sha256 + mode of every file);
* the independent oracle, ``openssl verify -CAfile root.pem -untrusted int.pem
  -verify_hostname wlb1.lab.test -purpose sslserver leaf.pem``, run here: wlbplan refuses
  *for a pool-acceptance reason* exactly when OpenSSL refuses. ``certs.pool_accepts`` (the
  function behind the gate) is compared with it too.

Why each case is refused (``reason``):

========================  ===========  =========================================================
case                      reason       what OpenSSL says
========================  ===========  =========================================================
good                      (accepted)   OK
intermediates-reordered   (accepted)   OK (order does not matter to verify); plan notes say so
name-only-in-san          (accepted)   OK
name-only-in-cn           (accepted)   OK through the CN fallback; WLB-CERT-NO-SAN warning
missing-intermediate      pool         unable to get local issuer certificate
cn-mismatch               pool         hostname mismatch
expired-leaf              pool         certificate has expired (wlbplan: policy rule, first)
expired-intermediate      pool         certificate has expired at depth 1 (same)
not-yet-valid-leaf        pool         certificate is not yet valid (same)
another-key               key          OK - a chain check cannot see whose key it is; wlbplan
                                       refuses because the appliance holds no matching key
rsa-1024                  policy       OK (openssl verify sets no security level)
sha1                      policy       OK (same; ``-auth_level 1`` would refuse it)
========================  ===========  =========================================================
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from calab import (
    FQDN,
    LabCA,
    Oracle,
    ca_certificate,
    csr_public_key,
    issue,
    layout,
    load_cert,
    load_key,
    must,
    now,
    openssl,
    openssl_verify,
    plan_json,
    request_section,
    running_lab,
    said,
    snapshot,
    snapshot_diff,
    wlbplan,
    write_spec,
)
from cryptography import x509

from wlbplan import certs
from wlbplan.lab import control

pytestmark = pytest.mark.lab

IP = "127.0.0.1"


@dataclass(frozen=True)
class Eve:
    """The shared lab at the eve of the install stage."""

    lab: control.Lab
    folder: Path
    ca: LabCA

    @property
    def csr(self) -> Path:
        return self.folder / "pool1.csr"

    @property
    def pending_key(self) -> Path:
        return layout(self.lab).certs_dir / "server.key.pending"

    def snapshot_all(self) -> dict[str, object]:
        return {t.name: snapshot(self.lab, t.name) for t in self.lab.targets}


@pytest.fixture(scope="module")
def eve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Eve]:
    folder = tmp_path_factory.mktemp("eve")
    ca = LabCA.make(folder / "ca")
    with running_lab(folder / "lab", targets=2, hosts=2) as lab:
        spec = write_spec(lab, folder / "request.yaml",
                          ca_certificate(ca, folder, signed=None))
        done = wlbplan("apply", spec, "--auto-approve", "--target", "pool1")
        assert done.returncode == 0, said(done)
        yield Eve(lab, folder, ca)


# ---- the certificates a CA might send back ---------------------------------------------


@dataclass
class Made:
    signed: Path
    intermediates: list[Path]
    pending_key: Path | None = None
    """A key to hold as the appliance's pending key while planning (made by hand)."""


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[Eve, Path], Made]
    reason: str | None  # None: accepted; "pool" | "policy" | "key": why it is refused
    words: tuple[str, ...] = ()
    """Words the refusal (or, accepted, the plan's notes) must contain."""
    culprit: Callable[[Eve, Made], Path] | None = None
    """The file a refusal must name (default: the signed file)."""
    marks: tuple[pytest.MarkDecorator, ...] = field(default=())


def _leaf(eve: Eve, folder: Path, **kw: object) -> Path:
    """A leaf for the appliance's pending key, issued by the intermediate."""
    return _issue(folder / "leaf.pem", csr_public_key(eve.csr), eve.ca.int, eve.ca.int_key,
                  **kw)


def _issue(out: Path, key: object, issuer: Path, issuer_key: Path, **kw: object) -> Path:
    return issue(out, key, issuer=issuer, issuer_key=issuer_key, **kw)  # type: ignore[arg-type]


def _new_key(path: Path, bits: int = 2048) -> Path:
    must(openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}",
                 "-out", path))
    return path


def _public(path: Path) -> object:
    return load_key(path).public_key()


def good(eve: Eve, folder: Path) -> Made:
    return Made(eve.ca.sign_csr(eve.csr, folder / "leaf.pem"), [eve.ca.int])


def _issuing_ca(eve: Eve, folder: Path) -> tuple[Path, Path]:
    """A second intermediate under the first: root → Lab Intermediate CA → Lab Issuing CA."""
    cert, key = folder / "issuing.pem", folder / "issuing.key"
    eve.ca.sub_ca(cert, key, "/O=Lab/CN=Lab Issuing CA", eve.ca.int, eve.ca.int_key)
    return cert, key


def reordered(eve: Eve, folder: Path) -> Made:
    issuing, issuing_key = _issuing_ca(eve, folder)
    leaf = _issue(folder / "leaf.pem", csr_public_key(eve.csr), issuing, issuing_key)
    return Made(leaf, [eve.ca.int, issuing])  # root side first: the wrong way round


def missing_intermediate(eve: Eve, folder: Path) -> Made:
    issuing, issuing_key = _issuing_ca(eve, folder)
    leaf = _issue(folder / "leaf.pem", csr_public_key(eve.csr), issuing, issuing_key)
    return Made(leaf, [eve.ca.int])  # Lab Issuing CA is not given


def another_key(eve: Eve, folder: Path) -> Made:
    other = _new_key(folder / "other.key")
    return Made(_issue(folder / "leaf.pem", _public(other), eve.ca.int, eve.ca.int_key),
                [eve.ca.int])


def expired_leaf(eve: Eve, folder: Path) -> Made:
    start = now() - dt.timedelta(days=400)
    return Made(_leaf(eve, folder, not_before=start, not_after=now() - dt.timedelta(days=35)),
                [eve.ca.int])


def expired_intermediate(eve: Eve, folder: Path) -> Made:
    old_key = _new_key(folder / "old-int.key")
    old = _issue(folder / "old-int.pem", _public(old_key), eve.ca.root, eve.ca.root_key,
                 subject=(("O", "Lab"), ("CN", "Lab Old Intermediate CA")), sans=None,
                 ca=True, not_before=now() - dt.timedelta(days=800),
                 not_after=now() - dt.timedelta(days=10))
    leaf = _issue(folder / "leaf.pem", csr_public_key(eve.csr), old, old_key)
    return Made(leaf, [old])


def not_yet_valid_leaf(eve: Eve, folder: Path) -> Made:
    return Made(_leaf(eve, folder, not_before=now() + dt.timedelta(days=10)), [eve.ca.int])


def cn_mismatch(eve: Eve, folder: Path) -> Made:
    other = "other.lab.test"
    return Made(_leaf(eve, folder, subject=(("O", "Lab"), ("CN", other)),
                      sans=(f"DNS:{other}",)), [eve.ca.int])


def rsa_1024(eve: Eve, folder: Path) -> Made:
    # The spec cannot ask for a 1024-bit key (its schema says 2048+), so the pending key
    # is one made by hand on the appliance, and the CA signed a CSR for it.
    small = _new_key(folder / "small.key", 1024)
    csr = folder / "small.csr"
    must(openssl("req", "-new", "-key", small, "-subj", f"/O=Lab/CN={FQDN}",
                 "-addext", f"subjectAltName=DNS:{FQDN}", "-out", csr))
    return Made(eve.ca.sign_csr(csr, folder / "leaf.pem"), [eve.ca.int], pending_key=small)


def sha1(eve: Eve, folder: Path) -> Made:
    # OpenSSL 3.0's CLI still signs with SHA-1 when asked; no -sigopt/seclevel needed.
    leaf = eve.ca.sign_csr(eve.csr, folder / "leaf.pem", "-sha1")
    assert load_cert(leaf).signature_hash_algorithm.name == "sha1"  # type: ignore[union-attr]
    return Made(leaf, [eve.ca.int])


def name_only_in_san(eve: Eve, folder: Path) -> Made:
    return Made(_leaf(eve, folder, subject=(("O", "Lab"), ("CN", "WLB appliance"))),
                [eve.ca.int])


def name_only_in_cn(eve: Eve, folder: Path) -> Made:
    return Made(_leaf(eve, folder, sans=None), [eve.ca.int])


def _names_intermediate(eve: Eve, made: Made) -> Path:
    return made.intermediates[0]


CASES = [
    Case("good", good, None),
    Case("intermediates-reordered", reordered, None, ("out of order",)),
    Case("name-only-in-san", name_only_in_san, None),
    Case("name-only-in-cn", name_only_in_cn, None, ("WLB-CERT-NO-SAN",)),
    Case("missing-intermediate", missing_intermediate, "pool",
         ("CN=Lab Issuing CA,O=Lab",)),
    Case("cn-mismatch", cn_mismatch, "pool", (FQDN, "hostname mismatch")),
    Case("expired-leaf", expired_leaf, "pool", ("expired",)),
    Case("expired-intermediate", expired_intermediate, "pool",
         ("expired", "Lab Old Intermediate CA"), culprit=_names_intermediate,),
    Case("not-yet-valid-leaf", not_yet_valid_leaf, "pool", ("not valid before",)),
    Case("another-key", another_key, "key", ("not issued for this appliance",)),
    Case("rsa-1024", rsa_1024, "policy", ("1024",)),
    Case("sha1", sha1, "policy", ("sha1",)),
]
REFUSED = [c for c in CASES if c.reason is not None]


# ---- planning with a case --------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    made: Made
    exit_code: int
    message: str
    notes: list[str]
    oracle: Oracle
    changed: list[str]


def _refusal_kind(message: str) -> str:
    """Why wlbplan refused, from its words: pool acceptance, policy, or the key."""
    if "not issued for this appliance" in message:
        return "key"
    pool = ("would refuse WLB", "no certificate in the chain is the issuer", "expired on",
            "not valid before")
    if any(word in message for word in pool):
        return "pool"
    if "RSA key of" in message or "signed with sha1" in message:
        return "policy"
    return f"unclassified: {message}"


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Outcome]:
    """Each case is planned once; its three tests judge the same outcome."""
    return {}


def _plan_case(eve: Eve, case: Case, outcomes: dict[str, Outcome]) -> Outcome:
    """Plan once per case (cached: several tests judge the same plan)."""
    if case.id in outcomes:
        return outcomes[case.id]
    folder = eve.folder / "cases" / case.id
    folder.mkdir(parents=True, exist_ok=True)
    made = case.make(eve, folder)
    spec = write_spec(eve.lab, folder / "spec.yaml", ca_certificate(
        eve.ca, eve.folder, signer=False, signed=made.signed,
        intermediates=made.intermediates))
    saved = folder / "pending.key.saved"
    if made.pending_key is not None:
        shutil.copy2(eve.pending_key, saved)
        shutil.copy(made.pending_key, eve.pending_key)
    try:
        before = eve.snapshot_all()
        result = wlbplan("plan", spec, "--target", "pool1", "--format", "json",
                         "--detailed-exitcode")
        changed = [f"{t}: {line}" for t, snap in eve.snapshot_all().items()
                   for line in snapshot_diff(before[t], snap)]  # type: ignore[arg-type]
    finally:
        if made.pending_key is not None:
            shutil.copy2(saved, eve.pending_key)
    notes: list[str] = []
    if result.returncode == 2:
        notes = json.loads(result.stdout)["targets"][0]["notes"]
    oracle = openssl_verify(eve.ca.root, made.intermediates, made.signed)
    outcome = Outcome(made, result.returncode, result.stdout + result.stderr, notes, oracle,
                      changed)
    outcomes[case.id] = outcome
    return outcome


def _params(cases: list[Case], with_marks: bool = False) -> list[object]:
    return [pytest.param(c, id=c.id, marks=c.marks if with_marks else ()) for c in cases]


@pytest.mark.parametrize("case", _params(CASES))
def test_plan_verdict(eve: Eve, outcomes: dict[str, Outcome], case: Case) -> None:
    got = _plan_case(eve, case, outcomes)
    assert got.changed == [], "planning changed the lab:\n" + "\n".join(got.changed)
    assert "PRIVATE" not in got.message
    if case.reason is None:
        assert got.exit_code == 2, got.message
        for word in case.words:
            assert any(word in note for note in got.notes), (word, got.notes)
        return
    assert got.exit_code == 1, got.message
    assert "Traceback" not in got.message
    for word in case.words:
        assert word in got.message, (word, got.message)
    assert _refusal_kind(got.message) == case.reason, got.message


@pytest.mark.parametrize("case", _params(CASES))
def test_pool_verdict_is_openssls(eve: Eve, outcomes: dict[str, Outcome], case: Case) -> None:
    """wlbplan refuses for a pool-acceptance reason exactly when ``openssl verify`` refuses;
    and ``certs.pool_accepts`` (the gate's function) agrees with it too."""
    got = _plan_case(eve, case, outcomes)
    pool_refused = got.exit_code == 1 and _refusal_kind(got.message) == "pool"
    assert pool_refused == (not got.oracle.ok), (got.oracle, got.message)
    leaf = load_cert(got.made.signed)
    given = [load_cert(p) for p in got.made.intermediates]
    root = load_cert(eve.ca.root)
    verdict = certs.pool_accepts([leaf, *given, root], [root, *given], FQDN, mode="current")
    assert verdict.ok == got.oracle.ok, (verdict, got.oracle)
    if case.reason in ("policy", "key"):
        assert got.oracle.ok, "OpenSSL accepts it; wlbplan refuses for another reason"


@pytest.mark.parametrize("case", _params(REFUSED, with_marks=True))
def test_refusal_names_the_file(eve: Eve, outcomes: dict[str, Outcome], case: Case) -> None:
    got = _plan_case(eve, case, outcomes)
    assert got.exit_code == 1, got.message
    culprit = case.culprit(eve, got.made) if case.culprit else got.made.signed
    assert str(culprit) in got.message, (str(culprit), got.message)


# ---- a pool that reaches WLB by IP address -------------------------------------------


@dataclass(frozen=True)
class ByIp:
    spec: Path
    signed: Path


@pytest.fixture(scope="module")
def by_ip(eve: Eve) -> ByIp:
    """pool2 reached by IP (``lab fault by-ip``), ``wlb.address`` an IP literal, and a
    certificate with CN = the FQDN and the IP as an ``IP:`` SAN (the seed's advice)."""
    lab, folder = eve.lab, eve.folder / "by-ip"
    folder.mkdir()
    fqdn = lab.target("pool2").fqdn
    fault = wlbplan("lab", "fault", "by-ip", "--dir", lab.dir, "--target", "pool2")
    assert fault.returncode == 0, said(fault)
    request = request_section(folder, "pool2", common_name=fqdn,
                              alt_names=[f"DNS:{fqdn}", f"IP:{IP}"])
    spec = write_spec(lab, folder / "request.yaml", ca_certificate(
        eve.ca, folder, target="pool2", signed=None, request=request), target="pool2",
        address=IP)
    done = wlbplan("apply", spec, "--auto-approve", "--target", "pool2")
    assert done.returncode == 0, said(done)
    signed = eve.ca.sign_csr(folder / "pool2.csr", folder / "pool2.pem")
    san = load_cert(signed).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert [str(a) for a in san.value.get_values_for_type(x509.IPAddress)] == [IP]
    spec = write_spec(lab, folder / "install.yaml", ca_certificate(
        eve.ca, folder, target="pool2", signer=False, signed=signed, request=request),
        target="pool2", address=IP)
    return ByIp(spec, signed)


def test_ip_addressed_pool_is_refused(eve: Eve, by_ip: ByIp) -> None:
    """xapi's checkHost is X509_check_host: it never consults IP SANs, so the pool would
    refuse this certificate at 127.0.0.1, and the gate refuses the plan."""
    before = eve.snapshot_all()
    result = wlbplan("plan", by_ip.spec, "--target", "pool2")
    after = eve.snapshot_all()
    for name in before:
        assert snapshot_diff(before[name], after[name]) == []  # type: ignore[arg-type]
    message = result.stdout + result.stderr
    assert result.returncode == 1, message
    # The oracle: X509_check_host("127.0.0.1") is a name check, and fails; the very same
    # certificate passes a client that matches IP SANs (openssl verify -verify_ip).
    as_pool = openssl_verify(eve.ca.root, [eve.ca.int], by_ip.signed, IP)
    assert not as_pool.ok
    assert "hostname mismatch" in as_pool.output
    as_ip = openssl(*_verify_ip_args(eve, by_ip.signed))
    assert as_ip.returncode == 0, as_ip.stdout + as_ip.stderr
    assert f"would refuse WLB at {IP}" in message
    assert "hostname mismatch" in message
    assert "reconnect the pool to wlb by its fqdn" in message.lower(), message


def test_ip_refusal_explains_that_ip_sans_are_ignored(by_ip: ByIp) -> None:
    result = wlbplan("plan", by_ip.spec, "--target", "pool2")
    message = (result.stdout + result.stderr).lower()
    assert result.returncode == 1
    assert "does not name" not in message, message
    assert "ip san" in message or "subjectaltname" in message or "checkhost" in message, \
        message


def _verify_ip_args(eve: Eve, leaf: Path) -> list[str]:
    return ["verify", "-CAfile", str(eve.ca.root), "-untrusted", str(eve.ca.int),
            "-verify_ip", IP, "-purpose", "sslserver", str(leaf)]


def test_good_chain_plans_every_install_step(eve: Eve) -> None:
    """The control: the good chain plans every install step (the refusals are not the lab's
    doing)."""
    folder = eve.folder / "control"
    folder.mkdir()
    made = good(eve, folder)
    spec = write_spec(eve.lab, folder / "spec.yaml", ca_certificate(
        eve.ca, eve.folder, signer=False, signed=made.signed))
    target = plan_json(spec, changes=True)
    assert target["stage"] == "install"
    assert [s["action"] for s in target["steps"]] == [
        "pool.install_ca", "pool.install_ca", "pool.certificate_sync", "appliance.backup",
        "appliance.install_chain", "appliance.restart", "appliance.clear_request",
        "pool.preflight", "pool.set_verify", "pool.confirm"]
