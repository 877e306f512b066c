"""The spec loader: every error kind at its exact position, defaults and local paths,
the packaged schema, the examples, and properties no input may break (only SpecError
ever comes out of the loader)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from property_settings import PARSER

from wlbplan.core.rules import CATALOGUE
from wlbplan.errors import SpecError
from wlbplan.model.ignore import Ignore
from wlbplan.model.spec import (
    DEFAULT_CERT_PATH,
    DEFAULT_KEY_PATH,
    Diagnostic,
    KeySpec,
    Policy,
    PoolSpec,
    SshSettings,
    Target,
    WlbSpec,
)
from wlbplan.spec import (
    load_spec,
    load_spec_text,
    load_spec_with_diagnostics,
    schema_text,
    spec_digest,
)

TESTS = Path(__file__).resolve().parents[1]
DATA = TESTS / "data" / "specs"
EXAMPLES = TESTS.parent / "examples"
GOOD = sorted((DATA / "good").glob("*.yaml"))
BAD = sorted((DATA / "bad").glob("*.yaml"))
FUZZ_PATH = Path("fuzz.yaml")


def _expected(path: Path) -> list[str]:
    prefix = "# expect: "
    lines = path.read_text().splitlines()
    return sorted(line[len(prefix) :] for line in lines if line.startswith(prefix))


def _actual(path: Path, diagnostics: list[Diagnostic]) -> list[str]:
    return sorted(d.format().removeprefix(f"{path}:") for d in diagnostics)


def _errors(text: str, path: Path = FUZZ_PATH) -> list[Diagnostic]:
    spec, diagnostics = load_spec_text(text, path)
    errors = [d for d in diagnostics if d.is_error]
    assert (spec is None) == bool(errors)
    return errors


MINIMAL_TARGET = """\
targets:
  - name: t1
    pool: {coordinator: xs1.example.com}
    wlb: {address: wlb.example.com}
    certificate: {source: self-signed}
