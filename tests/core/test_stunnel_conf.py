"""The stunnel.conf parser on the shapes stunnel accepts, and on anything (property)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from property_settings import PARSER

from wlbplan.core.stunnel_conf import Served, served_files

LAB = """; written by wlbplan lab
pid = /x/stunnel.pid
foreground = no
[wlb]
accept = 127.0.0.1:43111
connect = 127.0.0.1:43112
cert = /x/etc/ssl/certs/server.pem
key = /x/etc/ssl/certs/server.key
"""


def test_the_service_on_the_port_names_its_files() -> None:
    assert served_files(LAB, 43111) == Served("/x/etc/ssl/certs/server.pem",
                                              "/x/etc/ssl/certs/server.key")


def test_global_options_are_inherited_and_key_defaults_to_cert() -> None:
    text = "cert = /etc/ssl/certs/both.pem\n# c\n[other]\naccept = 443\n[wlb]\naccept = :::8012\n"
    assert served_files(text, 8012) == Served("/etc/ssl/certs/both.pem",
                                              "/etc/ssl/certs/both.pem")


def test_no_service_on_the_port_is_said() -> None:
    assert served_files(LAB, 8012).problem == "no service in it accepts port 8012"
    assert served_files("[wlb]\naccept = 8012\n", 8012).problem == \
        "the service on port 8012 names no cert"


@PARSER
@given(st.text(max_size=400), st.integers(1, 65535))
def test_any_text_gives_files_or_a_problem(text: str, port: int) -> None:
    found = served_files(text, port)
    assert (found.cert is None) == (found.problem is not None)
