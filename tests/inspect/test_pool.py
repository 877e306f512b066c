"""Pool facts: ``pool.parse`` on captured coordinator output, edge cases, properties."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import string
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from hypothesis import example, given
from hypothesis import strategies as st
from property_settings import PARSER

from wlbplan.connectors.local import LocalRunner
from wlbplan.errors import RemoteCommandError, WlbplanError
from wlbplan.inspect import appliance, pool
from wlbplan.inspect import script as facts
from wlbplan.inspect.script import RawFact
from wlbplan.model.checks import NameLookup
from wlbplan.model.command import script as shell_script
from wlbplan.model.observed import PoolFacts, TrustedCert, xapi_at_least
from wlbplan.model.spec import Target

DATA = Path(__file__).resolve().parent / "data"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
PARAMS = ("uuid", pool.POOL_RECORD, "xapi", "hosts", "help.ca", "certs")

# Per situation: wlb-url host, verify flag, xapi version, and the trusted names with where
# their content comes from: "leaf"/"root" = that certificate of the appliance's file,
# None = listed but unreadable.
TRUST: dict[str, dict[str, str | None]] = {
    "trusted-verify": {"wlb-appliance.pem": "leaf"},
    "ch82-verify": {"wlb-appliance.pem": "leaf"},
    "fault-desync-host": {"wlb-appliance.pem": "leaf"},
    "two-ca-one-unreadable": {"other-ca.pem": None, "wlb-appliance.pem": "leaf"},
    "ca-signed": {"lab-root.pem": "root"},
}
VERIFYING = {"trusted-verify", "ca-signed", "ch82-verify"}
SITUATIONS = sorted(p.name.removesuffix(".pool.txt") for p in DATA.glob("*.pool.txt"))


def raw_of(situation: str) -> dict[str, RawFact]:
    return facts.parse((DATA / f"{situation}.pool.txt").read_text())


def with_field(raw: dict[str, RawFact], name: str, value: str) -> dict[str, RawFact]:
    """``raw`` with one field of the pool's record (pool-param-list) printed as ``value``."""
    record, count = re.subn(rf"^( *{re.escape(name)} \([ MS]R[OW]\) *: ).*$",
                            lambda m: m[1] + value, raw[pool.POOL_RECORD].output,
                            flags=re.MULTILINE)
    assert count == 1, name
    return {**raw, pool.POOL_RECORD: RawFact(record, 0)}


def parsed(situation: str, target: Target) -> PoolFacts:
    return pool.parse(raw_of(situation), target)


def appliance_chain(situation: str, target: Target) -> tuple[str, ...]:
    raw = facts.parse((DATA / f"{situation}.appliance.txt").read_text())
    return appliance.parse(raw, target).cert.chain


@pytest.mark.parametrize("situation", SITUATIONS)
def test_captured_pool_settings(situation: str, target: Target) -> None:
    got = parsed(situation, target)
    assert UUID.fullmatch(got.uuid)
    assert len(got.hosts) == 3
    assert all(UUID.fullmatch(h) for h in got.hosts)
    assert got.hosts == tuple(sorted(got.hosts))
    assert got.coordinator in got.hosts
    assert got.uuid not in got.hosts
    assert got.wlb_username == "wlbuser"
    assert got.wlb_enabled is True
    assert got.wlb_verify_cert is (situation in VERIFYING)
    host = "127.0.0.1" if situation == "fault-by-ip" else "wlb1.lab.test"
    assert re.fullmatch(re.escape(host) + r":\d+", got.wlb_url)
    assert got.wlb_host == host
    if situation == "legacy-xapi":
        assert got.xapi_version == "24.19.2"
        assert got.chain_verification is False
    elif situation == "ch82-verify":  # xapi 1.249 says 1.20
        assert got.xapi_version == "1.20"
        assert got.chain_verification is False
    else:
        assert got.xapi_version == "25.33.1"
        assert got.chain_verification is True
    assert got.ca_commands == ("pre-1.290" if situation == "ch82-verify" else "current")