"""


# --- data-driven: each file lists the exact diagnostics it must produce -----------------


def test_the_data_files_are_there() -> None:
    # A glob that silently matches nothing would make the tests below vacuous.
    assert len(BAD) >= 15
    assert len(GOOD) >= 4


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_spec_reports_exactly_its_expected_diagnostics(path: Path) -> None:
    expected = _expected(path)
    assert any(": error: " in line for line in expected), "a bad file must expect an error"
    spec, diagnostics = load_spec_with_diagnostics(path)
    assert spec is None
    assert _actual(path, diagnostics) == expected


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
def test_good_spec_loads_with_exactly_its_expected_warnings(path: Path) -> None:
    # These cases are about the document; the files it names are checked below.
    spec, diagnostics = load_spec_with_diagnostics(path, check_files=False)
    assert spec is not None
    assert _actual(path, diagnostics) == _expected(path)


def test_diagnostics_come_in_file_order() -> None:
    _, diagnostics = load_spec_with_diagnostics(DATA / "bad" / "several.yaml")
    positions = [(d.start.line, d.start.column) for d in diagnostics if d.start]
    assert len(positions) == len(diagnostics) == 10
    assert positions == sorted(positions)


def test_pyyaml_alone_would_hide_the_duplicate_key() -> None:
    # Why duplicates are detected on the node tree: safe_load keeps the last silently.
    text = (DATA / "bad" / "duplicate-key.yaml").read_text()
    assert yaml.safe_load(text)["targets"] == []


# --- load_spec and its errors --------------------------------------------------------


def test_load_spec_raises_spec_error_with_every_diagnostic() -> None:
    path = DATA / "bad" / "several.yaml"
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert message.startswith(f"invalid spec {path} (10 errors):\n")
    assert f"  {path}:12:10: error: version: must be 1, got 2" in message.splitlines()
    assert len(caught.value.diagnostics) == 10


def test_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(SpecError, match=r"nope\.yaml: spec file not found$"):
        load_spec(path)
    spec, diagnostics = load_spec_with_diagnostics(path)
    assert spec is None
    assert [d.format() for d in diagnostics] == [f"{path}: error: spec file not found"]


def test_directory_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read the spec file"):
        load_spec(tmp_path)


def test_not_utf8_points_at_the_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"version: 1\nname: caf\xe9\n")
    _, diagnostics = load_spec_with_diagnostics(path)
    assert [d.format() for d in diagnostics] == [
        f"{path}:2:10: error: the file is not UTF-8 (byte 0xe9)"
    ]
    assert diagnostics[0].start is not None
    assert diagnostics[0].start.byte == 20


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "1:1: error: the spec is empty"),
        ("# only a comment\n", "1:1: error: the spec is empty"),
        ("- a\n- b\n", "1:1: error: must be a mapping, got a list"),
        ("just text\n", "1:1: error: must be a mapping, got a string"),
        (
            "version: 1\n---\nversion: 1\n",
            "2:1: error: YAML syntax error: expected a single document in the stream,"
            " but found another document",
        ),
        (
            "version: 1\nx: \x00\n",
            "2:4: error: YAML syntax error: special characters are not allowed (U+0000)",
        ),
        (
            "version: 1\nx-a: &a [1, *a]\n",
            "2:6: error: recursive YAML alias (a node that contains itself)",
        ),
        (
            "version: 1\nx-a: &a {<<: *a}\n",
            "2:6: error: recursive YAML alias (a node that contains itself)",
        ),
        (
            "version: !!binary aGVsbG8=\n",
            "1:10: error: version: unsupported YAML tag tag:yaml.org,2002:binary",
        ),
        ("version: !!int one\n", "1:10: error: version: 'one' is not a valid integer"),
        ("version: 1.0\n", "1:10: error: version: must be an integer, got a number"),
        ('version: "a\\0b"\n', "1:10: error: version: NUL characters are not allowed"),
        ("version: 1\n? [a]\n: b\n", "2:3: error: mapping keys must be plain text"),
    ],
)
def test_document_level_errors(text: str, expected: str) -> None:
    _, diagnostics = load_spec_text(text, FUZZ_PATH)
    assert f"{FUZZ_PATH}:{expected}" in [d.format() for d in diagnostics]


def test_empty_file_has_no_position_beyond_the_start() -> None:
    assert [d.message for d in _errors("")] == ["the spec is empty"]


def test_alias_bomb_is_stopped() -> None:
    lines = ["version: 1", "x-0: &l0 [a, a, a, a, a, a, a, a, a, a]"]
    lines += [f"x-{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 8)]
    errors = _errors("\n".join(lines) + "\n")
    assert [e.message for e in errors] == [
        "the document is too large (an alias expanding too often?)"
    ]


@pytest.mark.parametrize("depth", [100, 5000])
def test_deep_nesting_is_an_error_not_a_crash(depth: int) -> None:
    errors = _errors("x: " + "[" * depth + "]" * depth + "\n")
    assert errors[0].message.endswith("nested too deeply")


def test_non_finite_numbers_are_rejected() -> None:
    text = f"version: 1\ndefaults: {{ssh: {{connect_timeout: .nan}}}}\n{MINIMAL_TARGET}"
    assert [e.format() for e in _errors(text)] == [
        f"{FUZZ_PATH}:2:35: error: defaults.ssh.connect_timeout: '.nan' is not a finite number"
    ]


def test_integral_float_is_not_an_integer() -> None:
    text = f"version: 1\ndefaults: {{ssh: {{port: 22.0}}}}\n{MINIMAL_TARGET}"
    assert [e.message for e in _errors(text)] == ["must be an integer, got a number"]


def test_byte_offset_counts_utf8_bytes() -> None:
    text = "# café\nversion: 2\n" + MINIMAL_TARGET
    (error,) = _errors(text)
    assert error.start is not None
    assert (error.start.line, error.start.column) == (2, 10)
    assert error.start.byte == len("# café\nversion: ".encode())
    assert text.encode()[error.start.byte :].startswith(b"2")


def test_extension_keys_are_ignored() -> None:
    assert _errors(f"version: 1\nx-notes: {{any: [thing]}}\n{MINIMAL_TARGET}") == []


# --- the model: defaults, merges, local paths ----------------------------------------


def test_defaults_fill_everything_not_written() -> None:
    spec = load_spec(DATA / "good" / "minimal.yaml")
    (target,) = spec.targets
    assert spec.version == 1
    assert spec.policy == Policy(min_days_left=30, min_rsa_bits=2048, forbid_sha1=True)
    assert spec.resolve == ()
    assert target.ssh == spec.defaults.ssh == SshSettings()
    assert target.pool == PoolSpec("xs1.example.com", xe="xe", connection="ssh")
    assert target.wlb.port == 8012
    assert target.wlb.paths.cert == PurePosixPath("/etc/ssl/certs/server.pem")
    assert target.wlb.paths.key == PurePosixPath("/etc/ssl/certs/server.key")
    assert target.wlb.restart == "killall stunnel; stunnel"
    assert target.wlb.stunnel_conf is None
    assert target.wlb.credentials is None
    assert target.certificate.source == "self-signed"
    assert target.certificate.request is None
    assert target.verify is True


@pytest.fixture
def full_spec(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)  # relative paths must not follow the working directory
    return load_spec(DATA / "good" / "full.yaml", check_files=False), home


def test_local_paths_expand_tilde_and_anchor_at_the_spec_folder(full_spec: Any) -> None:
    spec, home = full_spec
    folder = (DATA / "good").absolute()
    (target,) = spec.targets
    cert = target.certificate
    assert spec.defaults.ssh.identity_file == home / "keys" / "wlb_ed25519"
    assert spec.defaults.ssh.known_hosts == folder / "known_hosts"
    assert cert.signed == folder / "certs" / "leaf.pem"
    assert cert.intermediates == (folder / "certs" / "int1.pem", Path("/pki/int2.pem"))
    assert cert.root == home / "pki" / "root.pem"
    assert cert.request is not None
    assert cert.request.csr_out == folder / ".." / "out" / "full.csr"


def test_target_ssh_overrides_only_its_keys(full_spec: Any) -> None:
    spec, _home = full_spec
    (target,) = spec.targets
    assert target.ssh.port == 2222
    assert target.ssh.identity_file == Path("/abs/id_rsa")
    assert target.ssh.user == "admin"  # inherited from defaults.ssh
    assert target.ssh.known_hosts == spec.defaults.ssh.known_hosts
    assert target.ssh.host_key_policy == "accept-new"
    assert target.ssh.connect_timeout == 2.5


def test_every_field_reaches_the_model(full_spec: Any) -> None:
    spec, _ = full_spec
    (target,) = spec.targets
    assert spec.policy == Policy(min_days_left=14, min_rsa_bits=3072, forbid_sha1=False)
    # Host names are case-insensitive: resolve keys are kept lower-case.
    assert spec.resolve == (("wlb.example.com", "192.0.2.10"), ("xs1.example.com", "2001:db8::1"))
    assert spec.address_of("WLB.example.com.") == "192.0.2.10"
    assert spec.address_of("other.example.com") == "other.example.com"
    assert target.pool == PoolSpec(
        "xs1.example.com", "/opt/xe", "local", "192.0.2.1", PurePosixPath("/lab/etc/stunnel"),
        getent="/usr/bin/getent")
    assert spec.leftover_days == 7
    wlb = target.wlb
    assert (wlb.port, wlb.connection, wlb.ssh_host) == (443, "local", "192.0.2.10")
    assert wlb.paths.cert == PurePosixPath("/srv/stunnel/server.pem")
    assert wlb.stunnel_conf == PurePosixPath("/etc/stunnel/wlb.conf")
    assert wlb.credentials is not None
    assert wlb.credentials.password_env == "WLB_PASS"
    request = target.certificate.request
    assert request is not None
    assert request.common_name == "wlb.example.com"  # defaulted from wlb.address
    assert request.alt_names[-1] == "IP:192.0.2.10"
    assert request.key == KeySpec("ec", 256)  # EC default size
    assert request.subject.items()[0] == ("C", "NO")
    assert target.certificate.signer is not None
    assert target.certificate.signer.command == ("sign-it", "--in", "{csr}", "--out={cert}")
    assert target.verify is False


@pytest.mark.parametrize("key", ["signed", "root", "ssh"])
def test_a_local_path_the_os_cannot_look_at_is_that_fields_error(tmp_path: Path,
                                                                   key: str) -> None:
    """200 'é' are 200 characters (within the schema's 255 a part) but 400 bytes, more
    than a file name can hold: the OS refuses even to look (ENAMETOOLONG). That is the
    field's error at its line, never a crash (exit 3)."""
    (tmp_path / "root.pem").write_bytes((DATA.parent / "certs" / "openssl-root.pem").read_bytes())
    long = f"{tmp_path}/{'é' * 200}/x.pem"
    files = {"signed": str(tmp_path / "root.pem"), "root": str(tmp_path / "root.pem")}
    if key != "ssh":
        files[key] = long
    ssh = f"\n    ssh: {{identity_file: '{long}'}}" if key == "ssh" else ""
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"""version: 1
targets:
  - name: t1{ssh}
    pool: {{coordinator: xs1.example.com}}
    wlb: {{address: wlb.example.com}}
    certificate:
      source: ca-signed
      request: {{common_name: wlb.example.com}}
      signed: '{files["signed"]}'
      root: '{files["root"]}'
""")
    loaded, diagnostics = load_spec_with_diagnostics(spec)
    assert loaded is None
    where = "targets[0].ssh.identity_file" if key == "ssh" else f"targets[0].certificate.{key}"
    (error,) = [d for d in diagnostics if d.is_error]
    assert error.path == where
    assert error.start is not None
    assert "File name too long" in error.message


