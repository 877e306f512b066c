"""Load a spec file: YAML (safe) + JSON Schema + semantic rules → frozen ``model.Spec``.

Pipeline: read bytes → compose the YAML node tree (it keeps line/column for every node
and shows the duplicate keys PyYAML's constructor silently drops) → plain data plus a
path → position map → JSON Schema, every error → rules a schema cannot express (CN vs
address, IP SAN, signed needs root ...) → Spec. Bad input never raises here except as
``SpecError`` from ``load_spec``: everything else comes back as a ``Diagnostic``.
Pure apart from reading the one file it is given.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
from collections.abc import Iterator
from pathlib import Path

from wlbplan.errors import SpecError
from wlbplan.limits import SPEC as SPEC_CAP
from wlbplan.limits import TooLarge, read_file
from wlbplan.model.spec import Diagnostic, Spec
from wlbplan.spec.build import to_spec
from wlbplan.spec.files import check_local_files
from wlbplan.spec.parse import UNUSABLE, parse
from wlbplan.spec.report import Report
from wlbplan.spec.rules import check_semantics
from wlbplan.spec.schema import check_schema, schema_text

__all__ = [
    "load_spec",
    "load_spec_text",
    "load_spec_with_diagnostics",
    "schema_text",
    "spec_digest",
]


def load_spec(path: Path, *, check_files: bool = True) -> Spec:
    """The validated spec at ``path``; SpecError (carrying every diagnostic) otherwise.
    ``check_files``: also check the local files it names (certificates, SSH files)."""
    spec, diagnostics = load_spec_with_diagnostics(path, check_files=check_files)
    if spec is None:
        raise SpecError(_error_message(path, diagnostics), diagnostics)
    return spec


def load_spec_with_diagnostics(path: Path, *, check_files: bool = True,
                               ) -> tuple[Spec | None, list[Diagnostic]]:
    """The spec (None when any error) and every error and warning, sorted by position."""
    try:
        raw = read_file(path, SPEC_CAP)
    except (OSError, TooLarge) as err:
        return None, [_unreadable(path, err)]
    return _load(raw, path, files=check_files)


def load_spec_text(text: str, path: Path, *, check_files: bool = False,
                   ) -> tuple[Spec | None, list[Diagnostic]]:
    """Like ``load_spec_with_diagnostics`` for text already in memory (no I/O at all,
    unless ``check_files``: then the local files it names are checked too).

    ``path`` names the file in diagnostics and anchors relative local paths.
    """
    return _load(text.encode("utf-8", "surrogatepass"), path, files=check_files)


def spec_digest(path: Path) -> str:
    """sha256 of the spec file's bytes, so a saved plan can tell the spec has changed."""
    try:
        return hashlib.sha256(read_file(path, SPEC_CAP)).hexdigest()
    except (OSError, TooLarge) as err:
        raise SpecError(f"{path}: {_unreadable(path, err).message}") from err


def _error_message(path: Path, diagnostics: list[Diagnostic]) -> str:
    errors = [d for d in diagnostics if d.is_error]
    if len(errors) == 1 and errors[0].start is None:
        return f"{path}: {errors[0].message}"
    lines = "\n".join(f"  {d.format()}" for d in errors)
    return f"invalid spec {path} ({_plural(len(errors), 'error')}):\n{lines}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _unreadable(path: Path, err: OSError | TooLarge) -> Diagnostic:
    if isinstance(err, TooLarge):
        message = str(err)
    elif isinstance(err, FileNotFoundError):
        message = "spec file not found"
    else:
        message = f"cannot read the spec file: {err.strerror or err}"
    return Diagnostic("error", str(path), "", message)


@contextlib.contextmanager
def _no_collection() -> Iterator[None]:
    """Loading allocates an object per node, key and span and frees nothing until the end:
    the cyclic collector would walk the growing tree again and again, a third of the time
    a 500-target spec takes. It runs once the load is done instead."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _load(raw: bytes, path: Path, *, files: bool = False) -> tuple[Spec | None, list[Diagnostic]]:
    with _no_collection():
        return _load_all(raw, path, files=files)


def _load_all(raw: bytes, path: Path, *, files: bool) -> tuple[Spec | None, list[Diagnostic]]:
    """``files``: also check the local files the spec names (loading from disk only)."""
    report = Report(str(path))
    data = parse(raw, report)
    if data is not UNUSABLE:
        dirty = check_schema(data, report)
        check_semantics(data, report, dirty)
        # Files last, once the spec itself is sound: a missing file of a misspelt
        # section would only repeat the error that names it.
        if files and not any(d.is_error for d in report.diagnostics):
            check_local_files(data, path.absolute().parent, report)
    diagnostics = report.sorted()
    if data is UNUSABLE or any(d.is_error for d in diagnostics):
        return None, diagnostics
    digest = hashlib.sha256(raw).hexdigest()
    return to_spec(data, path, digest, report), diagnostics