@pytest.mark.parametrize("situation", SITUATIONS)
def test_captured_trusted_certificates(situation: str, target: Target) -> None:
    got = parsed(situation, target)
    expected = TRUST.get(situation, {})
    assert tuple(t.name for t in got.trusted) == tuple(sorted(expected))
    chain = appliance_chain(situation, target)
    for trusted in got.trusted:
        source = expected[trusted.name]
        if source is None:
            assert trusted.pem is None
            continue
        assert trusted.pem is not None
        assert trusted.pem == (chain[0] if source == "leaf" else chain[-1])
        assert x509.load_pem_x509_certificate(trusted.pem.encode())


def test_every_pool_capture_is_described() -> None:
    assert set(TRUST) | VERIFYING | {"legacy-xapi", "fault-by-ip", "fresh", "ch82-verify"} <= set(
        SITUATIONS)


# ------------------------------------------------------------------- hand-written edges


def test_empty_output_is_not_a_coordinator(target: Target) -> None:
    with pytest.raises(RemoteCommandError, match=r"did not report 'uuid'.*xe CLI"):
        pool.parse({}, target)


@pytest.mark.parametrize("missing", PARAMS)
def test_each_missing_setting_is_named(missing: str, target: Target) -> None:
    raw = raw_of("fresh")
    del raw[missing]
    with pytest.raises(RemoteCommandError, match=re.escape(repr(missing))):
        pool.parse(raw, target)


def test_a_failing_xe_is_reported_in_its_own_words(target: Target) -> None:
    raw = raw_of("fresh")
    raw[pool.POOL_RECORD] = RawFact(
        "The uuid you supplied was invalid.\ntype: pool\nuuid: x", 1)
    with pytest.raises(RemoteCommandError) as err:
        pool.parse(raw, target)
    assert str(err.value) == (
        "pool1: xe failed reading pool.params: The uuid you supplied was invalid.\n"
        "type: pool\nuuid: x (exit 1)")


@pytest.mark.parametrize(("said", "commands"), [
    # cli_frontend.ml rio_help: the command's record, or this line (exit 0 both ways).
    ("command name            : pool-install-ca-certificate\n        reqd params     : "
     "filename\n", "current"),
    ("Unknown command 'pool-install-ca-certificate'", "pre-1.290"),
])
def test_the_ca_commands_come_from_xe_help(said: str, commands: str, target: Target) -> None:
    raw = raw_of("fresh")
    raw["help.ca"] = RawFact(said, 0)
    assert pool.parse(raw, target).ca_commands == commands


@pytest.mark.parametrize("said", [
    "", "Usage: xe <command>", "command name : pool-install-ca-certificate-x",
    "Unknown command 'pool-certificate-install'",
])
def test_an_unrecognised_help_is_an_error_for_that_host(said: str, target: Target) -> None:
    raw = raw_of("fresh")
    raw["help.ca"] = RawFact(said, 0)
    with pytest.raises(RemoteCommandError, match="which CA certificate commands"):
        pool.parse(raw, target)


def test_an_unset_wlb_url_is_empty(target: Target) -> None:
    got = pool.parse(with_field(raw_of("fresh"), "wlb-url", ""), target)
    assert got.wlb_url == ""
    assert got.wlb_host == ""


def test_listed_certificate_without_its_content_fact(target: Target) -> None:
    raw = raw_of("trusted-verify")
    del raw["ca:wlb-appliance.pem"]
    assert pool.parse(raw, target).trusted == (TrustedCert("wlb-appliance.pem"),)


def test_certificate_list_with_newlines_blanks_and_duplicates(target: Target) -> None:
    raw = raw_of("trusted-verify")
    raw["certs"] = RawFact("b.pem,\nwlb-appliance.pem, ,a.pem\n", 0)
    names = [t.name for t in pool.parse(raw, target).trusted]
    assert names == ["a.pem", "b.pem", "wlb-appliance.pem"]


