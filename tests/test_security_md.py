"""SECURITY.md stays true: every test it cites for a class exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITED = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?`")


def test_every_cited_test_exists() -> None:
    text = (ROOT / "SECURITY.md").read_text()
    cited = CITED.findall(text)
    assert len(cited) >= 15
    for path, name in cited:
        assert (ROOT / path).is_file(), path
        if name:
            assert re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.M), (path, name)


def test_every_cited_parser_property_runs_its_2000_examples() -> None:
    """The property tests SECURITY.md lists for the parsers take their settings from
    tests/property_settings.py: a test's own @settings would override the profile, and
    a smaller number there would cap it silently."""
    text = (ROOT / "SECURITY.md").read_text()
    table = text[text.index("| parser | test |"):]
    cited = CITED.findall(table)
    assert len(cited) >= 15
    for path, name in cited:
        source = (ROOT / path).read_text()
        head = source[: re.search(rf"^def {name}\(", source, re.M).start()]  # type: ignore[union-attr]
        decorators = re.search(r"((?:^@.*\n(?:^ .*\n)*)+)\Z", head, re.M)
        assert decorators is not None, (path, name)
        assert re.search(r"^@PARSER$", decorators.group(1), re.M), (path, name)
        assert "max_examples" not in decorators.group(1), (path, name)
