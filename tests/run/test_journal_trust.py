"""Journals are executed, so they are trusted only when they deserve it (issue 16 #9, #10).

A damaged journal (garbage, cut short, empty) stops `rollback`, `apply --resume` and
`apply` with exit 1 and a message that says what to do; nothing is undone and the pool's
lock stays as it was. A journal in a state folder someone else can write, or not owned by
the user, is refused (OpenSSH's StrictModes). And whoever wrote a journal, an undo that
names anything the target's apply could not have touched is never run.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from applylab import (
    TARGET,
    journal_path,
    lock_file,
    snapshot,
    snapshot_diff,
    state_dir,
    wlbplan,
    xe,
)

from wlbplan.lab import control
from wlbplan.run.journal import Journal, JournalError

pytestmark = pytest.mark.lab

LOCK_ID = "5f0c6a52-5a6e-4f4e-9d0b-2a4ad0c0ffee"


def _header() -> dict[str, Any]:
    return {"event": "begin", "target": TARGET, "lock_id": LOCK_ID, "pid": 999999,
            "host": "elsewhere", "time": "2026-01-01T00:00:00Z"}


def _write_journal(lab: control.Lab, content: bytes) -> Path:
    path = journal_path(state_dir(lab))
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    state_dir(lab).chmod(0o700)
    path.write_bytes(content)
    path.chmod(0o600)
    return path


def _lines(*records: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def _hold_lock(lab: control.Lab) -> bytes:
    """The lock the dead apply would have left."""
    held = {"id": LOCK_ID, "owner": "someone@elsewhere", "pid": 999999,
            "created": "2026-01-01T00:00:00Z", "target": TARGET}
    lock_file(lab).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock_file(lab).write_text(json.dumps(held))
    return lock_file(lab).read_bytes()


DAMAGED = [
    pytest.param(b"\x8f\xff\x00garbage\x01\x02\n\x9c", "not UTF-8 text", id="garbage-bytes"),
    pytest.param(_lines(_header())[:-20] + b"\n" + _lines({"event": "done", "index": 1}),
                 "line 1 is not JSON", id="truncated-json"),
    pytest.param(b"", "it is empty", id="empty"),
    pytest.param(b'{"event": "begin", "tar', "first line was cut short", id="cut-header"),
]


@pytest.mark.parametrize(("content", "why"), DAMAGED)
@pytest.mark.parametrize("command", ["rollback", "resume", "apply"])
def test_a_damaged_journal_is_exit_1_with_advice_and_the_lock_stays(
        lab: control.Lab, content: bytes, why: str, command: str) -> None:
    journal = _write_journal(lab, content)
    lock = _hold_lock(lab)
    was = snapshot(lab)
    argv = {"rollback": ["rollback", str(lab.spec_path), "--target", TARGET],
            "resume": ["apply", str(lab.spec_path), "--resume"],
            "apply": ["apply", str(lab.spec_path), "--auto-approve"]}[command]
    result = wlbplan(*argv)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "Internal error" not in result.stderr
    assert why in result.stderr, result.stderr
    assert "damaged" in result.stderr
    assert "force-unlock" in result.stderr
    assert not re.search(r"\b[1-9][0-9]* rolled back|: rolled back", result.stderr)
    assert journal.read_bytes() == content  # kept for the operator
    assert lock_file(lab).read_bytes() == lock  # neither released nor replaced
    assert not snapshot_diff(was, snapshot(lab))


def _planted(victim: Path) -> bytes:
    """A journal that tries to delete ``victim`` and a foreign CA certificate."""
    return _lines(
        _header(),
        {"event": "step", "index": 1, "action": "local.sign",
         "undo": {"kind": "local.remove", "path": str(victim)}},
        {"event": "step", "index": 2, "action": "pool.install_ca",
         "undo": {"kind": "pool.uninstall_ca", "name": "corp-root.pem"}},
        {"event": "step", "index": 3, "action": "appliance.backup",
         "undo": {"kind": "appliance.remove_backups", "cleanup": True,
                  "pairs": [[str(victim), str(victim) + "_orig"]]}},
    )


def test_a_planted_journal_cannot_delete_an_arbitrary_path(lab: control.Lab,
                                                           tmp_path: Path) -> None:
    victim = tmp_path / "victim.pem"
    victim.write_text("precious\n")
    xe(lab, "pool-install-ca-certificate", f"filename={_ca_file(lab, tmp_path)}")
    _write_journal(lab, _planted(victim))
    was = snapshot(lab)
    result = wlbplan("rollback", str(lab.spec_path), "--target", TARGET)
    assert result.returncode == 1, result.stdout + result.stderr
    assert victim.read_text() == "precious\n"
    assert "corp-root.pem" in xe(lab, "pool-certificate-list", "--minimal").stdout
    assert not snapshot_diff(was, snapshot(lab))
    for words in (f"path \"{victim}\" is not one this target's apply may touch",
                  "name 'corp-root.pem' is not a CA certificate name wlbplan installs",
                  "refused to run the journal's appliance.remove_backups undo"):
        assert words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def _ca_file(lab: control.Lab, folder: Path) -> Path:
    from wlbplan.lab import pki

    path = folder / "corp-root.pem"
    path.write_bytes(pki.build("Corp Root", key=pki.make_key("ec", 256), ca=True).cert_pem)
    return path


@pytest.mark.parametrize("where", ["state-folder", "target-folder", "journal"])
@pytest.mark.parametrize("how", ["group-writable", "other-writable", "foreign-owner",
                                 "symlink"])
def test_a_journal_others_could_write_is_refused(lab: control.Lab, tmp_path: Path,
                                                 where: str, how: str) -> None:
    victim = tmp_path / "victim.pem"
    victim.write_text("precious\n")
    journal = _write_journal(lab, _planted(victim))
    path = {"state-folder": state_dir(lab), "target-folder": journal.parent,
            "journal": journal}[where]
    if how == "symlink":
        real = tmp_path / f"real-{path.name}"
        path.rename(real)
        path.symlink_to(real)
    elif how == "foreign-owner":
        os.chown(path, 4242, 4242)
    else:
        path.chmod(stat.S_IMODE(path.stat().st_mode) | (0o020 if how == "group-writable"
                                                        else 0o002))
    for argv in (["rollback", str(lab.spec_path), "--target", TARGET],
                 ["apply", str(lab.spec_path), "--resume"]):
        result = wlbplan(*argv)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "refusing" in result.stderr, result.stderr
        assert {"group-writable": "writable by group or others",
                "other-writable": "writable by group or others",
                "foreign-owner": "owned by uid 4242",
                "symlink": "symbolic link"}[how] in result.stderr
        assert "Traceback" not in result.stderr
    assert victim.read_text() == "precious\n"


def test_journals_and_their_folders_are_created_private(tmp_path: Path) -> None:
    os.umask(0o022)
    journal = Journal(tmp_path / "fresh" / "state", TARGET)
    journal.begin({"target": TARGET, "lock_id": LOCK_ID})
    journal.end("applied")
    for folder in (journal.state_dir, journal.folder, journal.folder / "history"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    archived = next((journal.folder / "history").iterdir())
    assert stat.S_IMODE(archived.stat().st_mode) == 0o600


def test_an_existing_loose_state_folder_is_refused_before_anything_is_written(
        tmp_path: Path) -> None:
    loose = tmp_path / "state"
    loose.mkdir()
    loose.chmod(0o777)
    with pytest.raises(JournalError, match="writable by group or others"):
        Journal(loose, TARGET).begin({"target": TARGET, "lock_id": LOCK_ID})
    assert list(loose.iterdir()) == []


def test_every_undo_kind_has_its_confinement() -> None:
    """An undo kind added without saying what it may touch would be refused at rollback;
    this keeps the two tables together."""
    from wlbplan.actions import appliance, pool

    for module in (appliance, pool):
        assert set(module.UNDO) == set(module.CONFINE), module.__name__