PATH_FIELDS = {  # every path a spec holds, with the part of a target it sits in
    "ssh.identity_file": "ssh: {identity_file: %s}",
    "ssh.known_hosts": "ssh: {known_hosts: %s}",
    "pool.trust_dir": "pool: {coordinator: xs1.example.com, trust_dir: %s}",
    "pool.state_dir": "pool: {coordinator: xs1.example.com, state_dir: %s}",
    "wlb.paths.cert": "wlb: {address: wlb.example.com, paths: {cert: %s}}",
    "wlb.paths.key": "wlb: {address: wlb.example.com, paths: {key: %s}}",
    "wlb.stunnel_conf": "wlb: {address: wlb.example.com, stunnel_conf: %s}",
    "certificate.request.csr_out": "certificate: {source: ca-signed, request: "
                                   "{common_name: wlb.example.com, csr_out: %s}}",
    "certificate.signed": "certificate: {source: ca-signed, request: "
                          "{common_name: wlb.example.com}, signed: %s, root: /r.pem}",
    "certificate.root": "certificate: {source: ca-signed, request: "
                        "{common_name: wlb.example.com}, root: %s}",
    "certificate.intermediates[0]": "certificate: {source: ca-signed, request: "
                                    "{common_name: wlb.example.com}, intermediates: [%s]}",
}
BAD_PATHS = {
    '"/srv/a\\nb/server.pem"': "must not contain control characters",
    '"/srv/a\\tb/server.pem"': "must not contain control characters",
    '"/srv/\\e[31m/server.pem"': "must not contain control characters",
    f'"/srv/{"a" * 256}/server.pem"': "longer than 255 characters",
    f'"/{"a/" * 2048}x"': "must be at most 4095 characters",
}


