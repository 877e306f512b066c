"""Fixtures of the inspection tests: the captured script outputs and targets built in code.

``data/<situation>.<host>.txt`` is the raw stdout of the real appliance/pool script run
against a real lab (see ``capture.py``, which regenerates them). Only fixtures here: a
non-package conftest cannot be imported reliably by the test modules.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path, PurePosixPath

import pytest

from wlbplan.inspect import script
from wlbplan.inspect.script import RawFact
from wlbplan.model.spec import CertificateSpec, PoolSpec, Target, WlbPaths, WlbSpec

DATA = Path(__file__).resolve().parent / "data"

Captured = Callable[[str, str], dict[str, RawFact]]


def _make_target(
    *,
    cert: str = "/etc/ssl/certs/server.pem",
    key: str = "/etc/ssl/certs/server.key",
    xe: str = "xe",
    trust_dir: str = "/etc/stunnel",
    address: str = "wlb1.lab.test",
    port: int = 8012,
    name: str = "pool1",
) -> Target:
    """A target built directly (no spec validation), so tests can give it any path."""
    return Target(
        name=name,
        pool=PoolSpec(coordinator="localhost", xe=xe, connection="local",
                      trust_dir=PurePosixPath(trust_dir)),
        wlb=WlbSpec(address=address, port=port, connection="local",
                    paths=WlbPaths(cert=PurePosixPath(cert), key=PurePosixPath(key))),
        certificate=CertificateSpec(source="self-signed"),
    )


@pytest.fixture(scope="session")
def captured() -> Captured:
    """``captured(situation, host)``: the parsed raw facts of one data file."""
    cache: dict[tuple[str, str], dict[str, RawFact]] = {}

    def load(situation: str, host: str) -> dict[str, RawFact]:
        if (situation, host) not in cache:
            text = (DATA / f"{situation}.{host}.txt").read_text()
            cache[situation, host] = script.parse(text)
        return dict(cache[situation, host])

    return load


@pytest.fixture(scope="session")
def make_target() -> Callable[..., Target]:
    """``make_target(cert=..., key=..., xe=..., trust_dir=..., address=..., port=...)``."""
    return _make_target


@pytest.fixture(scope="session")
def target() -> Target:
    return _make_target()
