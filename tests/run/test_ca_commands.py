"""Which xe commands install and remove CA certificates: chosen from what the pool offers
(PoolFacts.ca_commands), shown in the plan, run by apply and by undo alike."""

from __future__ import annotations

import pytest

from wlbplan.actions.base import StepFailed
from wlbplan.actions.pool import ca_commands
from wlbplan.core.desired import Anchor
from wlbplan.core.steps import pool as steps
from wlbplan.model.observed import PoolFacts
from wlbplan.model.spec import CertificateSpec, PoolSpec, Target, WlbSpec

TARGET = Target(name="t", pool=PoolSpec(coordinator="c", xe="/opt/xe"),
                wlb=WlbSpec(address="w"), certificate=CertificateSpec(source="self-signed"))
NAMES = {"current": ("pool-install-ca-certificate", "pool-uninstall-ca-certificate"),
         "pre-1.290": ("pool-certificate-install", "pool-certificate-uninstall")}


def facts(which: str) -> PoolFacts:
    return PoolFacts(uuid="u", coordinator="h", hosts=("h",), xapi_version="1.20",
                     wlb_url="w:8012", wlb_username="", wlb_enabled=True,
                     wlb_verify_cert=False, ca_commands=which)  # type: ignore[arg-type]


@pytest.mark.parametrize("which", list(NAMES))
def test_steps_show_and_record_the_pools_commands(which: str) -> None:
    install, uninstall = NAMES[which]
    anchor = Anchor(role="wlb", fingerprint="AA:BB", pem="PEM")
    name = anchor.install_name
    step = steps.install_ca(TARGET, facts(which), anchor)
    assert any(f"/opt/xe {install} " in line for line in step.commands), step.commands
    assert step.undo == (f"/opt/xe {uninstall} name={name}",)
    assert ca_commands(step.params) == steps.CA_COMMANDS[which]
    removal = steps.uninstall_ca(TARGET, facts(which), "a.pem", "PEM", "AA")
    assert removal.commands == (f"/opt/xe {uninstall} name=a.pem",)
    assert any(f"/opt/xe {install} " in line for line in removal.undo), removal.undo
    assert ca_commands(removal.params) == steps.CA_COMMANDS[which]


def test_plans_and_journals_from_before_the_choice_use_the_current_commands() -> None:
    assert ca_commands({"kind": "pool.uninstall_ca", "name": "a.pem"}).uninstall == (
        "pool-uninstall-ca-certificate")


@pytest.mark.parametrize("value", ["rm -rf /", "", None, 1, ["current"]])
def test_an_unknown_choice_in_a_plan_or_journal_is_refused(value: object) -> None:
    with pytest.raises(StepFailed, match="unknown CA certificate commands"):
        ca_commands({"ca_commands": value})
