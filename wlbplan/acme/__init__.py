"""The ACME client: an effect beside the connectors (it talks to the CA, and runs the
challenge hooks, from the machine wlbplan runs on). The pure core never imports it: it
sees only the chain ``issue`` returns.

The protocol is certbot's ``acme`` library (with ``josepy``): JWS, nonces, polling and
problem documents are its work, not this package's.

The order is ``wlbplan.acme.client.issue``. Nothing is imported here: the hooks
(``wlbplan.acme.hooks``) are needed without the client, whose libraries (``acme``,
``josepy``, ``requests``) cost every command a tenth of a second to import.
"""