def test_a_ca_file_that_is_not_pem_has_no_content(target: Target) -> None:
    raw = raw_of("trusted-verify")
    raw["ca:wlb-appliance.pem"] = RawFact("garbage", 0)
    assert pool.parse(raw, target).trusted == (TrustedCert("wlb-appliance.pem"),)


def test_unreadable_ca_file_from_the_capture(target: Target) -> None:
    raw = raw_of("two-ca-one-unreadable")
    assert raw["ca:other-ca.pem"].exit_code == 1
    assert "Is a directory" in raw["ca:other-ca.pem"].output


# ------------------------------------------------------------------------- properties

NAMES = st.one_of(st.sampled_from(PARAMS), st.text(max_size=12),
                  st.builds(lambda n: f"ca:{n}", st.text(max_size=12)))
OUTPUTS = st.one_of(
    st.text(),
    st.sampled_from([r.output for s in SITUATIONS for r in raw_of(s).values()]),
    st.sampled_from(["true", "false", "", "a.pem,b.pem", "24.40.0", "2.x", "²", "٣.٤"]),
)
RAWS = st.builds(RawFact, output=OUTPUTS, exit_code=st.integers(-(2**31), 2**31))


@st.composite
def pool_outputs(draw: st.DrawFn) -> dict[str, RawFact]:
    """Mostly-complete coordinator outputs with arbitrary values, or arbitrary dicts."""
    if draw(st.booleans()):
        return draw(st.dictionaries(NAMES, RAWS, max_size=12))
    raw = {name: draw(RAWS) for name in PARAMS if draw(st.integers(0, 9))}
    for name in draw(st.lists(st.text(max_size=8), max_size=3)):
        raw[f"ca:{name}"] = draw(RAWS)
    return raw


def _target() -> Target:
    from wlbplan.model.spec import CertificateSpec, PoolSpec, WlbSpec

    return Target(name="t", pool=PoolSpec(coordinator="c"), wlb=WlbSpec(address="w"),
                  certificate=CertificateSpec(source="self-signed"))


TARGET = _target()


@PARSER
@given(pool_outputs())
@example({**raw_of("fresh"), "xapi": RawFact("²4.40", 0)})
def test_parse_raises_only_wlbplan_errors(raw: dict[str, RawFact]) -> None:
    """Facts, or a WlbplanError; and what later stages ask of the facts (wlb_host,
    chain_verification) never crashes. (The example crashed xapi_at_least with
    ValueError before it matched ASCII digits.)"""
    try:
        got = pool.parse(raw, TARGET)
    except WlbplanError:
        return
    assert isinstance(got, PoolFacts)
    assert [t.name for t in got.trusted] == sorted(t.name for t in got.trusted)
    for trusted in got.trusted:
        if trusted.pem is not None:
            x509.load_pem_x509_certificate(trusted.pem.encode())
    assert isinstance(got.wlb_host, str)
    assert isinstance(got.chain_verification, bool)


# xe <class>-param-list (cli_printer.ml multi_line_record, as the lab's xe prints it)
FIELD_NAMES = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=16)
ACCESS = st.sampled_from([" RO", " RW", "MRO", "MRW", "SRO", "SRW"])
# A value's own lines: text without a line break, some of it unusual.
VALUE_LINES = st.text(string.printable.replace("\n", "").replace("\r", "").replace(
    "\x0b", "").replace("\x0c", "") + "é漢\u200f\x1b:()[]", max_size=30)
FIELD_LINES = st.builds(lambda n, a, v: f"  {n} ({a}): {v}", FIELD_NAMES, ACCESS, VALUE_LINES)
PARAM_LIST_TEXTS = st.one_of(st.text(), st.builds(
    "\n".join, st.lists(st.one_of(st.text(max_size=30), FIELD_LINES), max_size=8)))


def _field_like(line: str) -> bool:
    return pool._FIELD.fullmatch(line) is not None


