"""The ``@wlbplan NAME DATA .`` line format: the preamble writes it, ``script.parse`` reads it.

The closing `` .`` makes a line self-delimiting: a line cut short (a dropped connection)
is never taken for a complete one. Captured outputs (``data/*.txt``), hand-written edge
cases, and hypothesis properties: parse never raises, returns only well-formed facts, and
gives back exactly what the preamble encoded, also when the encoding really runs through
``sh``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import random
import re
import string
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from property_settings import PARSER

from wlbplan.connectors.local import LocalRunner
from wlbplan.inspect import script
from wlbplan.inspect.script import MARK, RawFact
from wlbplan.model.command import script as shell_script

DATA = Path(__file__).resolve().parent / "data"
CAPTURES = sorted(DATA.glob("*.txt"))


def gathered(text: str) -> set[str]:
    """The fact names a script gathers under fixed names (``_f NAME ...`` lines, or after
    ``then`` when only some hosts have it to gather)."""
    return set(re.findall(r"(?:^\s*|; then )_f ([A-Za-z0-9_.:-]+) ", text, re.M))


def _script_facts() -> tuple[set[str], set[str]]:
    from wlbplan.inspect import appliance, pool
    from wlbplan.model.spec import CertificateSpec, PoolSpec, Target, WlbSpec

    # With a stunnel.conf to check, as the lab's spec (and so every capture) has one.
    wlb = WlbSpec(address="w.test", stunnel_conf=PurePosixPath("/etc/stunnel/stunnel.conf"))
    target = Target(name="t", pool=PoolSpec(coordinator="c"), wlb=wlb,
                    certificate=CertificateSpec(source="self-signed"))
    return gathered(appliance.script(target)), gathered(pool.script(target))


# What the current scripts gather: a capture made by an older script fails below (then
# rerun capture.py).
APPLIANCE_FACTS, POOL_FACTS = _script_facts()
# What the scripts can name a fact: fact() accepts these, and the pool's "ca:$_c" only
# gets names xapi accepts ([A-Za-z0-9._-]).
FACT_NAME = re.compile(r"[A-Za-z0-9_.:-]+", re.ASCII)
# What parse reads as a status: what $? prints, 0..255 without leading zeros.
STATUS = re.compile(r"0|[1-9][0-9]?|1[0-9]{2}|2[0-4][0-9]|25[0-5]", re.ASCII)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def line(name: str, output: str, exit_code: int | str) -> str:
    """A fact line exactly as the preamble writes it: base64 of ``output\\nSTATUS``, then
    the closing ``.``."""
    return f"{MARK} {name} {b64(output + chr(10) + str(exit_code))} ."


def fact_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith(MARK + " ")]


# --------------------------------------------------------------------- captured outputs


def test_the_scripts_gather_the_documented_facts() -> None:
    assert {"cert", "key.stat", "key.public", "backups", "served", "hostname",
            "stunnel.conf", "leftovers", "addresses"} <= APPLIANCE_FACTS
    # "lock", "lock.key": the apply lock (file, other_config key), read in the same round
    # trip (not a fact plans are made on); "wlb.getent": how the coordinator resolves
    # WLB's name (checked by audit only).
    expected_pool = {"uuid", "pool.params", "xapi", "hosts", "help.ca", "certs", "lock",
                     "lock.key", "wlb.getent"}
    assert expected_pool == POOL_FACTS


def test_every_capture_is_there() -> None:
    situations = {p.name.split(".")[0] for p in CAPTURES}
    assert "fresh" in situations
    assert {p.name for p in CAPTURES} == {f"{s}.{h}.txt" for s in situations
                                          for h in ("appliance", "pool")}


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_capture_parses_into_the_facts_its_script_gathers(path: Path) -> None:
    text = path.read_text()
    facts = script.parse(text)
    assert len(facts) == len(fact_lines(text)), "every @wlbplan line is one fact"
    if path.name.endswith(".appliance.txt"):
        assert set(facts) == APPLIANCE_FACTS
    else:
        assert set(facts) >= POOL_FACTS
        extra = set(facts) - POOL_FACTS
        assert all(n.startswith("ca:") for n in extra)
        listed = {n for n in facts["certs"].output.split(",") if n}
        assert {n.removeprefix("ca:") for n in extra} == listed
    for raw in facts.values():
        assert 0 <= raw.exit_code <= 255


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_capture_lines_are_in_the_current_format(path: Path) -> None:
    """Each fact line is ``@wlbplan NAME DATA .`` (a capture made before the closing
    ``.`` parses to nothing: rerun capture.py)."""
    lines = fact_lines(path.read_text())
    assert lines
    for ln in lines:
        pieces = ln.split(" ")
        assert len(pieces) == 4, ln[:60]
        assert pieces[3] == ".", ln[:60]


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_no_capture_holds_private_key_material(path: Path) -> None:
    """Not in the file, and not inside any base64-encoded fact either."""
    text = path.read_text()
    assert "PRIVATE KEY" not in text
    for name, raw in script.parse(text).items():
        assert "PRIVATE KEY" not in raw.output, name
        assert "PRIVATE KEY" not in base64.b64decode(b64(raw.output)).decode()


# ------------------------------------------------------------------- hand-written edges


def test_empty_output_has_no_facts() -> None:
    assert script.parse("") == {}
    assert script.parse("\n\n  \n") == {}


def test_junk_and_banner_lines_around_the_fact_lines_are_ignored() -> None:
    text = (DATA / "fresh.appliance.txt").read_text()
    plain = script.parse(text)
    ok = b64("output\n0")  # a valid payload: each line below is rejected for another reason
    banner = (
        "Welcome to the WLB virtual appliance\n"
        "Last login: Tue Jan  7 10:00:00 2025 from 10.0.0.1\n"
        "@wlbplan\n"                       # the mark alone
        "@wlbplan cert\n"                  # two pieces
        f"@wlbplan cert {ok}\n"            # three pieces: no closing "."
        f"@wlbplan cert {ok} extra\n"      # four pieces, the last not "."
        f"@wlbplan cert {ok} ..\n"
        f"@wlbplan cert {ok} . .\n"        # five pieces
        f"@wlbplan cert {ok} .x\n"
        f"@wlbplanx cert {ok} .\n"         # not the mark
        f"x @wlbplan cert {ok} .\n"        # the mark not first
        f" @wlbplan cert {ok} .\n"         # indented: not as printf writes it
        f"@wlbplan cert {ok} . \n"         # trailing blank
        f"@wlbplan\tcert {ok} .\n"         # a tab for a space
        f"@wlbplan cert  {ok} .\n"         # two spaces
        f"@wlbplan c\u00e9rt {ok} .\n"     # not a plain ASCII word
        "@wlbplan cert !!!notbase64!!! .\n"
        f"@wlbplan cert {b64('no status line')} .\n"
        f"@wlbplan cert {b64('output' + chr(10) + 'not-a-number')} .\n"
    )
    trailer = "logout\nConnection to wlb closed.\n\x1b[0m"
    assert script.parse(banner + text + trailer) == plain
    assert script.parse(banner) == {}


def test_crlf_line_endings_do_not_matter() -> None:
    """A pty turns \\n into \\r\\n: the facts stay the same."""
    text = (DATA / "fresh.pool.txt").read_text()
    plain = script.parse(text)
    assert plain
    assert script.parse(text.replace("\n", "\r\n")) == plain


def test_an_indented_or_padded_line_is_not_a_fact_line() -> None:
    """A fact line is read only exactly as printf writes it: nothing before the mark,
    nothing after the closing "."."""
    text = (DATA / "fresh.pool.txt").read_text()
    assert script.parse("\n".join("   " + ln for ln in text.splitlines())) == {}
    assert script.parse("\n".join(ln + " " for ln in text.splitlines())) == {}


def test_a_forged_line_in_a_banner_before_the_script_output_loses() -> None:
    text = (DATA / "fresh.pool.txt").read_text()
    real = script.parse(text)["pool.params"]
    forged = line("pool.params", "wlb-verify-cert ( RW): true", 0)
    assert script.parse(forged + "\n" + text)["pool.params"] == real


def test_a_fact_whose_output_contains_wlbplan_lines_is_kept_verbatim() -> None:
    inner = "\n".join([line("cert", "fake", 0), "@wlbplan fake MA==", f"{MARK} x {b64('y')}"])
    parsed = script.parse(line("served", inner, 3) + "\n" + line("hostname", "wlb1", 0))
    assert parsed == {"served": RawFact(inner, 3), "hostname": RawFact("wlb1", 0)}


def test_a_non_zero_exit_keeps_the_commands_own_words() -> None:
    words = "cat: /etc/ssl/certs/server.pem: No such file or directory"
    raw = script.parse(line("cert", words, 1))["cert"]
    assert raw == RawFact(words, 1)
    assert not raw.ok
    assert raw.problem() == f"{words} (exit 1)"
    assert RawFact("", 124).problem() == "no output (exit 124)"


def test_a_missing_fact_is_simply_absent() -> None:
    text = (DATA / "fresh.appliance.txt").read_text()
    without = "\n".join(ln for ln in text.splitlines() if not ln.startswith(f"{MARK} key.public "))
    facts = script.parse(without)
    assert "key.public" not in facts
    assert set(facts) == APPLIANCE_FACTS - {"key.public"}


def test_an_empty_output_and_a_multi_line_output() -> None:
    assert script.parse(line("backups", "", 0)) == {"backups": RawFact("", 0)}
    assert script.parse(line("x", "a\n\nb\n", 2)) == {"x": RawFact("a\n\nb\n", 2)}


def test_invalid_utf8_in_an_output_is_replaced_not_fatal() -> None:
    data = base64.b64encode(b"\xff\xfe bad \xc3\n0").decode()
    raw = script.parse(f"{MARK} x {data} .")["x"]
    assert raw.exit_code == 0
    assert "\ufffd" in raw.output


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_a_cut_line_yields_no_fact(path: Path) -> None:
    """A fact line cut anywhere (a dropped connection) has lost its closing " .": never a
    fact, whatever its base64 decodes to, also when a pty ends it with \\r\\n."""
    for ln in fact_lines(path.read_text()):
        assert len(script.parse(ln)) == 1  # the whole line is one
        for cut in range(len(ln)):
            for tail in ("", "\r", "\r\n"):
                assert script.parse(ln[:cut] + tail) == {}, (ln[:40], cut, tail)


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_an_output_cut_short_keeps_only_its_complete_lines(path: Path) -> None:
    """The whole output cut inside a fact line (at the start of its DATA, after a first
    4-character group, in the middle, just before or after the space of its closing " ."):
    the facts of the lines before it, nothing of that one."""
    text = path.read_text()
    expected: dict[str, RawFact] = {}
    done = 0
    for ln in text.splitlines(keepends=True):
        body = ln.rstrip("\n")
        if body.startswith(MARK + " "):
            data_at = body.index(" ", len(MARK) + 1) + 1
            for cut in (len(MARK) + 1, data_at, data_at + 4, len(body) // 2, len(body) - 2,
                        len(body) - 1):
                assert script.parse(text[: done + cut]) == expected, (body[:40], cut)
            expected.update(script.parse(body))
        done += len(ln)
    assert script.parse(text) == expected
    assert len(expected) == len(fact_lines(text))


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_a_cut_off_the_base64_quantum_is_dropped_even_if_closed(path: Path) -> None:
    """A second line of defence: were a cut line ever closed with " ." (the closing comes
    last, so a cut removes it), a partial 4-character group is still invalid base64."""
    for ln in fact_lines(path.read_text()):
        mark, name, data, end = ln.split(" ")
        for cut in range(1, len(data)):
            if cut % 4:
                assert script.parse(f"{mark} {name} {data[:cut]} {end}") == {}, (name, cut)


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_a_cut_line_never_yields_an_ok_fact_with_a_certificate_block(path: Path) -> None:
    """Also a second line of defence: a 4-character-aligned cut closed by hand with " ."
    that still decodes to OUTPUT\\nSTATUS leaves a BEGIN without its END inside a PEM
    block, and the certificate parsers refuse that."""
    from wlbplan.inspect import appliance

    for ln in fact_lines(path.read_text()):
        mark, name, data, end = ln.split(" ")
        if name not in {"cert", "key.public"} and not name.startswith("ca:"):
            continue
        full = script.parse(ln)[name]
        for cut in range(4, len(data), 4):
            assert script.parse(f"{mark} {name} {data[:cut]}") == {}, (name, cut)
            got = script.parse(f"{mark} {name} {data[:cut]} {end}").get(name)
            if got is None:
                continue
            if name == "key.public":
                assert appliance.parse_key(RawFact("600 root root", 0), got, "k").public_key in (
                    None, appliance.parse_key(RawFact("600 root root", 0), full, "k").public_key)
            else:
                assert not appliance.parse_cert(got, "c").chain, (name, cut)


def _cut(situation: str, name: str, chars: int | None = None) -> str:
    """A real fact line of ``data/<situation>.appliance.txt`` as a dropped connection
    leaves it: cut after ``chars`` characters of its DATA (all of it if None)."""
    ln = next(x for x in fact_lines((DATA / f"{situation}.appliance.txt").read_text())
              if x.startswith(f"{MARK} {name} "))
    data = ln.split(" ")[2]
    return f"{MARK} {name} {data[:chars]}"


# Cuts the line format without its closing "." read as facts with an invented status.
TRUNCATED = {
    # fresh.appliance.txt's key.stat line, "600 root root\n0", cut after 4 characters:
    # "NjAw" is "600", no separator (read as exit status 600).
    "key.stat": lambda: _cut("fresh", "key.stat", 4),
    # Its served line cut after 232 characters: the payload ends in s_client's
    # "Certificate chain\n 0" (the " 0" line number was read as exit status 0).
    "served": lambda: _cut("fresh", "served", 232),
    # The whole DATA, only the closing " ." lost: a complete payload, still no fact.
    "key.stat, all its DATA": lambda: _cut("fresh", "key.stat"),
    "served, all its DATA": lambda: _cut("fresh", "served"),
}


@pytest.mark.parametrize("name", sorted(TRUNCATED))
def test_a_truncated_line_yields_no_fact(name: str) -> None:
    cut = TRUNCATED[name]()
    assert cut.count(" ") == 2  # mark, name and (some of) DATA: what the cut left
    assert script.parse(cut) == {}
    assert script.parse(cut + "\r\n") == {}


def test_the_documented_cuts_are_where_the_comments_say() -> None:
    """Keeps TRUNCATED honest should the captures be regenerated."""
    def payload(cut: str) -> str:
        return base64.b64decode(cut.split(" ")[2]).decode()

    assert payload(TRUNCATED["key.stat"]()) == "600"
    assert payload(TRUNCATED["served"]()).endswith("Certificate chain\n 0")
    assert payload(TRUNCATED["key.stat, all its DATA"]()) == "600 root root\n0"


def test_a_truncated_served_chain_is_not_read_as_a_shorter_chain() -> None:
    """With the CA-signed capture: a cut right after s_client's ' 1 s:' line number once
    read as an OK-looking fact (exit 1) whose served chain was the leaf alone. Now no fact:
    the cut line has no closing " .", and even closed by hand " 1" is no status."""
    served = script.parse((DATA / "ca-signed.appliance.txt").read_text())["served"]
    from wlbplan.inspect import appliance

    assert len(appliance.parse_served(served).chain) == 3
    cut = served.output[: served.output.index("\n 1 s:") + 3]
    assert script.parse(f"{MARK} served {b64(cut)}") == {}
    assert script.parse(f"{MARK} served {b64(cut)} .") == {}


# ------------------------------------------------------------------------- properties

NAMES = st.from_regex(FACT_NAME, fullmatch=True).filter(lambda n: len(n) <= 40)
# Output text as the preamble can carry it: any text, no lone surrogates (decoded UTF-8).
OUTPUTS = st.text(st.characters(exclude_categories=["Cs"]), max_size=300)
STATUSES = st.integers(0, 255)
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
JUNK = st.text(st.characters(exclude_categories=["Cs"], exclude_characters=LINE_BREAKS),
               max_size=80).filter(lambda s: s.strip().split(" ")[0] != MARK)
ODD_STATUSES = ["0", " 0 ", "00", "٣", "²", "①", "1_0", "+1", "-1", "255", "256", "999",
                "1000", "007", "1" * 5000]


def _payloads() -> st.SearchStrategy[str]:
    status = st.one_of(st.integers(-5, 10**6).map(str), st.text(max_size=6),
                       st.sampled_from(ODD_STATUSES))
    return st.one_of(
        st.text(max_size=50),
        st.builds(lambda o, s: o + "\n" + s, st.text(max_size=50), status),
    )


def _fact_like_lines() -> st.SearchStrategy[str]:
    data = st.one_of(_payloads().map(b64), st.text(string.ascii_letters + string.digits + "+/=",
                                                   max_size=16))
    return st.builds(
        lambda lead, sep1, name, sep2, payload, end: lead + MARK + sep1 + name + sep2 + payload
        + end,
        st.sampled_from(["", " ", "\t"]), st.sampled_from([" ", "  ", "\t"]),
        st.one_of(NAMES, st.text(max_size=8)), st.sampled_from([" ", "", "  "]), data,
        st.sampled_from([" .", " .", "", ".", " . ", "  .", " ..", " .x", "\t.", " .\r"]),
    )


TEXTS = st.one_of(
    st.text(),
    st.binary().map(lambda b: b.decode("utf-8", "replace")),
    st.lists(st.one_of(JUNK, _fact_like_lines()), max_size=10).map("\n".join),
)




@pytest.mark.parametrize("status", ["²", "①", "٣", "1" * 5000])
def test_a_status_int_cannot_read_is_ignored(status: str) -> None:
    assert script.parse(f"{MARK} n {b64('x' + chr(10) + status)} .") == {}


def _well_typed(facts: dict[str, RawFact], text: str) -> None:
    assert isinstance(facts, dict)
    for name, raw in facts.items():
        assert isinstance(name, str)
        assert " " not in name
        assert isinstance(raw, RawFact)
        assert isinstance(raw.output, str)
        assert isinstance(raw.exit_code, int)
        assert raw.exit_code >= 0
        raw.output.encode()  # no lone surrogate: it can be written, logged, rendered
        assert any(ln.startswith(f"{MARK} {name} ") and ln.endswith(" .")
                   for ln in text.splitlines())




NOT_FROM_THE_PREAMBLE = {
    "empty name": f"{MARK}  {b64(chr(10) + '0')} .",
    "tab in name": f"{MARK} a\tb {b64(chr(10) + '0')} .",
    "non-ASCII name": f"{MARK} caf\u00e9 {b64(chr(10) + '0')} .",
    "shell word as name": f"{MARK} $(x) {b64(chr(10) + '0')} .",
    "padded status": f"{MARK} n {b64('out' + chr(10) + ' 7 ')} .",
    "signed status": f"{MARK} n {b64('out' + chr(10) + '+7')} .",
    "Arabic-Indic status": f"{MARK} n {b64('out' + chr(10) + '٣')} .",
    "four-digit status": f"{MARK} n {b64('out' + chr(10) + '1000')} .",
    "empty status": f"{MARK} n {b64('out' + chr(10))} .",
    "no separator": f"{MARK} n {b64('600')} .",
    "no closing": f"{MARK} n {b64('out' + chr(10) + '0')}",
}
# Written by no preamble either: statuses $? never prints.
OUT_OF_RANGE = {
    "status 256": f"{MARK} n {b64('out' + chr(10) + '256')} .",
    "status 999": f"{MARK} n {b64('out' + chr(10) + '999')} .",
    "leading zeros": f"{MARK} n {b64('out' + chr(10) + '007')} .",
    "status 000": f"{MARK} n {b64('out' + chr(10) + '000')} .",
}


def _check_preamble_shaped(text: str) -> None:
    for name, raw in script.parse(text).items():
        assert FACT_NAME.fullmatch(name), name
        # The line it came from carries exactly OUTPUT "\n" STATUS, as printf writes it.
        written = [p.rpartition("\n")[2] for p in _payloads_of(text, name)
                   if p.rpartition("\n")[0] == raw.output]
        assert any(STATUS.fullmatch(s) and int(s) == raw.exit_code for s in written), name
        assert 0 <= raw.exit_code <= 999


@pytest.mark.parametrize("case", sorted(NOT_FROM_THE_PREAMBLE))
def test_parse_rejects_a_line_the_preamble_cannot_write(case: str) -> None:
    assert script.parse(NOT_FROM_THE_PREAMBLE[case]) == {}


@pytest.mark.parametrize("case", sorted(OUT_OF_RANGE))
def test_parse_rejects_a_status_the_preamble_cannot_write(case: str) -> None:
    assert script.parse(OUT_OF_RANGE[case]) == {}


@given(TEXTS)
@example(f"{MARK} n {b64('x' + chr(10) + '²')} .")
@example(f"{MARK} n {b64('x' + chr(10) + '①')} .")
@example(f"{MARK} n {b64('x' + chr(10) + '1' * 5000)} .")
@example(NOT_FROM_THE_PREAMBLE["empty name"])
@example(NOT_FROM_THE_PREAMBLE["no closing"])
@PARSER
def test_parse_returns_only_well_typed_facts_the_preamble_could_write(text: str) -> None:
    """Never raises; names as fact() accepts them, a closing ".", OUTPUT "\\n" and a 1-3
    ASCII digit status, read back as written (the 0..255 range is left to
    STATUS_RANGE_BUG). Statuses of Unicode digits ('²', '①') or of more than 4300 digits
    once passed an isdigit() check and crashed int(); they are plain lines to ignore now."""
    _well_typed(script.parse(text), text)
    _check_preamble_shaped(text)


def _payloads_of(text: str, name: str) -> list[str]:
    """The payloads of the lines of ``text`` shaped ``@wlbplan NAME DATA .``."""
    found = []
    for ln in text.splitlines():
        pieces = ln.split(" ")
        if len(pieces) == 4 and pieces[:2] == [MARK, name] and pieces[3] == ".":
            with contextlib.suppress(binascii.Error, ValueError):
                found.append(base64.b64decode(pieces[2], validate=True).decode("utf-8", "replace"))
    return found


@given(st.lists(st.tuples(NAMES, OUTPUTS, STATUSES), unique_by=lambda t: t[0], max_size=8),
       st.lists(JUNK, max_size=8), st.randoms(use_true_random=False))
def test_round_trip_of_encoded_facts_among_junk(
    triples: list[tuple[str, str, int]], junk: list[str], rnd: random.Random
) -> None:
    mixed = list(junk)
    for item in (line(*t) for t in triples):  # fact lines keep their order
        mixed.insert(rnd.randint(0, len(mixed)), item)
    assert script.parse("\n".join(mixed)) == {n: RawFact(o, rc) for n, o, rc in triples}


@given(NAMES, OUTPUTS, STATUSES)
def test_round_trip_of_one_fact(name: str, output: str, exit_code: int) -> None:
    assert script.parse(line(name, output, exit_code)) == {name: RawFact(output, exit_code)}


# What a command run by the preamble can print: no NUL (not in argv, not in $(...)).
SHELL_OUTPUTS = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
                        max_size=200)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(NAMES, SHELL_OUTPUTS, STATUSES), unique_by=lambda t: t[0],
                min_size=1, max_size=4))
def test_the_real_preamble_round_trips_through_sh(triples: list[tuple[str, str, int]]) -> None:
    """Run the preamble for real (local connector, sh): each command prints OUTPUT and exits
    STATUS; parse gives both back (minus trailing newlines, which $(...) removes)."""
    printer = 'printf "%s" "$1"; exit "$2"'
    lines = [script.fact(n, "sh", "-c", printer, "sh", o, str(rc)) for n, o, rc in triples]
    result = LocalRunner().run(shell_script(script.build(lines)), timeout=30)
    assert result.exit_code == 0, result.stderr
    assert all(ln.endswith(" .") for ln in fact_lines(result.stdout))
    assert script.parse(result.stdout) == {
        n: RawFact(o.rstrip("\n"), rc) for n, o, rc in triples
    }


def test_the_preamble_keeps_stderr_and_closes_stdin() -> None:
    lines = [script.fact("err", "sh", "-c", "echo out; echo err >&2; exit 3"),
             script.fact("stdin", "sh", "-c", "cat; echo done")]
    result = LocalRunner().run(shell_script(script.build(lines)), timeout=30)
    facts = script.parse(result.stdout)
    assert facts["err"] == RawFact("out\nerr", 3)
    assert facts["stdin"] == RawFact("done", 0)


def test_fact_names_must_be_plain_words() -> None:
    with pytest.raises(ValueError, match="plain words"):
        script.fact("two words", "true")
    with pytest.raises(ValueError, match="plain words"):
        script.fact("$(x)", "true")