@pytest.mark.parametrize("bad", list(BAD_PATHS), ids=["newline", "tab", "escape", "part",
                                                      "length"])
@pytest.mark.parametrize("where", list(PATH_FIELDS))
def test_every_path_refuses_what_no_host_can_hold_at_its_line(where: str, bad: str) -> None:
    """A line break in a path splits the lines wlbplan reads back (the appliance's backups
    are listed one a line: ``/a\\nb/server.pem_orig`` came back as two paths, so a second
    rotation would not see its own backup); a part longer than a file name, or a path
    longer than Linux's PATH_MAX, is refused by the host half-way through an apply."""
    parts = {"pool": "pool: {coordinator: xs1.example.com}",
             "wlb": "wlb: {address: wlb.example.com}",
             "certificate": "certificate: {source: self-signed}"}
    own = PATH_FIELDS[where] % bad
    parts = {k: v for k, v in parts.items() if not own.startswith(k)}
    body = "\n    ".join([own, *parts.values()])
    text = f"version: 1\ntargets:\n  - name: t1\n    {body}\n"
    (error,) = [d for d in _errors(text) if d.path.startswith(f"targets[0].{where}")]
    assert error.start is not None
    assert error.start.line == 4
    assert BAD_PATHS[bad] in error.message


def test_merge_keys_share_settings() -> None:
    a, b = load_spec(DATA / "good" / "merge-keys.yaml").targets
    assert a.pool == PoolSpec("xs1.example.com", connection="local")
    assert b.pool == PoolSpec("xs2.example.com", connection="ssh")  # explicit keys win
    assert (b.wlb.address, b.wlb.port) == ("wlb2.example.com", 9012)


def test_digest_is_the_sha256_of_the_file_bytes() -> None:
    path = DATA / "good" / "minimal.yaml"
    assert spec_digest(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert load_spec(path).digest == spec_digest(path)


def test_digest_of_a_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="spec file not found"):
        spec_digest(tmp_path / "gone.yaml")


# --- the schema ----------------------------------------------------------------------


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(schema_text())
    return schema


def _object_schemas(node: Any, where: str = "#") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if "properties" in node:
            found.append((where, node))
        for key, value in node.items():
            found += _object_schemas(value, f"{where}/{key}")
    return found


def test_schema_is_valid_2020_12() -> None:
    schema = _schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_schemas_symlink_and_package_data_agree() -> None:
    assert (TESTS.parent / "schemas" / "wlbplan.schema.json").read_text() == schema_text()


def test_every_object_is_closed_and_every_property_described() -> None:
    schema = _schema()
    defs = schema["$defs"]
    for where, node in _object_schemas(schema):
        assert node.get("additionalProperties") is False, where
        for name, prop in node["properties"].items():
            ref = prop.get("$ref", "").removeprefix("#/$defs/")
            assert prop.get("description") or defs.get(ref, {}).get("description"), (
                f"{where}/{name} has no description"
            )


def test_schema_defaults_match_the_model() -> None:
    defs = _schema()["$defs"]
    ssh, wlb = defs["ssh"]["properties"], defs["wlb"]["properties"]
    policy = _schema()["properties"]["policy"]["properties"]
    pairs = [
        *(
            (ssh[k]["default"], getattr(SshSettings(), k))
            for k in ("user", "port", "host_key_policy", "connect_timeout")
        ),
        *((policy[k]["default"], getattr(Policy(), k)) for k in policy),
        (defs["pool"]["properties"]["xe"]["default"], PoolSpec("x").xe),
        (defs["pool"]["properties"]["trust_dir"]["default"], str(PoolSpec("x").trust_dir)),
        (defs["pool"]["properties"]["state_dir"]["default"], str(PoolSpec("x").state_dir)),
        (defs["connection"]["default"], PoolSpec("x").connection),
        (defs["connection"]["default"], WlbSpec("x").connection),
        (wlb["port"]["default"], WlbSpec("x").port),
        (wlb["restart"]["default"], WlbSpec("x").restart),
        (wlb["paths"]["properties"]["cert"]["default"], str(DEFAULT_CERT_PATH)),
        (wlb["paths"]["properties"]["key"]["default"], str(DEFAULT_KEY_PATH)),
        (
            defs["target"]["properties"]["verify"]["default"],
            Target.__dataclass_fields__["verify"].default,
        ),
        (defs["request"]["properties"]["key"]["properties"]["type"]["default"], KeySpec().type),
    ]
    for in_schema, in_model in pairs:
        assert in_schema == in_model


