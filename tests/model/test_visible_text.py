"""The one escape for text the hosts choose: ``visible`` (free text) and ``shell_word``
(one argument of a shown command)."""

from __future__ import annotations

import subprocess
import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wlbplan.model.text import clip, printable_json, shell_word, visible

# What the review found passing raw somewhere, and what forges lines or styles terminals.
HOSTILE = {
    "LF": "\n", "CR": "\r", "VT": "\x0b", "FF": "\x0c", "NEL": "\x85", "LS": "\u2028",
    "PS": "\u2029", "ESC": "\x1b", "BEL": "\x07", "NUL": "\x00", "DEL": "\x7f", "CSI": "\x9b",
    "TAB": "\t", "RLO": "\u202e", "ZWSP": "\u200b", "BOM": "\ufeff", "lone surrogate": "\udc80",
}


@pytest.mark.parametrize("char", HOSTILE.values(), ids=HOSTILE.keys())
def test_every_control_is_escaped_visibly(char: str) -> None:
    shown = visible(f"a{char}b")
    assert shown.isprintable()
    assert shown.startswith("a\\")
    assert shown.endswith("b")


def test_escapes_are_the_familiar_ones() -> None:
    assert visible("x\n::error::y") == "x\\n::error::y"
    assert visible("\r\t\x1b[31m\x07") == "\\r\\t\\x1b[31m\\x07"
    assert visible("\x85\u2028\u2029") == "\\u0085\\u2028\\u2029"
    assert visible("\U000e0041") == "\\U000e0041"  # a tag character


def test_printable_text_is_left_as_it_is() -> None:
    text = "CN=wlb.example.com,O=Acme\\, Inc. [bold] @org/team ü 雪 `x` 100%"
    assert visible(text) == text


def test_every_unprintable_code_point_is_escaped() -> None:
    """Categories C (controls, format, surrogates, private use, unassigned) and Z (line,
    paragraph, and non-space separators): all of them, not a hand-kept list."""
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        category = unicodedata.category(char)
        if category[0] in "CZ" and char != " ":
            assert visible(char) != char, f"U+{code:04X} ({category}) passes raw"


@given(st.text())
def test_visible_is_one_printable_line_and_idempotent(text: str) -> None:
    shown = visible(text)
    assert shown.isprintable()
    assert visible(shown) == shown


def test_clip_keeps_short_fields_and_says_what_it_cut() -> None:
    assert clip("short", 10) == "short"
    assert clip("x" * 100, 10) == "x" * 10 + "… (90 more characters)"
    assert clip("a\nb" * 50, 8).isprintable()


def bash_words(line: str) -> list[str]:
    """What bash makes of a shown command line: the argv it would run."""
    done = subprocess.run(["bash", "-c", f"printf '%s\\0' {line}"], capture_output=True,
                          check=True, env={"LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin"})
    return done.stdout.decode("utf-8", "surrogateescape").split("\0")[:-1]


@pytest.mark.parametrize("word", [
    "plain", "two words", "it's", 'say "hi"', "$HOME", "back\\slash", "ümlaut",
    "name=wlbplan-x\x1b[31mred\x1b[0m.pem", "a\nb", "tab\there", "\x85\u2028", "emoji 😀",
    "back\\x1b not an escape", "'", "",
])
def test_a_shown_word_is_exactly_the_argument(word: str) -> None:
    assert bash_words(shell_word(word)) == [word]
    assert shell_word(word).isprintable()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(st.characters(codec="utf-8", exclude_characters="\x00")), min_size=1,
                max_size=3))
def test_shown_words_round_trip_through_bash(words: list[str]) -> None:
    line = " ".join(shell_word(w) for w in words)
    assert line.isprintable()
    assert bash_words(line) == words


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8))
def test_printable_json_is_the_same_data_on_printable_lines(value: object) -> None:
    import json

    text = printable_json(json.dumps(value, indent=2, ensure_ascii=False))
    assert json.loads(text) == value
    assert all(line.isprintable() for line in text.split("\n"))
