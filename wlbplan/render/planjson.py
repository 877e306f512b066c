"""The plan as JSON for people and tools (``show --format json``): the plan file's document
with every PEM replaced by a fingerprint placeholder.

The plan file itself keeps the public PEMs apply needs; output that ends up in CI logs
and pull requests shows fingerprints instead (the same rule for every renderer).
"""

from __future__ import annotations

import json
import re
from typing import Any

from wlbplan import certs
from wlbplan.core.plan import Plan
from wlbplan.core.planfile import plan_to_json
from wlbplan.errors import VerifyError
from wlbplan.model.text import printable_json

# The block's own line end goes with it: a PEM value becomes exactly its placeholder.
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----\n?", re.DOTALL)
# A BEGIN line without its END (a truncated PEM) must not leak either.
_PEM_START = re.compile(r"-----BEGIN [A-Z0-9 ]+-----.*", re.DOTALL)


def render(plan: Plan) -> str:
    return printable_json(json.dumps(redact(plan_to_json(plan)), indent=2,
                                     ensure_ascii=False)) + "\n"


def redact(value: Any) -> Any:
    """``value`` (JSON data) with every PEM in every string replaced by a placeholder."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    return value


def redact_text(text: str) -> str:
    if "-----BEGIN" not in text:
        return text  # the common case, kept cheap
    return _PEM_START.sub("<PEM removed>", _PEM_BLOCK.sub(_placeholder, text))


def _placeholder(match: re.Match[str]) -> str:
    if match.group(1) not in ("CERTIFICATE", "X509 CERTIFICATE"):
        # Never name what was removed: a key's label must not reach any output.
        return "<PEM removed>"
    try:
        cert = certs.parse_pem_bundle(match.group(0).encode())[0]
    except VerifyError:
        return "<certificate (unreadable)>"
    return f"<certificate SHA256 {certs.fingerprint(cert)}>"
