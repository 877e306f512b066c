"""The Python programs the lab writes into a target's ``bin/`` (``xe``, ``restart-stunnel``).

Stdlib only: what it writes runs this interpreter with ``-S`` (no site: a fast start), the
packages it needs put on ``sys.path`` by hand.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def _site_dir(module: str) -> str:
    """The sys.path entry that provides ``module`` (``python -S`` skips site-packages)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"{module} is not importable; the lab's programs need it")
    return str(Path(spec.origin).resolve().parent.parent)


def program(comment: str, module: str, function: str, args: str, cache: Path,
            needs: tuple[str, ...] = ("wlbplan",)) -> bytes:
    """``#!python -S`` that runs ``sys.exit(module.function(args))``; ``args`` is Python
    source, ``comment`` one line saying what the program is."""
    paths = list(dict.fromkeys(_site_dir(m) for m in needs))
    # Compiling on every call costs ~25 ms; when PYTHONDONTWRITEBYTECODE is set, keep a
    # bytecode cache anyway, but inside the lab, never in the source tree.
    text = f"""#!{sys.executable} -S
# wlbplan lab: {comment}
import sys
sys.dont_write_bytecode = False
sys.pycache_prefix = {str(cache.resolve())!r}
sys.path[:0] = {paths!r}
from pathlib import Path
from {module} import {function}
sys.exit({function}({args}))
"""
    return text.encode()
