"""Of the chains an ACME CA offers (the default one and its alternates), the one that ends
at the root the spec names: ACME servers never send the root itself."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509

from wlbplan import certs
from wlbplan.errors import AcmeError, VerifyError


def choose(offered: Sequence[str], root: x509.Certificate, root_file: str) -> tuple[str, ...]:
    """The first offered chain (PEM text) that leads to ``root``, as PEMs leaf first,
    without the root. AcmeError naming where each one ends when none does."""
    ends: list[str] = []
    for text in offered:
        try:
            leaf, *rest = certs.parse_pem_bundle(text.encode())
        except (VerifyError, ValueError):
            ends.append("(not a certificate chain)")
            continue
        ordered = certs.order_chain(leaf, [*rest, root])
        if ordered.complete and ordered.certs[-1] == root:
            return tuple(certs.to_pem([c]).decode() for c in ordered.certs[:-1])
        ends.append(ordered.certs[-1].issuer.rfc4514_string())
    raise AcmeError(
        f"none of the {len(offered)} chain(s) the CA offered ends at acme.root ({root_file}: "
        f"'{root.subject.rfc4514_string()}'); they end at: {', '.join(ends)}. Set acme.root "
        "to the CA's root certificate")