# A field as xe prints it: (name, access marker, deprecated?, its value's lines; a later
# line never looks like a field, as no value xapi prints does but a forged one).
FIELDS = st.tuples(FIELD_NAMES, ACCESS, st.booleans(),
                   st.lists(VALUE_LINES, min_size=1, max_size=3).filter(
                       lambda ls: not any(map(_field_like, ls[1:]))))


@PARSER
@given(st.lists(FIELDS, min_size=1, max_size=6, unique_by=lambda f: f[0]),
       PARAM_LIST_TEXTS)
def test_param_list_reads_back_every_field_and_only_fails_with_value_error(
        fields: list[tuple[str, str, bool, list[str]]], text: str) -> None:
    """What xe prints reads back as its fields (as the inspection script captures it:
    the record, its trailing line breaks cut); any text at all gives fields or a
    ValueError (which refuses the pool), never another error."""
    from wlbplan.lab.xe.cli import multi_line_record

    printed = [(f"{name} ({access}){' [DEPRECATED]' if old else ''}", "\n".join(lines))
               for name, access, old, lines in fields]
    expected = {name: "\n".join(lines).strip() for name, _, _, lines in fields}
    assert pool.parse_param_list(multi_line_record(printed).rstrip("\n")) == expected
    try:
        got = pool.parse_param_list(text)
    except ValueError:
        return
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+", name) for name in got)
    assert all(isinstance(value, str) for value in got.values())


def test_param_list_of_the_emulated_pool() -> None:
    record = pool.parse_param_list(raw_of("fresh")[pool.POOL_RECORD].output)
    assert set(pool.PARAMS) <= set(record)
    assert record["wlb-verify-cert"] == "false"
    assert record["other-config"] == ""


@pytest.mark.parametrize(("text", "fields"), [
    ("uuid ( RO)        : u\n    name-description ( RW): two\nlines\n  master ( RO): m",
     {"uuid": "u", "name-description": "two\nlines", "master": "m"}),
    ("\nuuid ( RO)  : u\n  other-config (MRW): a: 1; b: 2\n\n\n",
     {"uuid": "u", "other-config": "a: 1; b: 2"}),
    ("uuid ( RO)          : u\n  old-field ( RO) [DEPRECATED]: x\n  empty ( RW): ",
     {"uuid": "u", "old-field": "x", "empty": ""}),
])
def test_param_list_edges(text: str, fields: dict[str, str]) -> None:
    assert pool.parse_param_list(text) == fields


def test_a_field_forged_inside_a_value_refuses_the_pool(target: Target) -> None:
    """A description (anyone with pool-operator rights writes it) that holds a line
    looking like a field: the record then names that field twice. Refused, not guessed."""
    forged = with_field(raw_of("fresh"), "name-description",
                        "x\n     wlb-verify-cert ( RW): true")
    with pytest.raises(RemoteCommandError, match=r"the field 'wlb-verify-cert' twice"):
        pool.parse(forged, target)
    with pytest.raises(ValueError, match="before any field"):
        pool.parse_param_list("garbage\nuuid ( RO): u")


def test_the_regression_example_reaches_the_derived_questions() -> None:
    got = pool.parse({**raw_of("fresh"), "xapi": RawFact("²4.40", 0)}, TARGET)
    assert got.chain_verification is False


@given(st.text(string.printable, max_size=40))
def test_xapi_version_comparison_on_ascii_versions(version: str) -> None:
    """The same question outside the bug above: any ASCII version string compares."""
    assert isinstance(xapi_at_least(version, (24, 40)), bool)


@pytest.mark.parametrize(("version", "verifies_chain"), [
    ("25.33.1", True), ("24.40.0", True), ("24.39.9", False), ("24.19.2", False),
    ("1.290.0", False), ("", False), ("24", False), (" 24.40", True),
    # What does not parse counts as old: the safe side (the leaf itself gets trusted).
    ("v24.40", False), ("²4.40", False), ("٢٤.٤٠", False), ("1" * 5000 + ".0", False),
])
def test_chain_verification_by_xapi_version(version: str, verifies_chain: bool) -> None:
    assert xapi_at_least(version, (24, 40)) is verifies_chain


