"""spec/emit: whatever text a host chose, the YAML written holds exactly it, on one line, and
no comment can turn into data."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from wlbplan.spec.emit import Block, Field, Items, emit, scalar

# Every kind of character, YAML's line breaks and indicators first among them.
TRICKY = st.sampled_from(["\n", "\r", "\x85", "\u2028", "\u2029", "\ufeff", ": ", " #", "#",
                          "'", '"', "- ", "[", "]", "{", "}", ",", "&", "*", "!", "|", ">",
                          "%", "@", "`", "~", "?", "\t", "\\", "\x00", "\x1b", "...", "---",
                          "yes", "null", "0x1F", "1e3", "2025-01-01", " "])
HOSTILE = st.lists(st.one_of(TRICKY, st.text(max_size=8)), max_size=8).map("".join)


@given(HOSTILE)
@settings(max_examples=150, deadline=None)
def test_a_scalar_is_one_line_that_reads_back_as_itself(value: str) -> None:
    written = scalar(value)
    assert not any(mark in written for mark in ("\n", "\r", "\x85", "\u2028", "\u2029"))
    nested = f"a:\n  b:\n    - c: {written}\n      d: 1\n"
    assert yaml.safe_load(nested) == {"a": {"b": [{"c": value, "d": 1}]}}


@given(HOSTILE, HOSTILE, HOSTILE)
@settings(max_examples=100, deadline=None)
def test_comments_never_become_data(above: str, beside: str, value: str) -> None:
    fields = (
        Field("version", 1),
        Field("targets", Items((Block((Field("name", value, above=(above,), beside=beside),
                                       Field("pool", Block((Field("x", value,
                                                                  above=(above, above)),))))),
                                )),
              above=(above,)),
    )
    text = emit(fields, header=(above, "", beside))
    assert yaml.safe_load(text) == {"version": 1,
                                    "targets": [{"name": value, "pool": {"x": value}}]}


def test_the_layout_is_what_a_person_writes() -> None:
    text = emit((
        Field("version", 1),
        Field("targets", Items((Block((Field("name", "pool1", above=("first",)),
                                       Field("verify", True, beside="as found"),
                                       Field("alt", Items(("DNS:a", "IP:10.0.0.1"))),
                                       Field("empty", Block(())))),))),
    ), header=("top",))
    assert text == (
        "# top\n"
        "version: 1\n"
        "targets:\n"
        "  # first\n"
        "  - name: pool1\n"
        "    verify: true  # as found\n"
        "    alt:\n"
        "      - DNS:a\n"
        "      - IP:10.0.0.1\n"
        "    empty: {}\n"
    )


def test_long_comments_wrap_and_one_long_word_stays_whole() -> None:
    word = "AB:" * 40
    text = emit((Field("k", 1, above=("word " * 30, f"  sha256={word}")),))
    lines = text.splitlines()
    assert all(len(line) <= 92 for line in lines if word not in line)
    assert f"#   sha256={word}" in lines


def test_text_that_does_not_read_back_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import wlbplan.spec.emit as emit_module

    monkeypatch.setattr(emit_module, "scalar", lambda value: "a: b")  # a broken quoting
    with pytest.raises(ValueError, match="does not read back"):
        emit((Field("k", "a: b"),))
