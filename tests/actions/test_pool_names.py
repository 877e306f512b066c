"""Installing and removing a CA certificate by a name from a plan file or a journal: one
that could leave its folder is refused before anything runs (issue 16 #3). Run with the
real local connector and a stand-in xe that records what it is asked."""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile import VALUES, Hostile

from wlbplan.actions.base import Context, StepFailed
from wlbplan.actions.pool import install, uninstall
from wlbplan.connectors.local import LocalRunner
from wlbplan.core.steps.pool import CA_COMMANDS
from wlbplan.model.names import file_name_problem
from wlbplan.model.spec import CertificateSpec, PoolSpec, Spec, Target, WlbSpec
from wlbplan.run.sessions import Sessions

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

XE = CA_COMMANDS["current"]  # the pool's CA commands (xapi >= 1.290)


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    log = tmp_path / "xe.log"
    xe = tmp_path / "xe"
    xe.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\nexit 0\n')
    xe.chmod(0o755)
    target = Target(name="t", pool=PoolSpec("localhost", xe=str(xe), connection="local"),
                    wlb=WlbSpec("wlb.example.com", connection="local"),
                    certificate=CertificateSpec("self-signed"))
    spec = Spec(version=1, path=tmp_path / "spec.yaml", digest="0", targets=(target,))
    runner = LocalRunner()
    return Context(spec=spec, target=target, sessions=Sessions(pool=runner, appliance=runner))


def _asked(ctx: Context) -> str:
    log = Path(ctx.target.pool.xe).parent / "xe.log"
    return log.read_text() if log.exists() else ""


@pytest.mark.parametrize("name", ["../../evil.pem", "a/b.pem", "..", ".pem", "x.txt",
                                  "wlbplan-wlb-0/../../x.pem", "x y.pem", "x\n.pem"])
def test_an_unsafe_name_is_refused_before_anything_runs(ctx: Context, name: str) -> None:
    with pytest.raises(StepFailed, match="refusing the CA certificate name"):
        install(ctx, XE, name, PEM)
    with pytest.raises(StepFailed, match="refusing the CA certificate name"):
        uninstall(ctx, XE, name, missing_ok=True)
    assert _asked(ctx) == ""


@pytest.mark.parametrize("value", VALUES, ids=[v.id for v in VALUES])
def test_a_hostile_name_is_refused_or_passed_as_it_is(ctx: Context, value: Hostile,
                                                      tmp_path: Path) -> None:
    """Every corpus value as a name from a plan file or a journal (as it is and as a
    .pem): refused before xe runs, or given to xe as that one argument."""
    canary = tmp_path / "CANARY"
    for name in (value.value(canary), value.value(canary) + ".pem"):
        if file_name_problem(name):
            test_an_unsafe_name_is_refused_before_anything_runs(ctx, name)
            continue
        install(ctx, XE, name, PEM)
        uninstall(ctx, XE, name, missing_ok=False)
        asked = _asked(ctx).splitlines()[-2:]
        assert asked[0].endswith(f"/{name}")
        assert asked[1] == f"pool-uninstall-ca-certificate name={name}"
    assert not canary.exists()


def test_a_safe_name_is_installed_and_removed(ctx: Context) -> None:
    install(ctx, XE, "wlbplan-root-0123456789abcdef.pem", PEM)
    uninstall(ctx, XE, "wlbplan-root-0123456789abcdef.pem", missing_ok=False)
    asked = _asked(ctx).splitlines()
    assert asked[0].startswith("pool-install-ca-certificate filename=/")
    assert asked[0].endswith("/wlbplan-root-0123456789abcdef.pem")
    assert asked[1] == "pool-uninstall-ca-certificate name=wlbplan-root-0123456789abcdef.pem"