# ---------------------------------------------------------------------- script safety

NASTY = [
    "two words", "it's", 'say "hi"', "$(touch pwned1)", "`touch pwned2`", "; touch pwned3 #",
    "&& touch pwned4", "| touch pwned5", "$HOME*?[a]{a,b}~", "back\\slash", "-n",
    "é ü 漢字", "> pwned6", "x\ntouch pwned7\n", "'$(touch pwned8)'", '"$(touch pwned9)"',
]
MARKERS = [f"pwned{i}" for i in range(1, 13)]
POOL_UUID = "11111111-2222-3333-4444-555555555555"
MASTER = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
# A stand-in xe that checks the uuids it is given and lists hostile certificate names.
FAKE_XE = f"""#!/bin/sh
arg() {{ for a; do case $a in "$_k"=*) printf '%s' "${{a#*=}}"; return;; esac; done; }}
_k=uuid; u=$(arg "$@"); _k=param-name; p=$(arg "$@")
case $1 in
  pool-list) echo {POOL_UUID};;
  pool-param-get)
    [ "$u" = {POOL_UUID} ] || {{ echo "The uuid you supplied was invalid." >&2; exit 1; }}
    case $p in
      wlb-url) echo wlb.example.com:8012;; wlb-username) echo wlbuser;;
      wlb-enabled) echo true;; wlb-verify-cert) echo false;; master) echo {MASTER};;
    esac;;
  pool-param-list)
    [ "$u" = {POOL_UUID} ] || {{ echo "The uuid you supplied was invalid." >&2; exit 1; }}
    echo "uuid ( RO)             : $u"; echo "     master ( RO): {MASTER}"
    printf '    wlb-url ( RO): '; echo wlb.example.com:8012
    echo "wlb-username ( RO): wlbuser"; echo " wlb-enabled ( RW): true"
    echo "wlb-verify-cert ( RW): false";;
  host-param-get)
    [ "$u" = {MASTER} ] || {{ echo "The uuid you supplied was invalid." >&2; exit 1; }}
    echo 25.33.1;;
  host-list) echo {MASTER},bbbbbbbb-bbbb-cccc-dddd-eeeeeeeeeeee;;
  help) echo "command name            : $2";;
  pool-certificate-list)
    echo 'a.pem,$(touch pwned10),b c.pem,;touch${{IFS}}pwned11,`touch pwned12`,ok.pem';;
  *) echo "Unknown command: $1" >&2; exit 1;;
esac
"""
LISTED = sorted(["a.pem", "$(touch pwned10)", "b c.pem", ";touch${IFS}pwned11",
                 "`touch pwned12`", "ok.pem"])


def _nasty_pool(tmp_path: Path, part: str, make_target: Callable[..., Target]) -> Target:
    from wlbplan.lab import pki

    folder = tmp_path / part
    xe = folder / "bin dir" / f"xe{part}"
    xe.parent.mkdir(parents=True)
    xe.write_text(FAKE_XE)
    xe.chmod(0o755)
    trust = folder / f"stunnel{part}"
    (trust / "certs").mkdir(parents=True)
    for name in ("a.pem", "ok.pem"):
        issued = pki.build(f"CA {name}", key=pki.make_key("ec", 256), ca=True)
        (trust / "certs" / name).write_bytes(issued.cert_pem)
    return make_target(xe=str(xe), trust_dir=str(trust) + "/")


