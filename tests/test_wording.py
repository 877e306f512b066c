"""Words users see: no internal jargon ("seed", the team's name for the vendor procedure)
in any message the package can print."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "wlbplan"


def _messages(tree: ast.AST) -> list[str]:
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
                  and node.body and isinstance(node.body[0], ast.Expr)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings]


def test_no_message_speaks_of_the_seed() -> None:
    found = [f"{path.relative_to(PACKAGE)}: {text!r}"
             for path in PACKAGE.rglob("*.py") if "lab" not in path.parts
             for text in _messages(ast.parse(path.read_text()))
             if "seed" in text.lower()]
    assert found == []