# --- the examples --------------------------------------------------------------------

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


def test_both_examples_exist() -> None:
    names = {path.name for path in EXAMPLE_FILES}
    assert {"self-signed.yaml", "ca-signed.yaml"} <= names


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_is_valid_and_points_editors_at_the_schema(path: Path) -> None:
    spec, diagnostics = load_spec_with_diagnostics(path)
    assert spec is not None, [d.format() for d in diagnostics]
    first = path.read_text().splitlines()[0]
    match = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
    assert match is not None
    assert (path.parent / match.group(1)).read_text() == schema_text()


# --- properties: nothing but SpecError ever comes out ---------------------------------


def _keys(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        found |= set(node.get("properties", {}))
        for value in node.values():
            found |= _keys(value)
    elif isinstance(node, list):
        for value in node:
            found |= _keys(value)
    return found


SCHEMA_KEYS = sorted(_keys(_schema()))
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["ssh", "local", "ca-signed", "self-signed", "10.0.0.5", "/etc/x", "{csr}"])
)
YAMLISH = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(SCHEMA_KEYS) | st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=15,
)
# What replaces one part of a valid document: the document brings the structure.
PART = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(SCHEMA_KEYS) | st.text(max_size=8), children, max_size=3),
    max_leaves=5,
)
# Pieces of YAML syntax, glued at random: reaches the parser's error paths quickly.
# fmt: off
FRAGMENTS = st.sampled_from([
    "version", "targets", "wlb", "address", "10.0.0.5", "1", "é", "~", "{", "}", "[", "]",
    ",", "'", '"', "#", "|", ">", "---", "...", ": ", "- ", "\n", "  ", "\t", "? ", "&a ",
    "*a", "<<: ", "!!binary ", "!x ", "%YAML 1.1\n", "\\0",
])
# fmt: on


def _assert_total(text: str) -> None:
    spec, diagnostics = load_spec_text(text, FUZZ_PATH)
    assert (spec is None) == any(d.is_error for d in diagnostics)
    for diagnostic in diagnostics:
        assert diagnostic.format().startswith(f"{FUZZ_PATH}")
        if diagnostic.start is not None:
            assert diagnostic.start.line >= 1
            assert diagnostic.start.column >= 1


@PARSER
@given(st.text())
def test_any_text_gives_diagnostics_not_exceptions(text: str) -> None:
    _assert_total(text)


@PARSER
@given(st.lists(FRAGMENTS, max_size=40).map("".join))
def test_yaml_token_soup_gives_diagnostics_not_exceptions(text: str) -> None:
    _assert_total(text)


@PARSER
@given(YAMLISH)
def test_any_structure_gives_diagnostics_not_exceptions(data: Any) -> None:
    _assert_total(yaml.safe_dump(data, allow_unicode=True))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else []
    )
    for key, value in items:
        found += _paths(value, (*prefix, key))
    return found


