"""The undo records a journal holds, of any shape (issue 10): the journal is checked line by
line (run/journal.py), but an undo record is any JSON object, so whatever reaches a
rollback is confined (actions.*.CONFINE) and explained (actions.by_hand) without an
exception, and ``actions.undo`` refuses what is not its own with StepFailed.

Before: a record whose ``pairs`` were ``[["x"]]`` made by_hand raise ValueError (the
rollback ended with a traceback), and a ``kind`` that was a list made ``actions.undo``
raise TypeError (its text reached the operator as the undo's failure).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from property_settings import PARSER

from wlbplan import actions
from wlbplan.actions import appliance, pool
from wlbplan.actions.base import Context, StepFailed
from wlbplan.actions.by_hand import by_hand
from wlbplan.model.spec import (
    CertificateSpec,
    PoolSpec,
    Spec,
    Target,
    WlbCredentials,
    WlbSpec,
)
from wlbplan.run.sessions import Sessions

CREDENTIALS = WlbCredentials("WLB_USER", "WLB_PASSWORD", "XS_USER", "XS_PASSWORD")
TARGET = Target(
    name="t", pool=PoolSpec("localhost", connection="local"),
    wlb=WlbSpec("wlb.example.com", connection="local", credentials=CREDENTIALS),
    certificate=CertificateSpec("ca-signed", signed=Path("/spec/certs/signed.pem"),
                                root=Path("/spec/certs/root.pem")))
# No runner is reached: the confinement and the explanation only read the record.
CTX = Context(spec=Spec(version=1, path=Path("/spec/spec.yaml"), digest="0",
                        targets=(TARGET,)),
              target=TARGET, sessions=cast(Sessions, None))
CONFINE = {**pool.CONFINE, **appliance.CONFINE}

VALUES = st.one_of(
    st.sampled_from([None, True, False, 0, -1, 2**70, 1.5, "", "x", "0644", "99", [], {},
                     ["x"], [["x"]], [["a", "b"]], [[1, 2]], "ab", {"a": 1},
                     "/etc/ssl/certs/server.pem", "wlbplan-wlb-0123456789abcdef.pem",
                     {"wlb_username": "WLB_USER"}]),
    st.integers(), st.text(max_size=12),
)
KEYS = st.sampled_from(["kind", "path", "name", "pem", "uuid", "value", "url", "env", "pairs",
                        "mode", "content", "replace", "cert", "key", "backup_cert",
                        "backup_key", "pending", "staged", "served", "cleanup", "other"])
RECORDS = st.one_of(
    st.builds(lambda kind, rest: {**rest, "kind": kind},
              st.sampled_from(sorted(CONFINE)) | VALUES,
              st.dictionaries(KEYS, VALUES, max_size=6)),
    st.dictionaries(KEYS, VALUES, max_size=6),
)


@PARSER
@given(RECORDS)
@example({"kind": "appliance.remove_backups", "pairs": [["x"]]})
@example({"kind": "appliance.remove_backups", "pairs": "ab"})
@example({"kind": ["a"], "path": "/x"})
def test_any_undo_record_is_confined_and_explained_without_an_exception(
        record: dict[str, Any]) -> None:
    for check in CONFINE.values():
        assert isinstance(check(CTX, record), str | None)
    assert isinstance(by_hand(CTX, record), str)
    kind = record.get("kind")
    own = CONFINE.get(kind) if isinstance(kind, str) else None
    if own is None or own(CTX, record) is not None:
        with pytest.raises(StepFailed):  # refused before any runner is touched
            actions.undo(CTX, record)
