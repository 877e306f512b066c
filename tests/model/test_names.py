"""One rule per kind of name (issue 16 #3, #12, #13): file names, logins, IP literals,
host:port; and a guard that the product joins hosts and ports in one place only."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wlbplan.model.names import (
    file_name_problem,
    ip_address_problem,
    join_host_port,
    shell_skip_unsafe_file_name,
    ssh_user_problem,
)

PACKAGE = Path(__file__).resolve().parents[2] / "wlbplan"


@pytest.mark.parametrize("name", ["a.pem", "wlbplan-wlb-0123456789abcdef.pem", "A_b-1.x.pem"])
def test_names_xapi_accepts(name: str) -> None:
    assert file_name_problem(name) is None


@pytest.mark.parametrize(("name", "why"), [
    ("", "empty"), ("../x.pem", "only letters"), ("a/b.pem", "only letters"),
    ("..", "start with '.'"), (".x.pem", "start with '.'"), (".pem", "start with '.'"),
    ("x.txt", "end in .pem"), ("x y.pem", "only letters"), ("é.pem", "only letters"),
    ("x\x00.pem", "only letters"), ("x" * 252 + ".pem", "longer than 255"),
])
def test_names_that_could_leave_their_folder(name: str, why: str) -> None:
    problem = file_name_problem(name)
    assert problem is not None
    assert why in problem


def test_a_name_without_a_suffix_rule() -> None:
    assert file_name_problem("pool1", suffix="") is None
    assert file_name_problem("..", suffix="") is not None


@given(st.text(max_size=20))
def test_what_the_remote_script_lets_through_is_one_file_name(name: str) -> None:
    """The shell's `case` line and the Python rule agree on what may reach a path: the
    script reads only names without a separator that do not start with '.'."""
    if not name or "\x00" in name or "\n" in name:
        return  # none survives the comma/whitespace split the script does first
    script = f'_c=$1; for _ in 1; do {shell_skip_unsafe_file_name("_c")}; echo read; done'
    done = subprocess.run(["sh", "-c", script, "sh", name], capture_output=True, text=True,
                          check=True)
    read = done.stdout == "read\n"
    assert read == (file_name_problem(name, suffix="") is None or
                    (len(name) > 255 and re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", name)
                     is not None))


@pytest.mark.parametrize("user", ["root", "admin", "svc_wlb", "a.b-c", "0day"])
def test_login_names(user: str) -> None:
    assert ssh_user_problem(user) is None


@pytest.mark.parametrize("user", ["", "admin@corp", "a:b", "two words", "-o", ".x", "a" * 33,
                                  "tab\tx", "dom\\user"])
def test_not_login_names(user: str) -> None:
    assert ssh_user_problem(user) is not None


@pytest.mark.parametrize("text", ["10.0.0.5", "::1", "fd00::7", "::ffff:10.0.0.5"])
def test_plain_ip_literals(text: str) -> None:
    assert ip_address_problem(text) is None


@pytest.mark.parametrize(("text", "why"), [
    ("fe80::1%eth0", "scoped"), ("::1%1", "scoped"), ("1.2.3.4%eth0", "not an IP"),
    ("wlb.example.com", "not an IP"), ("[::1]", "not an IP"), ("01.2.3.4", "not an IP"),
])
def test_not_plain_ip_literals(text: str, why: str) -> None:
    problem = ip_address_problem(text)
    assert problem is not None
    assert why in problem


@pytest.mark.parametrize(("host", "port", "joined"), [
    ("wlb.example.com", 8012, "wlb.example.com:8012"), ("10.0.0.5", 8012, "10.0.0.5:8012"),
    ("::1", 443, "[::1]:443"), ("fd00::7", 8012, "[fd00::7]:8012"),
])
def test_host_and_port_are_joined_with_brackets_for_ipv6(host: str, port: int,
                                                         joined: str) -> None:
    assert join_host_port(host, port) == joined


# An f-string that puts a port after "{...}:" — the join that needs brackets for IPv6.
_JOIN = re.compile(r"""f["'][^"'\n]*\{[^}\n]*\}:\{[^}\n]*port[^}\n]*\}""")


def test_the_product_joins_hosts_and_ports_in_one_place() -> None:
    """``model/names.py`` is that place; the lab (its own emulator and notes) is not the
    product and is left out."""
    found = [f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}"
             for path in sorted(PACKAGE.rglob("*.py"))
             if "lab" not in path.parts and path != PACKAGE / "model" / "names.py"
             for n, line in enumerate(path.read_text().splitlines(), 1) if _JOIN.search(line)]
    assert found == []