def _replace(node: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = dict(node) if isinstance(node, dict) else list(node)
    copy[path[0]] = _replace(node[path[0]], path[1:], value)
    return copy


def _one_target_each(document: Any) -> list[Any]:
    """The document once per target, with that target alone: every field an example
    uses, at a third of the size (the loader's time is the test's time)."""
    return [{**document, "targets": [target]} for target in document["targets"]]


GOOD_FILES = sorted((DATA / "good").glob("*.yaml"))
BASES = [one for path in EXAMPLE_FILES + GOOD_FILES
         for one in _one_target_each(yaml.safe_load(path.read_text()))]
BASE_PATHS = [(base, _paths(base)) for base in BASES]


@PARSER
@given(st.data())
def test_mutated_examples_give_diagnostics_not_exceptions(data: st.DataObject) -> None:
    # Valid documents with one part swapped reach the semantic rules with odd types.
    # JSON is YAML, and a hundred times quicker to write than yaml.safe_dump.
    example, paths = data.draw(st.sampled_from(BASE_PATHS))
    path = data.draw(st.sampled_from(paths))
    mutated = _replace(example, path, data.draw(PART))
    _assert_total(json.dumps(mutated, ensure_ascii=False, default=str))  # dates: as text


@PARSER
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_load_spec_on_a_file_raises_only_spec_error(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "spec.yaml"
        path.write_bytes(raw)
        spec, _ = load_spec_with_diagnostics(path)
        if spec is None:
            with pytest.raises(SpecError):  # anything else escaping fails the test
                load_spec(path)
        else:
            assert load_spec(path) == spec


# --- where targets sit in the file (audit findings point there) -----------------------


def test_targets_know_their_lines() -> None:
    text = """version: 1
targets:
  - name: a
    pool: {coordinator: xs1.example.com}
    wlb:
      address: wlb.example.com
    certificate: {source: self-signed}
  - name: b
    pool: {coordinator: xs2.example.com}
    wlb: {address: wlb2.example.com}
    certificate: {source: self-signed}
    verify: false
"""
    spec, diagnostics = load_spec_text(text, Path("/tmp/lines.yaml"))
    assert spec is not None, diagnostics
    first, second = spec.targets
    assert first.line() == 3
    assert (first.line("pool"), first.line("wlb.address"), first.line("certificate")) == (4, 6, 7)
    assert first.line("verify") == 3  # not written: the target's own line
    assert (second.line(), second.line("wlb.address"), second.line("verify")) == (8, 10, 12)
    assert first == dataclasses.replace(first, lines=())  # positions never make targets differ


# --- one rule for schema and code (issue 16 #4, #12, #13, #27) ---------------------------


def _one_target(**parts: Any) -> str:
    """A one-target spec as YAML text; ``parts`` replace the target's sections."""
    target: dict[str, Any] = {
        "name": "t1", "pool": {"coordinator": "xs1.example.com"},
        "wlb": {"address": "wlb.example.com"}, "certificate": {"source": "self-signed"},
    }
    target.update(parts)
    return yaml.safe_dump({"version": 1, "targets": [target]})


def test_schema_subject_bounds_are_the_models() -> None:
    from wlbplan.model.spec import SUBJECT_MAX_LENGTH

    request = _schema()["$defs"]["request"]["properties"]
    subject = request["subject"]["properties"]
    in_schema = {name: prop.get("maxLength") for name, prop in subject.items() if name != "C"}
    in_schema["CN"] = request["common_name"]["maxLength"]
    assert in_schema == {k: v for k, v in SUBJECT_MAX_LENGTH.items() if k != "C"}
    assert subject["C"]["pattern"] == "^[A-Za-z]{2}$"


def test_schema_ssh_user_rule_is_the_connectors() -> None:
    from wlbplan.model.names import MAX_SSH_USER, SSH_USER_PATTERN

    user = _schema()["$defs"]["ssh"]["properties"]["user"]
    assert (user["pattern"], user["maxLength"]) == (SSH_USER_PATTERN, MAX_SSH_USER)


USERS = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.sampled_from("aZ09._-@: \t\n$/\\'é"), min_size=1, max_size=40),
    st.sampled_from(["root", "admin@corp", "-oProxyCommand=x", "two words", ".hidden",
                     "a" * 32, "a" * 33, "_svc", "dom\\user", "user:x"]),
)


@settings(max_examples=300, deadline=None)
@given(USERS)
def test_an_ssh_user_the_spec_accepts_is_one_the_connector_accepts(user: str) -> None:
    """Before: the schema took any non-empty string and SshTarget refused '@', ':' and
    spaces with a ValueError, so `plan` ended with a traceback (exit 3)."""
    from wlbplan.connectors.ssh import SshTarget

    spec, _ = load_spec_text(_one_target(ssh={"user": user}), FUZZ_PATH)
    try:
        SshTarget(host="xs1.example.com", user=user)
    except ValueError:
        assert spec is None, f"the spec accepts {user!r}, the connector does not"
    else:
        assert spec is not None, f"the connector accepts {user!r}, the spec does not"


def _request_errors(**request: Any) -> list[str]:
    text = _one_target(certificate={"source": "ca-signed", "request": request})
    return [d.message for d in _errors(text)]


@pytest.mark.parametrize(("field", "limit"), [
    ("O", 64), ("OU", 64), ("L", 128), ("ST", 128), ("emailAddress", 128)])
def test_subject_fields_are_refused_beyond_their_upper_bound(field: str, limit: int) -> None:
    assert _request_errors(subject={field: "a" * limit}) == []
    assert _request_errors(subject={field: "a" * (limit + 1)}) == \
        [f"must be at most {limit} characters"]


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "\x1b[31m", "tab\there", "a\x85b", "\x7f"])
def test_subject_fields_refuse_control_characters(value: str) -> None:
    assert len(_request_errors(subject={"O": value})) == 1


def test_an_email_address_must_be_ascii() -> None:
    assert _request_errors(subject={"emailAddress": "pkí@example.com"}) == \
        ["must be plain ASCII (an IA5String), without control characters"]


def test_a_long_address_cannot_be_the_cn_it_defaults_to() -> None:
    long_name = "w" * 60 + ".example.com"
    text = _one_target(wlb={"address": long_name},
                       certificate={"source": "ca-signed", "request": {}})
    (error,) = _errors(text)
    assert error.path == "targets[0].certificate.request"
    assert "at most 64" in error.message
    assert error.start is not None


