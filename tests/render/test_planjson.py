"""JSON output and the rule every renderer keeps: no PEM, no key material, ever."""

from __future__ import annotations

import dataclasses
import json

import jsonschema
import pytest

from wlbplan.core.diff import cert_summary
from wlbplan.core.plan import Plan
from wlbplan.core.planfile import plan_to_json, schema
from wlbplan.core.steps import Step
from wlbplan.lab import pki
from wlbplan.render import PLAN_FORMATS, planjson, render_plan


def test_json_validates_against_the_schema(install_plan: Plan) -> None:
    doc = json.loads(planjson.render(install_plan))
    jsonschema.Draft202012Validator(schema()).validate(doc)
    assert doc["format_version"] == "1.2"
    assert doc["summary"] == {"add": 1, "change": 2, "remove": 1}


def test_json_is_the_plan_file_less_its_pems(install_plan: Plan, certs) -> None:
    doc = json.loads(planjson.render(install_plan))
    full = plan_to_json(install_plan)
    steps = doc["targets"][0]["steps"]
    fp = cert_summary(certs.root)["fingerprint"]
    assert steps[0]["params"]["pem"] == f"<certificate SHA256 {fp}>"
    assert steps[3]["params"]["chain"][2] == f"<certificate SHA256 {fp}>"
    for step in (*steps[:1], *steps[4:]):
        step.pop("params")
    for step in (*full["targets"][0]["steps"][:1], *full["targets"][0]["steps"][4:]):
        step.pop("params")
    assert doc["targets"][0]["changes"] == full["targets"][0]["changes"]


def test_redact_text_handles_keys_and_broken_pems(certs) -> None:
    key = pki.key_pem(pki.make_key("ec", 256)).decode()
    assert planjson.redact_text(f"a {key} b") == "a <PEM removed> b"
    assert planjson.redact_text("x -----BEGIN CERTIFICATE-----\nMIIB") == "x <PEM removed>"
    broken = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----"
    assert planjson.redact_text(broken) == "<certificate (unreadable)>"
    assert planjson.redact_text("no pem here") == "no pem here"


def leaky(plan: Plan) -> Plan:
    """A plan where a PEM and a private key slipped into every free-text field."""
    key = pki.key_pem(pki.make_key("ec", 256)).decode()
    pem = plan.targets[0].steps[0].params["pem"]
    step = Step("pool.confirm", "pool", f"summary {pem}", (f"echo '{key}'",), (f"cat {pem}",),
                {"pem": pem, "key": key})
    target = dataclasses.replace(plan.targets[0], steps=(*plan.targets[0].steps, step),
                                 notes=(f"note {pem}",))
    return dataclasses.replace(plan, targets=(target,))


@pytest.mark.parametrize("fmt", PLAN_FORMATS)
def test_no_renderer_prints_pem_or_key_material(install_plan: Plan, fmt: str) -> None:
    plan = leaky(install_plan)
    # Sanity: the plan itself does carry PEMs and a key, so this test can fail.
    assert "PRIVATE" in json.dumps(plan_to_json(plan))
    out = render_plan(plan, fmt, color=True)
    assert "BEGIN" not in out
    assert "PRIVATE" not in out