@pytest.mark.parametrize("part", NASTY)
def test_pool_script_is_valid_sh(part: str, tmp_path: Path,
                                 make_target: Callable[..., Target]) -> None:
    text = pool.script(_nasty_pool(tmp_path, part, make_target))
    checked = subprocess.run(["sh", "-n", "-c", text], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("part", NASTY)
def test_pool_script_runs_nothing_injected(part: str, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch,
                                           make_target: Callable[..., Target]) -> None:
    target = _nasty_pool(tmp_path, part, make_target)
    monkeypatch.chdir(tmp_path)
    result = LocalRunner().run(shell_script(pool.script(target)), timeout=60)
    assert [m for m in MARKERS if (tmp_path / m).exists()] == []
    raw = facts.parse(result.stdout)
    assert raw["uuid"].output == POOL_UUID
    assert raw["xapi"].output == "25.33.1"
    assert pool.parse_param_list(raw[pool.POOL_RECORD].output)["wlb-url"] == \
        "wlb.example.com:8012"
    # Only names made of safe characters reached a path (the two safe, existing ones
    # were read); the hostile ones refuse the pool, by name.
    assert all(re.fullmatch(r"ca:[A-Za-z0-9_-][A-Za-z0-9._-]*", n) for n in raw if n[:3] == "ca:")
    assert sorted(n for n, f in raw.items() if n[:3] == "ca:" and f.ok) == ["ca:a.pem", "ca:ok.pem"]
    with pytest.raises(RemoteCommandError, match=re.escape(repr(LISTED[0]))):
        pool.parse(raw, target)


def test_pool_script_does_not_expand_globs_in_ca_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_target: Callable[..., Target]
) -> None:
    """Names are split on commas only (set -f): a listed '*.pem' is never expanded into
    the names of files in the working directory, which would look like safe CA names and
    be read from the trust store."""
    target = _nasty_pool(tmp_path, "globs", make_target)
    xe = Path(target.pool.xe)
    listed = "a.pem,*.pem,?k.pem,[o]k.pem,ok.pem"
    script_text, count = re.subn(r"echo '[^'\n]*'", f"echo '{listed}'", FAKE_XE)
    assert count == 1  # the pool-certificate-list answer
    xe.write_text(script_text)
    work = tmp_path / "cwd"
    work.mkdir()
    for name in ("zz.pem", "ok.pem"):  # what the globs would match
        (work / name).write_text("not a certificate")
    monkeypatch.chdir(work)
    result = LocalRunner().run(shell_script(pool.script(target)), timeout=60)
    raw = facts.parse(result.stdout)
    assert raw["certs"].output == listed
    # Only the safe names as listed were read: no ca:zz.pem from the working directory.
    assert sorted(n for n in raw if n.startswith("ca:")) == ["ca:a.pem", "ca:ok.pem"]
    with pytest.raises(RemoteCommandError, match=r"CA certificate named '\*\.pem'"):
        pool.parse(raw, target)


def test_pool_script_with_an_absolute_marker_path(tmp_path: Path,
                                                  make_target: Callable[..., Target]) -> None:
    marker = tmp_path / "pwned-abs"
    target = make_target(xe=f"{tmp_path}/x$(touch {marker})",
                         trust_dir=f"{tmp_path}/t$(touch {marker})")
    result = LocalRunner().run(shell_script(pool.script(target)), timeout=60)
    assert not marker.exists()
    raw = facts.parse(result.stdout)
    assert raw["uuid"].exit_code == 127  # no such xe: sh says so, nothing else ran
    with pytest.raises(RemoteCommandError, match="xe failed reading"):
        pool.parse(raw, target)


# ------------------------------------------------- names that become paths (issue 16 #3)


@pytest.mark.parametrize("name", [
    "../x.pem", "a/b.pem", "/etc/shadow", "..", ".pem", ".hidden.pem", "x.txt", "x.pem/",
    "x y.pem", "x\\y.pem", "é.pem", "x" * 252 + ".pem",
])
def test_a_listed_name_that_is_not_one_file_name_refuses_the_pool(
        name: str, target: Target) -> None:
    raw = raw_of("trusted-verify")
    raw["certs"] = RawFact(f"wlb-appliance.pem,{name}", 0)
    with pytest.raises(RemoteCommandError, match="not a safe certificate name") as err:
        pool.parse(raw, target)
    assert repr(name[:80]) in str(err.value)
    assert str(err.value).startswith("pool1: ")