@pytest.mark.parametrize("address", ["fe80::1%eth0", "::1%1", "1.2.3.4%eth0", "01.2.3.4"])
def test_resolve_takes_plain_ip_addresses_only(address: str) -> None:
    text = f"resolve: {{wlb.example.com: '{address}'}}\n" + _one_target()
    (error,) = _errors(text)
    assert error.path == 'resolve["wlb.example.com"]'
    assert error.start is not None
    assert error.start.line == 1


@pytest.mark.parametrize("address", ["::1", "fd00::7", "10.0.0.5"])
def test_resolve_takes_ipv6_and_ipv4(address: str) -> None:
    assert _errors(f"resolve: {{wlb.example.com: '{address}'}}\n" + _one_target()) == []


def test_a_scoped_ip_alt_name_is_refused() -> None:
    messages = _request_errors(alt_names=["DNS:wlb.example.com", "IP:fe80::1%eth0"])
    assert messages == ["'fe80::1%eth0' is a scoped IPv6 address (with %zone): give the "
                        "address without the zone"]


def _targets(*targets: dict[str, Any], **top: Any) -> str:
    made = []
    for index, parts in enumerate(targets):
        target: dict[str, Any] = {"name": f"t{index}", "certificate": {"source": "self-signed"}}
        target.update(parts)
        made.append(target)
    return yaml.safe_dump({"version": 1, **top, "targets": made})


def test_two_targets_for_one_pool_are_refused_at_the_second() -> None:
    text = _targets(
        {"pool": {"coordinator": "xs1.example.com"}, "wlb": {"address": "wlb1.example.com"}},
        {"pool": {"coordinator": "xs1.example.com"}, "wlb": {"address": "wlb2.example.com"}},
    )
    (error,) = _errors(text)
    assert error.path == "targets[1].pool"
    assert error.message.startswith("targets[0] (line ")
    assert "already manages this pool" in error.message
    assert error.start is not None


def test_two_targets_for_one_appliance_are_refused() -> None:
    text = _targets(
        {"pool": {"coordinator": "xs1.example.com"}, "wlb": {"address": "wlb.example.com"}},
        {"pool": {"coordinator": "xs2.example.com"}, "wlb": {"address": "wlb.example.com",
                                                             "port": 8013}},
    )
    (error,) = _errors(text)
    assert error.path == "targets[1].wlb"
    assert "already manages this appliance" in error.message


@pytest.mark.parametrize("second", [
    {"pool": {"coordinator": "xs1.example.com", "state_dir": "/var/lib/wlbplan-2"}},
    {"pool": {"coordinator": "xs1.example.com", "xe": "/opt/xe"}},
    {"pool": {"coordinator": "xs1.example.com"}, "ssh": {"port": 2222}},
    {"pool": {"coordinator": "xs9.example.com"}},
], ids=["state_dir", "xe", "ssh-port", "coordinator"])
def test_what_tells_two_pools_apart(second: dict[str, Any]) -> None:
    first = {"pool": {"coordinator": "xs1.example.com"}, "wlb": {"address": "wlb1.example.com"}}
    assert _errors(_targets(first, {"wlb": {"address": "wlb2.example.com"}, **second})) == []


# ------------------------------------------------------------------------- local files


def _files_spec(folder: Path, certificate: str, ssh: str = "") -> Path:
    spec = folder / "spec.yaml"
    spec.write_text(f"""version: 1
{ssh}targets:
  - name: p1
    pool: {{coordinator: xs1.example.com}}
    wlb: {{address: wlb.example.com}}
    certificate:
{certificate}
""")
    return spec


def test_every_missing_local_file_is_reported_at_once_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    spec = _files_spec(tmp_path, """      source: ca-signed
      request: {common_name: wlb.example.com, csr_out: a-file/out.csr}
      signed: certs/missing.pem
      intermediates: [certs/int.pem]
      root: certs/root.pem""", ssh="defaults:\n  ssh: {identity_file: " + str(tmp_path) + "}\n")
    _, diagnostics = load_spec_with_diagnostics(spec)
    found = {(d.path, d.severity, d.start.line if d.start else None) for d in diagnostics}
    assert found == {
        ("defaults.ssh.identity_file", "error", 3),
        ("targets[0].certificate.request.csr_out", "error", 10),
        ("targets[0].certificate.signed", "error", 11),
        ("targets[0].certificate.intermediates[0]", "error", 12),
        ("targets[0].certificate.root", "error", 13),
    }, diagnostics
    signed = next(d for d in diagnostics if d.path.endswith("signed"))
    assert "leave `signed` out until the CA has signed the CSR" in signed.message
    with pytest.raises(SpecError):
        load_spec(spec)


