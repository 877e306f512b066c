"""The ACME client: an effect beside the connectors (it talks to the CA, and runs the
challenge hooks, from the machine wlbplan runs on). The pure core never imports it: it
sees only the chain ``issue`` returns.

The protocol is certbot's ``acme`` library (with ``josepy``): JWS, nonces, polling and
problem documents are its work, not this package's.
"""

from wlbplan.acme.client import Order, issue

__all__ = ["Order", "issue"]
