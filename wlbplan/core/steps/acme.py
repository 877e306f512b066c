"""The ACME order step: run on the machine wlbplan runs on; only the CSR leaves the
appliance. What it returns (the issued chain) is installed by the CA-signed path's steps,
planned once it is there, in the same apply and the same journal."""

from __future__ import annotations

from wlbplan.core.desired import AcmeOrder
from wlbplan.core.steps import Step
from wlbplan.core.steps.appliance import pending_csr
from wlbplan.model.command import Command
from wlbplan.model.spec import AcmeSpec, Target


def _hook(acme: AcmeSpec, which: str, domain: str) -> str:
    """The hook as it will run, ``{value}`` left for the CA's token (known only then)."""
    command = acme.challenge.set if which == "set" else acme.challenge.clear
    name = f"_acme-challenge.{domain.removeprefix('*.')}"
    return Command(acme.challenge.argv(command, domain, name, "{value}")).display()


def order(target: Target, wanted: AcmeOrder) -> Step:
    acme = target.certificate.acme
    assert acme is not None  # only planned for source: acme
    csr = pending_csr(target)
    account = str(acme.account.key_file) if acme.account.key_file else \
        "the state folder's account key for this directory (made 0600 on first use)"
    commands = [
        f"download the CSR {csr} from the appliance (the key stays there)",
        f"ACME order at {acme.directory} for {', '.join(wanted.names)} (account: {account}"
        + (f", external account binding from ${acme.eab.kid_env} and ${acme.eab.hmac_env}"
           if acme.eab else "") + ")",
        *(f"dns-01 for {d}: {_hook(acme, 'set', d)}" for d in wanted.names),
        "wait until the CA has checked the TXT records, finalize the order with the CSR, "
        f"download the chain; take the one that ends at the root {acme.root}",
        *(f"clear (also when the order fails or is interrupted): {_hook(acme, 'clear', d)}"
          for d in wanted.names),
    ]
    return Step(
        action="acme.order",
        on="local",
        summary=f"order a certificate for {', '.join(wanted.names)} from the ACME CA at "
                f"{acme.directory} ({wanted.reason})",
        commands=tuple(commands),
        undo=tuple(_hook(acme, "clear", d) for d in wanted.names),
        params={"csr": csr, "directory": acme.directory, "names": list(wanted.names),
                "root": wanted.root.fingerprint,
                "env": [acme.eab.kid_env, acme.eab.hmac_env] if acme.eab else []},
    )


def then(wanted: AcmeOrder) -> str:
    """What the same apply does once the CA has issued (a note of the order stage's plan)."""
    return ("then, in the same apply and journal, with the chain the CA returns (checked "
            "first: for the new key, leading to the root, accepted by the pool): trust the "
            f"root ({wanted.root.install_name}) and the chain's intermediates on the pool, "
            "sync, back up server.pem and server.key, install the chain and the new key, "
            "restart stunnel and wait for the new certificate, preflight, set "
            "wlb-verify-cert as the spec says, confirm, and remove the trust the old "
            "certificate needed; a failure anywhere rolls all of it back, the order's key "
            "and CSR included")
