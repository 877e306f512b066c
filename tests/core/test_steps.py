"""The steps' commands, run for real where they are local-safe: the CSR a ``make_csr`` step
makes is exactly the subject the spec asks for (issue 16 #4)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from wlbplan.core.desired import request_subject
from wlbplan.core.steps.appliance import csr_argv, subject_line
from wlbplan.model.spec import CertificateRequest, Subject
from wlbplan.spec import load_spec_text

FQDN = "wlb.example.com"


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("csr") / "key.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", str(path)], check=True,
                   capture_output=True)
    return path


def _csr(key: Path, request: CertificateRequest) -> x509.CertificateSigningRequest:
    """What the step's own argv makes, run here with the real openssl."""
    out = key.parent / "req.csr"
    out.unlink(missing_ok=True)
    argv = csr_argv(str(key), subject_line(request), request.alt_names, str(out))
    made = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert made.returncode == 0, f"openssl failed on {subject_line(request)!r}: {made.stderr}"
    return x509.load_pem_x509_csr(out.read_bytes())


@pytest.mark.parametrize("organization", [
    "Acme+CN=evil", "Acme/CN=evil", "Acme\\/CN=evil", "Acme, Inc.", "a=b", "x\\", "+",
    "/", "\\", "#hash", " spaced ", "Ünïcødé 漢字", "semi;colon\"quote'<>",
])
def test_a_subject_value_stays_one_attribute(key: Path, organization: str) -> None:
    """``O: "Acme+CN=evil"`` made a second CN (a multi-valued RDN) when only ``\\`` and
    ``/`` were escaped."""
    request = CertificateRequest(FQDN, subject=Subject(O=organization))
    csr = _csr(key, request)
    assert csr.subject == request_subject(request)
    assert [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == [FQDN]
    assert [a.value for a in csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] \
        == [organization]
    assert all(len(rdn) == 1 for rdn in csr.subject.rdns)


# Values near the edges of what the spec accepts (the schema's bounds, any printable
# character, the -subj syntax), and a few beyond them.
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1,
                max_size=70)
_SYNTAX = st.text(st.sampled_from("+=/,\\\"#;<> aé漢"), min_size=1, max_size=66)
_ANY = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1)
_FIELDS = {
    "C": st.one_of(st.text(st.sampled_from("ABCXYZabz"), min_size=2, max_size=2),
                   st.text(st.sampled_from("AZ1"), max_size=3)),
    "ST": st.one_of(_TEXT, st.text(st.sampled_from("xü"), min_size=126, max_size=130)),
    "L": st.one_of(_TEXT, _SYNTAX),
    "O": st.one_of(_SYNTAX, _TEXT, st.text(st.sampled_from("xü"), min_size=62, max_size=66)),
    "OU": st.one_of(_TEXT, _ANY),
    "emailAddress": st.one_of(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e),
                                      min_size=1, max_size=130), _ANY),
}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                    HealthCheck.filter_too_much])
@given(st.fixed_dictionaries({}, optional=_FIELDS))
def test_every_subject_the_spec_accepts_is_the_subject_openssl_makes(
        key: Path, subject: dict[str, Any]) -> None:
    """Validation and the command agree: what validates never makes openssl fail half-way
    through an apply, and the CSR carries exactly the spec's subject."""
    text = yaml.safe_dump({"version": 1, "targets": [{
        "name": "t1", "pool": {"coordinator": "xs1.example.com"}, "wlb": {"address": FQDN},
        "certificate": {"source": "ca-signed", "request": {"subject": subject}}}]})
    spec, _ = load_spec_text(text, Path("subject.yaml"))
    event("accepted" if spec is not None else "refused")
    if spec is None:
        return
    request = spec.targets[0].certificate.request
    assert request is not None
    csr = _csr(key, request)
    assert csr.subject == request_subject(request)
    assert len(csr.subject.rdns) == len(subject) + 1