def test_a_signer_may_write_its_certificate_into_a_folder_yet_to_be_made(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    for name in ("int.pem", "root.pem"):
        (certs / name).write_bytes((DATA.parent / "certs" / "openssl-root.pem").read_bytes())
    spec = _files_spec(tmp_path, """      source: ca-signed
      request: {common_name: wlb.example.com, csr_out: out/new/p1.csr}
      signer: {command: [sign, "{csr}", "{cert}"]}
      signed: signed/p1.pem
      intermediates: [certs/int.pem]
      root: certs/root.pem""")
    spec_value, diagnostics = load_spec_with_diagnostics(spec)
    assert spec_value is not None, diagnostics
    (tmp_path / "signed").write_text("a file where the signer's folder must be")
    _, diagnostics = load_spec_with_diagnostics(spec)
    assert [d.path for d in diagnostics] == ["targets[0].certificate.signed"]


def test_missing_ssh_files_are_warnings_and_local_targets_need_none(tmp_path: Path) -> None:
    ssh = ("defaults:\n  ssh: {identity_file: " + str(tmp_path / "no-key") + ", known_hosts: "
           + str(tmp_path / "no-known-hosts") + "}\n")
    spec = _files_spec(tmp_path, "      source: self-signed", ssh=ssh)
    value, diagnostics = load_spec_with_diagnostics(spec)
    assert value is not None
    assert {(d.path, d.severity) for d in diagnostics} == {
        ("defaults.ssh.identity_file", "warning"), ("defaults.ssh.known_hosts", "warning")}


# --- audit.ignore ----------------------------------------------------------------------


def test_audit_ignore_becomes_values_with_their_lines() -> None:
    text = ("version: 1\n"
            "audit:\n"
            "  ignore:\n"
            "    - rule: WLB-POOL-VERIFY-OFF\n"
            "      target: t1\n"
            "      until: 2025-03-01\n"  # unquoted: YAML's timestamp, kept as text
            "      reason: lab pool, verification comes with the new CA\n"
            "    - {rule: WLB-CERT-EXPIRING, reason: renewal ordered}\n"
            + MINIMAL_TARGET)
    spec, diagnostics = load_spec_text(text, FUZZ_PATH)
    assert diagnostics == []
    assert spec is not None
    first, second = spec.ignores
    assert first == Ignore("WLB-POOL-VERIFY-OFF", "t1", dt.date(2025, 3, 1),
                           "lab pool, verification comes with the new CA", line=4)
    assert second == Ignore("WLB-CERT-EXPIRING", None, None, "renewal ordered", line=8)
    assert first.origin == "audit.ignore, line 4"


def test_a_spec_without_audit_ignores_nothing() -> None:
    spec, _ = load_spec_text("version: 1\n" + MINIMAL_TARGET, FUZZ_PATH)
    assert spec is not None
    assert spec.ignores == ()


def test_the_schema_lists_exactly_the_catalogued_rule_ids() -> None:
    # The spec layer cannot import the catalogue (core/): the schema carries the ids.
    enum = _schema()["$defs"]["ignore"]["properties"]["rule"]["enum"]
    assert enum == list(CATALOGUE)


def test_the_xenapi_connector_reaches_the_model() -> None:
    a, b = load_spec(DATA / "good" / "xenapi.yaml").targets
    assert (a.pool.connector, a.pool.api_url) == ("xenapi", "https://xs1.example.com")
    assert a.pool.credentials is not None
    assert (a.pool.credentials.username_env, a.pool.credentials.password_env) == (
        "XS1_USER", "XS1_PASS")
    assert a.pool.tls.fingerprint_sha256 == ":".join(["AB"] * 32)  # xapi's own form
    assert (a.pool.tls.ca_file, a.pool.tls.insecure) == (None, False)
    assert b.pool.api_url == "https://[2001:db8::2]:8443/"
    assert b.pool.tls.insecure is True
    ssh = load_spec(DATA / "good" / "minimal.yaml").targets[0].pool
    assert (ssh.connector, ssh.credentials, ssh.url) == ("ssh", None, None)


def test_a_xenapi_ca_file_is_anchored_and_must_exist(tmp_path: Path) -> None:
    text = MINIMAL_TARGET.replace(
        "pool: {coordinator: xs1.example.com}",
        "pool: {coordinator: xs1.example.com, connector: xenapi, tls: {ca_file: ca.pem},\n"
        "           credentials: {username_env: U, password_env: P}}")
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text("version: 1\n" + text)
    _, diagnostics = load_spec_with_diagnostics(spec_file)
    assert [d.format().removeprefix(f"{spec_file}:") for d in diagnostics] == [
        f"4:76: error: targets[0].pool.tls.ca_file: {tmp_path / 'ca.pem'}: not found"]
    (tmp_path / "ca.pem").write_text("x")
    _, diagnostics = load_spec_with_diagnostics(spec_file)
    assert "no PEM certificate found" in diagnostics[0].message  # read as certificates
    (tmp_path / "ca.pem").write_bytes((EXAMPLES / "certs" / "example-root-ca.pem").read_bytes())
    spec = load_spec(spec_file)
    assert spec.targets[0].pool.tls.ca_file == tmp_path / "ca.pem"
