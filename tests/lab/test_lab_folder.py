"""The lab only ever removes what it made, inside its own folder.

``lab.json`` and the folder's contents are untrusted: a cloned repository may carry a
``.wlbplan-lab`` (the default folder) with names that walk out of it or links that point
elsewhere, and an operator may point ``--dir`` at a folder that holds other things.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from wlbplan.errors import LabError
from wlbplan.lab import control, folder

pytestmark = pytest.mark.lab

WLBPLAN = [sys.executable, "-m", "wlbplan"]


def lab_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*WLBPLAN, "lab", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A folder beside the lab that nothing of the lab's may touch."""
    made = tmp_path / "victim"
    (made / "sub").mkdir(parents=True)
    (made / "precious.txt").write_text("keep me\n")
    (made / "sub" / "more.txt").write_text("and me\n")
    return made


def intact(victim: Path) -> bool:
    return ((victim / "precious.txt").read_text() == "keep me\n"
            and (victim / "sub" / "more.txt").read_text() == "and me\n")


@pytest.fixture
def lab_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / ".wlbplan-lab"
    yield path
    if (path / "lab.json").exists():
        with contextlib.suppress(LabError):
            control.down(path)


def _state(port: int = 40000, **target: object) -> dict[str, object]:
    entry = {"name": "pool1", "fqdn": "wlb1.lab.test", "port": port, "backend_port": port + 1}
    entry.update(target)
    return {"format": 1, "xapi": "current", "hosts": 1, "ssh_port": None,
            "resolve": {"wlb1.lab.test": "127.0.0.1"}, "targets": [entry]}


@pytest.mark.parametrize("name", ["../victim", "/abs/victim", "pool1/../../victim", "ssh"])
def test_names_in_a_carried_lab_json_never_become_paths(tmp_path: Path, lab_dir: Path,
                                                        victim: Path, name: str) -> None:
    """What `make demo` meets in a cloned repository carrying a `.wlbplan-lab`."""
    lab_dir.mkdir()
    (lab_dir / "lab.json").write_text(json.dumps(_state(name=name)))
    refused(lab_cli("up", "--dir", str(lab_dir), "--hosts", "1"), "is not a lab state file")
    refused(lab_cli("down", "--dir", str(lab_dir), "--purge"), "is not a lab state file")
    refused(lab_cli("status", "--dir", str(lab_dir)), "is not a lab state file")
    assert intact(victim)
    assert (lab_dir / "lab.json").exists()


def test_links_in_a_lab_folder_are_removed_never_followed(lab_dir: Path, victim: Path) -> None:
    lab_dir.mkdir()
    (lab_dir / "lab.json").write_text(json.dumps(_state()))
    (lab_dir / "pool1").symlink_to(victim)
    (lab_dir / "pool2").symlink_to(victim)
    (lab_dir / "lab.yaml").symlink_to(victim / "precious.txt")
    (lab_dir / "ssh").symlink_to(victim / "sub")
    up = lab_cli("up", "--dir", str(lab_dir), "--hosts", "1")
    assert up.returncode == 0, up.stderr
    assert intact(victim)
    assert sorted(p.name for p in victim.iterdir()) == ["precious.txt", "sub"]
    assert not any((lab_dir / n).is_symlink() for n in ("pool1", "pool2", "lab.yaml", "ssh"))
    assert (lab_dir / "pool1" / "bin" / "xe").is_file()
    down = lab_cli("down", "--dir", str(lab_dir), "--purge")
    assert down.returncode == 0, down.stderr
    assert not lab_dir.exists()
    assert intact(victim)


def test_up_refuses_a_folder_that_is_not_a_lab(tmp_path: Path, victim: Path) -> None:
    refused(lab_cli("up", "--dir", str(victim)), "is not empty", "not a wlbplan lab")
    assert sorted(p.name for p in victim.iterdir()) == ["precious.txt", "sub"]
    refused(lab_cli("down", "--dir", str(victim), "--purge"), "not a wlbplan lab folder")
    assert intact(victim)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    refused(lab_cli("up", "--dir", str(a_file)), "is not a folder")
    assert a_file.read_text() == "x"


def test_up_takes_a_new_or_empty_folder_and_marks_it(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    try:
        lab = control.up(empty, hosts=1)
        assert (lab.dir / folder.MARKER).read_text() == folder.MARKER_TEXT
        control.down(empty)
        again = control.up(empty, hosts=1)  # a stopped lab is rebuilt in place
        assert set(control.pids(again)) == {"pool1/stunnel"}
    finally:
        control.down(empty)
    assert control.purge(empty) == []
    assert not empty.exists()


def test_purge_keeps_what_the_lab_did_not_make(lab_dir: Path) -> None:
    control.up(lab_dir, hosts=1)
    (lab_dir / "demo.plan.json").write_text("{}")  # what `make demo` saves there
    (lab_dir / "notes").mkdir()
    down = lab_cli("down", "--dir", str(lab_dir), "--purge")
    assert down.returncode == 0, down.stderr
    assert "stopped pool1/stunnel" in down.stdout
    assert "left" in down.stdout
    assert "demo.plan.json" in down.stdout
    assert sorted(p.name for p in lab_dir.iterdir()) == [
        folder.MARKER, "demo.plan.json", "notes"]
    # Still a lab's folder: the next `lab up` (the next `make demo`) takes it again.
    up = lab_cli("up", "--dir", str(lab_dir), "--hosts", "1")
    assert up.returncode == 0, up.stderr
    assert (lab_dir / "demo.plan.json").read_text() == "{}"