@pytest.mark.parametrize("name", ["a.pem", "wlbplan-root-0123456789abcdef.pem", "A_b-c.1.pem",
                                  "x" * 251 + ".pem"])
def test_names_xapi_accepts_are_read(name: str, target: Target) -> None:
    raw = raw_of("trusted-verify")
    raw["certs"] = RawFact(name, 0)
    assert [t.name for t in pool.parse(raw, target).trusted] == [name]


# ------------------------------------------- required output that is empty (issue 16 #15)


def test_an_xe_that_prints_nothing_is_not_an_empty_pool(target: Target) -> None:
    """Every command exits 0 and prints nothing: that is no pool at all, not a pool with
    no hosts, no settings and no trust."""
    raw = {name: RawFact("", 0) for name in PARAMS}
    with pytest.raises(RemoteCommandError, match=r"printed nothing for .*is it the xe CLI"):
        pool.parse(raw, target)


def _printing(fact: str, output: str) -> dict[str, RawFact]:
    """The fresh capture with one fact (or, ``field:NAME``, one field of the pool's
    record) printed as ``output``."""
    raw = raw_of("fresh")
    if fact.startswith("field:"):
        return with_field(raw, fact.removeprefix("field:"), output)
    return {**raw, fact: RawFact(output, 0)}


@pytest.mark.parametrize(("fact", "output"), [
    ("uuid", ""), ("uuid", "not-a-uuid"), ("field:master", ""), ("hosts", ""),
    ("hosts", "aaaaaaaa-bbbb-cccc-dddd-000000000000"),  # the coordinator is not in it
    ("xapi", ""), ("field:wlb-enabled", ""), ("field:wlb-verify-cert", ""),
    ("field:wlb-verify-cert", "yes"), ("field:wlb-enabled", "True\nfalse"),
    (pool.POOL_RECORD, ""), (pool.POOL_RECORD, "wlb-url: x"),
])
def test_each_required_output_that_is_empty_or_unparsable_refuses_the_pool(
        fact: str, output: str, target: Target) -> None:
    with pytest.raises(RemoteCommandError, match=r"^pool1: the coordinator's 'xe' printed"):
        pool.parse(_printing(fact, output), target)


@pytest.mark.parametrize("fact", ["field:wlb-url", "field:wlb-username", "certs"])
def test_output_that_may_be_empty(fact: str, target: Target) -> None:
    """An unset wlb-url or user, and no CA certificate at all, are real states."""
    assert isinstance(pool.parse(_printing(fact, ""), target), PoolFacts)


# ------------------------------------------- how the coordinator resolves WLB's name


LOOKUPS: dict[str, NameLookup | None] = {
    "fault-wlb-unresolvable": NameLookup("wlb1.lab.test", found=False),
    "fault-wlb-resolves-elsewhere": NameLookup("wlb1.lab.test", True, ("127.0.0.2",)),
    "fault-by-ip": None,  # an IP literal: no name to resolve
}


@pytest.mark.parametrize("situation", SITUATIONS)
def test_captured_lookup_of_wlbs_name(situation: str, target: Target) -> None:
    """The lab's getent answers from the pool's name map, as its xe resolves WLB."""
    got = pool.parse_lookup(raw_of(situation), parsed(situation, target).wlb_host)
    assert got == LOOKUPS.get(situation, NameLookup("wlb1.lab.test", True, ("127.0.0.1",)))


@pytest.mark.parametrize(("output", "code", "expected"), [
    ("10.0.0.5        wlb.example.com wlb\n", 0, ("10.0.0.5",)),
    ("2001:0db8::0001 wlb.example.com\n10.0.0.5 wlb.example.com\n", 0,
     ("2001:db8::1", "10.0.0.5")),
    ("10.0.0.5 a\n10.0.0.5 b\n", 0, ("10.0.0.5",)),
    ("", 2, None),  # getent: key not found
])
def test_getent_lines(output: str, code: int, expected: tuple[str, ...] | None) -> None:
    got = pool.parse_lookup({pool.LOOKUP: RawFact(output, code)}, "wlb.example.com")
    assert got == NameLookup("wlb.example.com", expected is not None, expected or ())


