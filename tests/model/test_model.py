"""The value types: frozen, and the few derived values other stages rely on."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from wlbplan.model.observed import (
    ApplianceFacts,
    CertFile,
    KeyFile,
    Observed,
    PoolFacts,
    Served,
    observed_from_json,
)
from wlbplan.model.spec import (
    CertificateSpec,
    Diagnostic,
    PoolSpec,
    Position,
    Signer,
    Spec,
    Subject,
    Target,
    WlbSpec,
)


def _target(name: str) -> Target:
    return Target(
        name=name,
        pool=PoolSpec("xs1.example.com"),
        wlb=WlbSpec("wlb.example.com"),
        certificate=CertificateSpec("self-signed"),
    )


def test_diagnostic_formats_like_a_compiler() -> None:
    start = Position(3, 7, 40)
    full = Diagnostic("error", "s.yaml", "targets[0].wlb.port", "bad", start=start, end=start)
    assert full.format() == "s.yaml:3:7: error: targets[0].wlb.port: bad"
    assert Diagnostic("warning", "s.yaml", "", "odd").format() == "s.yaml: warning: odd"
    assert full.is_error
    assert not Diagnostic("warning", "s.yaml", "", "odd").is_error


@pytest.mark.parametrize(
    ("address", "url", "is_ip"),
    [
        ("wlb.example.com", "wlb.example.com:8012", False),
        ("10.0.0.5", "10.0.0.5:8012", True),
        ("2001:db8::5", "[2001:db8::5]:8012", True),
    ],
)
def test_wlb_url_is_what_the_pool_records(address: str, url: str, is_ip: bool) -> None:
    wlb = WlbSpec(address)
    assert wlb.url == url
    assert wlb.address_is_ip is is_ip


def test_ssh_destination_prefers_ssh_host() -> None:
    assert WlbSpec("wlb.example.com").ssh_destination == "wlb.example.com"
    assert WlbSpec("wlb.example.com", ssh_host="127.0.0.1").ssh_destination == "127.0.0.1"
    assert PoolSpec("xs1", ssh_host="10.0.0.1").ssh_destination == "10.0.0.1"
    assert PoolSpec("xs1").ssh_destination == "xs1"


def test_signer_argv_fills_only_its_placeholders() -> None:
    signer = Signer(("sign", "--in={csr}", "{cert}", "{other}", "{}"))
    argv = signer.argv(Path("/tmp/a.csr"), Path("/tmp/a.pem"))
    assert argv == ("sign", "--in=/tmp/a.csr", "/tmp/a.pem", "{other}", "{}")


def test_subject_items_follow_openssl_order() -> None:
    subject = Subject(emailAddress="ops@example.com", O="Example", C="CA")
    assert subject.items() == (("C", "CA"), ("O", "Example"), ("emailAddress", "ops@example.com"))


def test_spec_finds_targets_by_name() -> None:
    spec = Spec(version=1, path=Path("s.yaml"), digest="0", targets=(_target("a"), _target("b")))
    assert spec.target("b").name == "b"
    with pytest.raises(KeyError):
        spec.target("c")


def test_spec_parts_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        _target("a").name = "b"  # type: ignore[misc]


def _observed(served_error: str | None, cert_error: str | None = None) -> Observed:
    return Observed(
        target="t1",
        appliance=ApplianceFacts(cert=CertFile("/etc/ssl/server.pem", True, error=cert_error),
                                 key=KeyFile("/etc/ssl/server.key", False),
                                 served=Served(error=served_error)),
        pool=PoolFacts(uuid="u", coordinator="c", hosts=("h",), xapi_version="25.6.0",
                       wlb_url="wlb:8012", wlb_username="w", wlb_enabled=True,
                       wlb_verify_cert=False))


def test_the_digest_counts_an_error_by_its_presence_never_its_words() -> None:
    refused = "no certificate served: {}:error:8000006F:system library:BIO_connect:refused"
    first = _observed(refused.format("80CB1915C67F0000"))
    again = _observed(refused.format("806B12FB227F0000"))
    assert first.digest() == again.digest()
    assert first.digest() != _observed(None).digest()
    assert _observed(None, "Permission denied").digest() != _observed(None).digest()


def test_observed_facts_read_back_from_json_with_every_type_checked() -> None:
    seen = _observed("refused")
    document = json.loads(json.dumps(seen.to_json()))
    assert observed_from_json(document) == seen
    document["pool"]["hosts"] = "h"
    with pytest.raises(ValueError, match=r"facts\.pool\.hosts must be a list"):
        observed_from_json(document)


def test_a_fact_with_a_fixed_set_of_values_is_read_back_only_from_that_set() -> None:
    document = json.loads(json.dumps(_observed("refused").to_json()))
    document["pool"]["ca_commands"] = "pre-1.290"
    assert observed_from_json(document).pool.ca_commands == "pre-1.290"
    document["pool"]["ca_commands"] = "rm -rf /"
    with pytest.raises(ValueError, match=r"facts\.pool\.ca_commands must be one of"):
        observed_from_json(document)


def test_hints_name_the_real_spec_quoted() -> None:
    from wlbplan.model.spec import cli_command

    assert cli_command("rollback", "/srv/my specs/a.yaml", "--target", "p1") == \
        "wlbplan rollback '/srv/my specs/a.yaml' --target p1"
    assert cli_command("plan", "", "--out", "PLAN") == "wlbplan plan SPEC --out PLAN"
