"""The ACME order: run here (not on a host), through ``wlbplan.acme``. Its undo clears the
challenge records the order may have left (a run killed half-way never cleared them); the
chain it returns goes to the run as the step's output, not to any file."""

from __future__ import annotations

import os

from cryptography import x509

from wlbplan.acme.hooks import Record, run
from wlbplan.actions.base import Action, Context, StepFailed, UndoRecord, first, one_of
from wlbplan.core.steps import Step
from wlbplan.errors import AcmeError, WlbplanError
from wlbplan.model.spec import AcmeSpec


def _acme(ctx: Context) -> AcmeSpec:
    acme = ctx.target.certificate.acme
    if acme is None:
        raise StepFailed(f"{ctx.target.name}: the spec has no certificate.acme any more")
    return acme


def _names(csr_pem: bytes) -> list[str]:
    csr = x509.load_pem_x509_csr(csr_pem)
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(san.get_values_for_type(x509.DNSName))


def _order_run(ctx: Context, step: Step) -> None:
    acme = _acme(ctx)
    csr = ctx.sessions.appliance.get(step.params["csr"])
    try:
        names = _names(csr)
    except ValueError:
        raise StepFailed(f"{step.params['csr']} on the appliance is not a CSR") from None
    if sorted(names) != sorted(step.params["names"]):
        raise StepFailed(f"the CSR {step.params['csr']} is for {', '.join(names)}, not for "
                         f"{', '.join(step.params['names'])} as planned")
    if ctx.state_dir is None:
        raise StepFailed("an ACME order needs the state folder (for its account key)")
    # Here, not at the top: only an order needs the ACME client's libraries, and every
    # command that imports the actions (plan, audit, inspect) would load them.
    from wlbplan.acme.client import issue

    name = ctx.target.name
    order = issue(acme, csr, state_dir=ctx.state_dir, env=os.environ,
                  progress=lambda said: ctx.report({"type": "acme_progress", "target": name,
                                                    "message": f"{name}: ACME: {said}"}))
    ctx.outputs[step.action] = {"chain": list(order.chain)}


def _order_undo_record(ctx: Context, step: Step) -> UndoRecord:
    return {"kind": "acme.clear", "names": list(step.params["names"])}


def _undo_clear(ctx: Context, record: UndoRecord) -> None:
    """Clear every challenge record the order may have set (its value is not known: a
    hook that needs ``{value}`` to clear gets an empty one). Each is tried."""
    acme = _acme(ctx)
    failed: list[str] = []
    for domain in record["names"]:
        name = f"_acme-challenge.{domain.removeprefix('*.')}"
        try:
            run(acme.challenge, "clear", Record(domain, name, ""))
        except AcmeError as err:
            failed.append(str(err))
    if failed:
        raise StepFailed("; ".join(failed))


def _confine_clear(ctx: Context, record: UndoRecord) -> str | None:
    from wlbplan.core.renewal import acme_names

    request = ctx.target.certificate.request
    allowed = [n.removeprefix("DNS:") for n in acme_names(request)] if request else []
    names = record.get("names")
    if not isinstance(names, list):
        return "names is not a list"
    return first(*(one_of({"name": n}, "name", allowed) for n in names))


def check_environment(step: Step) -> str | None:
    """Before any change: the EAB variables the order will read, when missing."""
    if step.action != "acme.order":
        return None
    missing = [name for name in step.params.get("env", []) if not os.environ.get(name)]
    return ", ".join(missing) or None


def output_chain(output: object) -> tuple[str, ...]:
    """The chain an order step's journaled output holds; WlbplanError if it holds none."""
    chain = output.get("chain") if isinstance(output, dict) else None
    if not isinstance(chain, list) or not chain or not all(isinstance(c, str) for c in chain):
        raise WlbplanError("the journal holds no chain from the ACME order")
    return tuple(chain)


ACTIONS = {"acme.order": Action(_order_undo_record, _order_run, _undo_clear)}
UNDO = {"acme.clear": _undo_clear}
CONFINE = {"acme.clear": _confine_clear}
