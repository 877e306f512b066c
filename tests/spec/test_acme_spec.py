"""source: acme in the spec: the model it builds, its defaults, and the local files it
names (the account key refused when others can read it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from wlbplan.lab import pki
from wlbplan.model.spec import DEFAULT_ORDER_TIMEOUT, DEFAULT_RENEW_BEFORE_DAYS, ChallengeHooks
from wlbplan.spec import load_spec, load_spec_with_diagnostics, schema_text

DATA = Path(__file__).resolve().parents[1] / "data" / "specs"


def test_every_acme_key_reaches_the_model() -> None:
    spec = load_spec(DATA / "good" / "acme.yaml", check_files=False)
    acme = spec.targets[0].certificate.acme
    assert acme is not None
    base = DATA / "good"
    assert acme.directory == "https://ca.example.com/acme/directory"
    assert acme.ca_file == base / "certs" / "acme-https-ca.pem"
    assert acme.root == base / "certs" / "acme-root.pem"
    assert acme.account.email == "ops@example.com"
    assert acme.account.key_file == Path.home() / ".wlbplan" / "account.key"
    assert acme.eab is not None
    assert (acme.eab.kid_env, acme.eab.hmac_env) == ("ACME_KID", "ACME_HMAC")
    assert acme.challenge.set[-1] == "--zone={domain}"
    assert acme.renew_before_days == 21
    assert acme.order_timeout == 600


def _write(tmp_path: Path, acme: dict[str, Any]) -> Path:
    (tmp_path / "root.pem").write_bytes(pki.build("Test Root CA", ca=True).cert_pem)
    spec = {"version": 1, "targets": [{
        "name": "t", "pool": {"coordinator": "xs.example.com"},
        "wlb": {"address": "wlb.example.com"},
        "certificate": {"source": "acme", "request": {},
                        "acme": {"directory": "https://ca.example.com/dir", "root": "root.pem",
                                 "challenge": {"type": "dns-01", "set": ["h", "{value}"],
                                               "clear": ["h"]}, **acme}}}]}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_defaults(tmp_path: Path) -> None:
    acme = load_spec(_write(tmp_path, {})).targets[0].certificate.acme
    assert acme is not None
    assert acme.renew_before_days == DEFAULT_RENEW_BEFORE_DAYS == json.loads(schema_text())[
        "$defs"]["acme"]["properties"]["renew_before_days"]["default"]
    assert acme.order_timeout == DEFAULT_ORDER_TIMEOUT == json.loads(schema_text())[
        "$defs"]["acme"]["properties"]["order_timeout"]["default"]
    assert acme.ca_file is None
    assert acme.account.key_file is None
    assert acme.eab is None


def test_an_account_key_others_can_read_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "account.key"
    key.write_text("secret")
    key.chmod(0o640)
    path = _write(tmp_path, {"account": {"key_file": "account.key"}})
    spec, diagnostics = load_spec_with_diagnostics(path)
    assert spec is None
    (error,) = [d for d in diagnostics if d.is_error]
    assert error.path == "targets[0].certificate.acme.account.key_file"
    assert "mode 0640" in error.message
    assert "chmod 600" in error.message
    assert "secret" not in error.format()
    key.chmod(0o600)
    assert load_spec(path).targets[0].certificate.acme is not None


def test_missing_root_and_ca_file_are_errors(tmp_path: Path) -> None:
    path = _write(tmp_path, {"ca_file": "nope.pem"})
    (tmp_path / "root.pem").unlink()
    _, diagnostics = load_spec_with_diagnostics(path)
    errors = sorted(d.path for d in diagnostics if d.is_error)
    assert errors == ["targets[0].certificate.acme.ca_file", "targets[0].certificate.acme.root"]


def test_hook_placeholders_are_replaced_per_argument() -> None:
    """Each argument on its own, never joined into a shell line: a value with spaces or
    shell characters stays one argument, and other braces stay as written."""
    hooks = ChallengeHooks(set=("hook", "{name}", "v={value}", "{x}", "{domain}"), clear=("h",))
    argv = hooks.argv(hooks.set, "a.example", "_acme-challenge.a.example", "x y;$(z)")
    assert argv == ("hook", "_acme-challenge.a.example", "v=x y;$(z)", "{x}", "a.example")
