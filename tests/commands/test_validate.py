"""``wlbplan validate`` and ``wlbplan schema`` through the real entry point (exit codes)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from wlbplan.cli import main
from wlbplan.spec import schema_text

ROOT = Path(__file__).parent.parent.parent
EXAMPLES = ROOT / "examples"
BAD = ROOT / "tests" / "data" / "specs" / "bad"
LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning): ")


@pytest.fixture(autouse=True)
def ssh_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SSH files the examples name, as on the machine that runs them: missing ones
    would be (rightly) warned about."""
    ssh = tmp_path / "home" / ".ssh"
    ssh.mkdir(parents=True)
    for name in ("id_ed25519", "wlbplan_ed25519", "known_hosts"):
        (ssh / name).write_text("")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    out, err = capsys.readouterr()
    code = done.value.code
    assert isinstance(code, int)
    return code, out, err


def test_valid_spec_exits_0_with_the_success_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "validate", str(EXAMPLES / "self-signed.yaml"))
    assert (code, out, err) == (0, "Success! The spec is valid.\n", "")


def test_warnings_alone_keep_the_spec_valid(capsys: pytest.CaptureFixture[str]) -> None:
    path = EXAMPLES / "ca-signed.yaml"
    code, out, _ = _run(capsys, "validate", str(path))
    lines = out.splitlines()
    assert code == 0
    assert lines[-1] == "Success! The spec is valid."
    assert lines[0].startswith(f"{path}:58:16: warning: targets[1].wlb.address: ")


def test_invalid_spec_exits_1_listing_every_error(capsys: pytest.CaptureFixture[str]) -> None:
    path = BAD / "several.yaml"
    code, out, err = _run(capsys, "validate", str(path))
    lines = out.splitlines()
    assert code == 1
    assert err == ""  # stdout carries the requested format; nothing else is said
    assert lines[-1] == "10 errors, 0 warnings."
    assert len(lines) == 11
    assert all(LINE.match(line) and line.startswith(str(path)) for line in lines[:-1])
    assert f"{path}:13:1: error: polcy: unknown key 'polcy'; did you mean 'policy'?" in lines


def test_counts_say_singular_when_one(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "validate", str(BAD / "ip-without-san.yaml"))
    assert (code, out.splitlines()[-1]) == (1, "1 error, 1 warning.")


def _assert_terraform_shape(document: dict[str, Any]) -> None:
    assert set(document) == {
        "format_version", "valid", "error_count", "warning_count", "diagnostics"
    }  # fmt: skip
    assert document["format_version"] == "1.0"
    severities = [d["severity"] for d in document["diagnostics"]]
    assert document["error_count"] == severities.count("error")
    assert document["warning_count"] == severities.count("warning")
    assert document["valid"] is (document["error_count"] == 0)
    for diagnostic in document["diagnostics"]:
        assert {"severity", "summary", "detail"} <= set(diagnostic)
        assert isinstance(diagnostic["summary"], str)
        assert isinstance(diagnostic["detail"], str)


def _assert_range_matches_file(diagnostic: dict[str, Any]) -> None:
    """line/column and byte must name the same place in the file."""
    where = diagnostic["range"]
    raw = Path(where["filename"]).read_bytes()
    for point in (where["start"], where["end"]):
        line_start = len(b"".join(raw.splitlines(keepends=True)[: point["line"] - 1]))
        text_before = raw[line_start : point["byte"]].decode()
        assert len(text_before) == point["column"] - 1


@pytest.mark.parametrize("path", sorted(BAD.glob("*.yaml")), ids=lambda p: p.stem)
def test_json_output_has_terraform_shape(capsys: pytest.CaptureFixture[str], path: Path) -> None:
    code, out, _ = _run(capsys, "validate", "--format", "json", str(path))
    document = json.loads(out)  # the whole of stdout is one JSON document
    _assert_terraform_shape(document)
    assert code == 1
    assert document["valid"] is False
    for diagnostic in document["diagnostics"]:
        assert diagnostic["range"]["filename"] == str(path)
        _assert_range_matches_file(diagnostic)


