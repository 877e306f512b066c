"""core/imported on data: the spec `wlbplan import` writes for each state a pool can be in,
checked by what matters — it validates, and `plan` on it (against the same facts) shows no
changes, or exactly the difference a spec cannot express, or the gate's refusal."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from wlbplan import certs
from wlbplan.core import imported
from wlbplan.core.imported import Access, derive, verdict
from wlbplan.core.plan import TargetPlan, plan_or_refusal
from wlbplan.errors import ImportRefused
from wlbplan.lab import pki
from wlbplan.model.observed import (
    ApplianceFacts,
    CertFile,
    KeyFile,
    Observed,
    PoolFacts,
    Served,
    TrustedCert,
)
from wlbplan.spec import load_spec

FQDN = "wlb.example.com"
IP = "10.0.0.5"
CURRENT, LEGACY = "25.6.0", "24.19.2"
ACCESS = Access(name="t1", coordinator="xs1.example.com", appliance="10.9.9.9",
                ssh=(("user", "admin"),))


@functools.cache
def pem(name: str) -> str:
    return made()[name].cert_pem.decode()


@functools.cache
def made() -> dict[str, pki.Issued]:
    root = pki.build("Corp Root CA", key=pki.make_key("ec", 256), ca=True, days=3650)
    inter = pki.build("Corp Issuing CA", key=pki.make_key("ec", 256), issuer=root, ca=True)
    hostile = pki.build(FQDN, issuer=inter, sans=[FQDN], server_auth=True)
    # A subject only a hostile or careless CA writes: YAML's indicators, quotes, a break.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'Evil: "Corp" # \'x\' - [y]'),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "line\nversion: 2"),
        x509.NameAttribute(NameOID.COMMON_NAME, FQDN),
    ])
    hostile_cert = (x509.CertificateBuilder().subject_name(name).issuer_name(inter.cert.subject)
                    .public_key(hostile.key.public_key()).serial_number(7)
                    .not_valid_before(pki.now()).not_valid_after(pki.now().replace(year=2100))
                    .add_extension(x509.SubjectAlternativeName([x509.DNSName(FQDN)]), False)
                    .sign(inter.key, hashes.SHA256()))
    return {
        "self_signed": pki.appliance_self_signed(FQDN),
        "root": root, "intermediate": inter,
        "leaf": pki.build(FQDN, issuer=inter, sans=[FQDN], server_auth=True),
        "ip_leaf": pki.build(IP, issuer=inter, sans=[IP], server_auth=True),
        "hostile_leaf": pki.Issued(hostile_cert, hostile.key),
    }


def public_key(name: str) -> str:
    from cryptography.hazmat.primitives import serialization

    return made()[name].key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def observed(chain: list[str], *, trusted: list[tuple[str, str]] = (),  # type: ignore[assignment]
             verify: bool = True, url: str = f"{FQDN}:8012", xapi: str = CURRENT) -> Observed:
    pems = tuple(pem(n) for n in chain)
    return Observed(
        target="t1",
        appliance=ApplianceFacts(
            cert=CertFile("/etc/ssl/certs/server.pem", bool(pems), pems,
                          None if pems else "missing"),
            key=KeyFile("/etc/ssl/certs/server.key", True, "600", "root", "root",
                        public_key(chain[0]) if chain else None),
            served=Served(chain=pems)),
        pool=PoolFacts(uuid="0b5e4b43-7d1c-4c2e-9a3e-2f1d6c9b8a71", coordinator="c",
                       hosts=("c",), xapi_version=xapi, wlb_url=url, wlb_username="wlbuser",
                       wlb_enabled=True, wlb_verify_cert=verify,
                       trusted=tuple(TrustedCert(n, pem(c)) for n, c in trusted)))


def run(seen: Observed, folder: Path,
        access: Access = ACCESS) -> tuple[dict[str, Any], TargetPlan, str]:
    """Import, write the spec and its files as the command does, load it, plan it; the
    text is returned with its comments unwrapped (one line each), to search in."""
    result = derive(seen, access, when="2025-01-31 09:30 UTC", origin="a test")
    for name, text in result.files:
        (folder / name).write_text(text)
    path = folder / "t1.yaml"
    spec = imported.load(result.text(), path, "the test's spec")
    made_plan = plan_or_refusal(spec, spec.targets[0], seen)
    path.write_text(result.text(verdict(made_plan)))
    assert load_spec(path).targets == spec.targets  # the verdict is comments only
    text = path.read_text()
    return yaml.safe_load(text), made_plan, re.sub(r"\n *# {3,}", " ", text)


def changes(plan: TargetPlan) -> dict[str, str]:
    return {c.path.split("[")[0] + ("[wlbplan-…]" if "[" in c.path else ""): c.action
            for c in plan.changes}


def test_self_signed_as_found_plans_no_changes(tmp_path: Path) -> None:
    data, plan, text = run(observed(["self_signed"], trusted=[("wlb.pem", "self_signed")]),
                           tmp_path)
    target = data["targets"][0]
    assert target["certificate"] == {"source": "self-signed"}
    assert target["verify"] is True
    assert target["wlb"] == {"address": FQDN, "ssh_host": "10.9.9.9"}
    assert data["defaults"] == {"ssh": {"user": "admin"}}
    assert plan.status == "no_changes", plan.reason
    assert "against the state read: no changes." in text
    assert "- wlb.pem: CN=wlb.example.com: WLB's certificate" in text


def test_ca_signed_chain_and_trust_as_found_plans_no_changes(tmp_path: Path) -> None:
    seen = observed(["leaf", "intermediate", "root"],
                    trusted=[("corp-root.pem", "root"), ("corp-int.pem", "intermediate")])
    data, plan, text = run(seen, tmp_path)
    cert = data["targets"][0]["certificate"]
    assert cert["source"] == "ca-signed"
    assert (cert["signed"], cert["intermediates"], cert["root"]) == (
        "t1.signed.pem", ["t1.intermediate.pem"], "t1.root.pem")
    for name, want in (("signed", "leaf"), ("intermediate", "intermediate"), ("root", "root")):
        assert (tmp_path / f"t1.{name}.pem").read_text() == pem(want)
    assert cert["request"] == {"common_name": FQDN, "alt_names": [f"DNS:{FQDN}"],
                               "key": {"type": "rsa", "bits": 2048}}
    assert plan.status == "no_changes", plan.reason
    assert "PRIVATE" not in text
    assert not any("PRIVATE" in p.read_text()
                                             for p in tmp_path.glob("*.pem"))


def test_the_root_may_come_from_the_pools_trust(tmp_path: Path) -> None:
    """server.pem without its root: the root is the pool's; the spec serves leaf → root,
    as the vendor procedure does, and plan says it adds the root to the file."""
    seen = observed(["leaf", "intermediate"], trusted=[("corp-root.pem", "root")])
    _data, plan, text = run(seen, tmp_path)
    assert (tmp_path / "t1.root.pem").read_text() == pem("root")
    assert "from the pool's trusted corp-root.pem" in text
    assert changes(plan) == {"pool.trust[wlbplan-…]": "create", "appliance.chain": "update"}
    assert "~ appliance.chain" in text
    assert "+ pool.trust[wlbplan-intermediate-" in text


def test_legacy_xapi_needs_the_leaf_trusted_too(tmp_path: Path) -> None:
    chain = ["leaf", "intermediate", "root"]
    all_trusted = [("root.pem", "root"), ("int.pem", "intermediate"), ("leaf.pem", "leaf")]
    _, plan, text = run(observed(chain, trusted=all_trusted, xapi=LEGACY), tmp_path)
    assert plan.status == "no_changes", plan.reason
    assert "leaf.pem: CN=wlb.example.com: WLB's certificate (xapi before 24.40" in text
    _, plan, text = run(observed(chain, trusted=all_trusted[:2], xapi=LEGACY), tmp_path)
    assert [c.path for c in plan.changes] == [
        next(c.path for c in plan.changes if c.path.startswith("pool.trust[wlbplan-leaf-"))]
    assert "Not trusted yet: CN=wlb.example.com" in text


def test_leftover_wlbplan_trust_is_said_to_go(tmp_path: Path) -> None:
    seen = observed(["self_signed"], trusted=[("wlb.pem", "self_signed"),
                                              ("wlbplan-root-0123456789abcdef.pem", "root")])
    _, plan, text = run(seen, tmp_path)
    assert changes(plan) == {"pool.trust[wlbplan-…]": "delete"}
    assert "installed by wlbplan and not needed by this spec: plan removes it" in text


@pytest.mark.parametrize("verify", [False, True])
def test_by_ip_is_described_as_found(tmp_path: Path, verify: bool) -> None:
    """The pool reaches WLB by IP: the spec says so (address = the IP) and why it cannot
    verify; with verify off plan has nothing to do, with verify on plan refuses, saying
    to reconnect by name, as it does for the pool itself."""
    seen = observed(["self_signed"], trusted=[("wlb.pem", "self_signed")], verify=verify,
                    url=f"{IP}:8012")
    data, plan, text = run(seen, tmp_path)
    assert data["targets"][0]["wlb"]["address"] == IP
    assert f"set address to {FQDN} (the name in WLB's certificate)" in text
    if verify:
        assert plan.status == "refused"
        assert "reconnect the pool to WLB by its FQDN" in plan.reason
        assert "against the state read: refused, as the pool is now:" in text
    else:
        assert plan.status == "no_changes", plan.reason


def test_by_ip_ca_signed_gets_the_fqdn_as_cn_and_the_ip_as_san(tmp_path: Path) -> None:
    seen = observed(["leaf", "intermediate", "root"], trusted=[("r.pem", "root"),
                                                               ("i.pem", "intermediate")],
                    verify=False, url=f"{IP}:8012")
    data, plan, text = run(seen, tmp_path)
    request = data["targets"][0]["certificate"]["request"]
    assert request["common_name"] == FQDN
    assert request["alt_names"] == [f"DNS:{FQDN}", f"IP:{IP}"]
    assert f"IP:{IP} is added" in text
    assert plan.status == "no_changes", plan.reason


def test_hostile_host_text_is_held_literally_or_left_out_saying_why(tmp_path: Path) -> None:
    """A name no pool lists (inspection refuses it) but a report could: only in comments."""
    name = 'corp: "x" # \'y\'\nversion: 2\u2028- z.pem'
    seen = observed(["hostile_leaf", "intermediate", "root"],
                    trusted=[(name, "root"), ("i.pem", "intermediate")])
    data, plan, text = run(seen, tmp_path)
    subject = data["targets"][0]["certificate"]["request"]["subject"]
    assert subject == {"O": 'Evil: "Corp" # \'x\' - [y]'}
    assert "subject OU is left out: it holds control characters" in text
    assert data["version"] == 1
    assert "corp: \"x\" # 'y'\\nversion: 2\\u2028- z.pem: CN=Corp Root CA" in text
    assert plan.status == "no_changes", plan.reason


@pytest.mark.parametrize(("seen", "words"), [
    (observed([], trusted=[]), "server.pem is missing"),
    (observed(["leaf", "intermediate"]), "holds the root CA of WLB's certificate"),
    (observed(["self_signed"], url=""), "not connected to WLB (its wlb-url is empty)"),
    (observed(["self_signed"], url="wlb.example.com"), "has no host:port"),
    (observed(["self_signed"], url="a b:8012"), "is not a valid host name"),
    (observed(["self_signed"], url="wlb.example.com:0"), "has no port 1-65535"),
    (observed(["ip_leaf", "intermediate", "root"], url=f"{IP}:8012"),
     "certificate names no host name"),
], ids=["no-cert", "no-root", "no-wlb", "no-port", "bad-host", "port-0", "ip-no-name"])
def test_what_cannot_be_described_is_refused_clearly(seen: Observed, words: str) -> None:
    with pytest.raises(ImportRefused, match=re.escape(words)):
        derive(seen, ACCESS, when="now", origin="a test")


def test_a_hostile_target_name_is_refused_clearly(tmp_path: Path) -> None:
    access = replace(ACCESS, name="t1\nversion: 2")
    result = derive(observed(["self_signed"]), access, when="now", origin="a test")
    with pytest.raises(ImportRefused, match=r"targets\[0\]\.name: must start with"):
        imported.load(result.text(), tmp_path / "t.yaml", "the spec")


def report(*targets: Observed, version: str = "1.0") -> bytes:
    return json.dumps({"format_version": version, "targets": [
        {**t.to_json(), "observed_digest": t.digest(), "derived": {}} for t in targets]}).encode()


def test_an_inspection_report_reads_back_as_its_facts() -> None:
    one = observed(["self_signed"])
    two = replace(one, target="t2")
    assert imported.read_report(report(one), None, "r.json") == one
    assert imported.read_report(report(one, two), "t2", "r.json") == two
    for data, target, words in [
        (report(one, two), None, "holds 2 targets (t1, t2); choose one with --target"),
        (report(one), "t9", "has no target 't9' (it has t1)"),
        (report(one, version="2.0"), None, "format_version '2.0' is not one"),
        (b"{", None, "is not JSON"),
        (b"[]", None, "not the JSON `wlbplan inspect --format json` writes"),
        (report(one).replace(b'"wlb_url"', b'"wlb_uri"'), None, "is not a fact wlbplan"),
        (report(replace(one, pool=replace(one.pool, trusted=(
            TrustedCert("../x\n.pem", pem("root")),)))), None,
         "named '../x\\n.pem', which is not a safe certificate name"),
    ]:
        with pytest.raises(ImportRefused, match=re.escape(words)):
            imported.read_report(data, target, "r.json")


def test_a_report_with_an_unreachable_target_reads_the_others() -> None:
    """inspect's JSON 1.1 lists a target it could not inspect apart from the others."""
    from wlbplan.model.observed import Uninspected
    from wlbplan.render import inspection

    one = observed(["self_signed"])
    data = inspection.to_json([Uninspected("t0", "t0: xs0 is unreachable"), one]).encode()
    assert json.loads(data)["unreachable"] == [{"target": "t0",
                                                "error": "t0: xs0 is unreachable"}]
    assert imported.read_report(data, None, "r.json") == one
    assert imported.read_report(data, "t1", "r.json") == one
    with pytest.raises(ImportRefused, match="'t0' could not be inspected when the report"):
        imported.read_report(data, "t0", "r.json")


def test_default_names() -> None:
    assert imported.default_name("xs-east-01.example.com") == "xs-east-01"
    assert imported.default_name("127.0.0.1") == "127.0.0.1"
    assert imported.default_name("::1") == "1"
    assert imported.default_name("_") == "pool"


def test_the_spec_holds_fingerprints_never_pem(tmp_path: Path) -> None:
    seen = observed(["leaf", "intermediate", "root"], trusted=[("r.pem", "root")])
    _, _, text = run(seen, tmp_path)
    assert certs.fingerprint(made()["root"].cert) in text
    assert "BEGIN" not in text
    assert "PRIVATE" not in text
