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