def test_json_for_a_valid_spec(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "validate", "--format=json", str(EXAMPLES / "ca-signed.yaml"))
    document = json.loads(out)
    _assert_terraform_shape(document)
    assert (code, document["valid"], document["warning_count"]) == (0, True, 1)
    (warning,) = document["diagnostics"]
    assert warning["address"] == "targets[1].wlb.address"
    assert warning["range"]["start"]["line"] == 58


def test_missing_file_is_still_a_json_document(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = _run(capsys, "validate", "--format", "json", str(tmp_path / "nope.yaml"))
    document = json.loads(out)
    _assert_terraform_shape(document)
    assert code == 1
    assert document["diagnostics"] == [
        {"severity": "error", "summary": "spec file not found", "detail": ""}
    ]


def test_unknown_format_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "validate", "--format", "yaml", str(EXAMPLES / "ca-signed.yaml"))
    assert (code, out) == (1, "")
    assert "'yaml' is not one of 'text', 'json'" in err


def test_schema_prints_the_packaged_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "schema")
    assert (code, out) == (0, schema_text())
    assert json.loads(out)["title"] == "wlbplan spec"


def test_help_lists_both_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--help")
    assert code == 0
    assert re.search(r"^\s+validate\s", out, re.M)
    assert re.search(r"^\s+schema\s", out, re.M)


@pytest.mark.parametrize(
    ("name", "code"), [("self-signed.yaml", 0), ("../tests/data/specs/bad/enum.yaml", 1)]
)
def test_process_exit_code(name: str, code: int) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "wlbplan", "validate", str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr


# --- what validation must refuse before any command reaches a host (issue 16) -----------


def test_two_targets_for_one_pool_fail_validation(capsys: pytest.CaptureFixture[str]) -> None:
    """Before: both validated, and `apply` then refused one with "another apply is running
    on this pool", naming its own pid (#27)."""
    path = BAD / "same-pool-or-appliance.yaml"
    code, out, _ = _run(capsys, "validate", str(path))
    assert code == 1
    assert f"{path}:15:5: error: targets[1].pool: targets[0] (line 11) already manages " \
        "this pool" in out
    assert f"{path}:20:5: error: targets[2].wlb: targets[1] (line 16) already manages " \
        "this appliance" in out


@pytest.mark.parametrize("user", ["admin@corp", "two words", "user:x", "-oProxyCommand=x"])
def test_an_ssh_user_the_connector_refuses_is_a_spec_error(tmp_path: Path, user: str) -> None:
    """Before: the schema took these and `plan` ended in a traceback (exit 3, #12)."""
    spec = tmp_path / "spec.yaml"
    text = (EXAMPLES / "self-signed.yaml").read_text()
    assert text.count("\n    user: root\n") == 1
    spec.write_text(text.replace("\n    user: root\n", f"\n    user: {json.dumps(user)}\n"))
    for command in ("validate", "plan"):
        done = subprocess.run([sys.executable, "-m", "wlbplan", command, str(spec)],
                              capture_output=True, text=True, check=False, timeout=60)
        said = done.stdout + done.stderr
        assert done.returncode == 1, said
        assert "Traceback" not in said
        assert re.search(rf"{re.escape(str(spec))}:\d+:\d+: error: defaults\.ssh\.user: "
                         "must be a login name", said)


@pytest.mark.parametrize("command", ["validate", "show", "apply", "plan", "audit"])
def test_an_endless_input_ends_at_once_with_the_cap_named(command: str) -> None:
    """/dev/zero as a spec or a plan: refused in well under a second of reading, exit 1."""
    done = subprocess.run([sys.executable, "-m", "wlbplan", command, "/dev/zero"],
                          capture_output=True, text=True, timeout=30, check=False,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "MiB" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_a_spec_over_the_cap_is_refused_unparsed(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from wlbplan.limits import SPEC

    big = tmp_path / "big.yaml"
    big.write_text("version: 1\n" + "# padding\n" * (SPEC.size // 10 + 1))
    code, out, _ = _run(capsys, "validate", str(big), "--format", "json")
    assert code == 1
    assert str(SPEC) in json.loads(out)["diagnostics"][0]["summary"]
