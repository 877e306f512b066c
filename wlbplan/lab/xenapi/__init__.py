"""The lab's XenAPI: xapi's XML-RPC interface over HTTPS, emulated over the same pool state
(``xe_state``) that the lab's ``xe`` reads and changes, so that both connectors see and
change one pool.

Calls, their parameters, argument checks, roles and error codes follow xen-api
(xapi-project/xen-api); each fact names its source file and line in
``tests/lab/test_xenapi_emulator.py`` (the conformance table). The modules: :mod:`.rbac`
(roles and the RBAC_PERMISSION_DENIED refusal), :mod:`.records` (objects as XenAPI
records, their references), :mod:`.calls` (the call table), :mod:`.server` (XML-RPC over
TLS, sessions, the wire format) and :mod:`.daemon` (what ``lab up --xenapi`` starts).
"""