@pytest.mark.parametrize(("raw", "host"), [
    ({}, "wlb.example.com"),  # not asked
    ({pool.LOOKUP: RawFact("sh: getent: not found", 127)}, "wlb.example.com"),
    ({pool.LOOKUP: RawFact("Unknown database", 1)}, "wlb.example.com"),
    ({pool.LOOKUP: RawFact("garbage with no address\n", 0)}, "wlb.example.com"),
    ({pool.LOOKUP: RawFact("", 2)}, "10.0.0.5"),
    ({pool.LOOKUP: RawFact("", 2)}, ""),
])
def test_no_verdict_on_the_name_is_no_lookup(raw: dict[str, RawFact], host: str) -> None:
    assert pool.parse_lookup(raw, host) is None


@PARSER
@given(st.text(max_size=400), st.integers(0, 255), st.text(max_size=40))
def test_parse_lookup_on_any_output(output: str, code: int, host: str) -> None:
    got = pool.parse_lookup({pool.LOOKUP: RawFact(output, code)}, host)
    if got is None:
        return
    assert got.name == host
    assert len(got.addresses) <= pool.MAX_ADDRESSES
    assert len(set(got.addresses)) == len(got.addresses)
    for address in got.addresses:
        assert str(ipaddress.ip_address(address)) == address
    assert got.found == (code == 0)


FAKE_GETENT = """#!/bin/sh
printf '%s\\n' "$@" > "$(dirname "$0")/getent-args"
exit 2
"""


@pytest.mark.parametrize(("url", "host"), [
    ("wlb.example.com:8012", "wlb.example.com"),
    ("[2001:db8::1]:8012", "2001:db8::1"),
    ("-n:8012", "-n"),
    ("$(touch pwned20):1", "$(touch pwned20)"),
    ("`touch pwned21` x;y:1", "`touch pwned21` x;y"),
])
def test_the_wlb_host_reaches_getent_as_one_word(
        url: str, host: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        make_target: Callable[..., Target]) -> None:
    """The host part of wlb-url is cut out by the shell and passed after ``--``: never
    run, never split, never an option."""
    target = _nasty_pool(tmp_path, "lookup", make_target)
    xe = Path(target.pool.xe)
    xe.write_text(FAKE_XE.replace("echo wlb.example.com:8012", f"printf '%s\\n' '{url}'"))
    assert url in xe.read_text()
    getent = tmp_path / "getent"
    getent.write_text(FAKE_GETENT)
    getent.chmod(0o755)
    target = dataclasses.replace(target, pool=dataclasses.replace(target.pool,
                                                                  getent=str(getent)))
    monkeypatch.chdir(tmp_path)
    result = LocalRunner().run(shell_script(pool.script(target)), timeout=60)
    assert list(tmp_path.glob("pwned*")) == []
    assert (tmp_path / "getent-args").read_text() == f"hosts\n--\n{host}\n"
    assert facts.parse(result.stdout)[pool.LOOKUP] == RawFact("", 2)


def test_no_wlb_url_asks_nothing(tmp_path: Path, make_target: Callable[..., Target]) -> None:
    target = _nasty_pool(tmp_path, "nourl", make_target)
    xe = Path(target.pool.xe)
    xe.write_text(FAKE_XE.replace("echo wlb.example.com:8012", "echo"))
    target = dataclasses.replace(target, pool=dataclasses.replace(target.pool,
                                                                  getent="/nonexistent"))
    result = LocalRunner().run(shell_script(pool.script(target)), timeout=60)
    assert pool.LOOKUP not in facts.parse(result.stdout)
