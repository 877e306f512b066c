"""Roles (ocaml/idl/datamodel_roles.ml) and the refusal RBAC gives (ocaml/xapi/rbac.ml)."""

from __future__ import annotations

from wlbplan.lab.xe.errors import XeError, server_error

# datamodel_roles.ml `ordered`: decreasing privileges; client-cert is internal.
ORDERED = ("pool-admin", "pool-operator", "vm-power-admin", "vm-admin", "vm-operator",
           "client-cert", "read-only")
_PUBLIC = tuple(r for r in ORDERED if r != "client-cert")
# The roles the lab's account may have (`lab up --xenapi-role`).
LAB_ROLES = ("pool-admin", "pool-operator", "read-only")


def at_least(role: str) -> tuple[str, ...]:
    """datamodel_roles.ml roles_gte: ``role`` and every role above it."""
    return _PUBLIC[: _PUBLIC.index(role) + 1]


POOL_ADMIN = at_least("pool-admin")
POOL_OP = at_least("pool-operator")
READ_ONLY = at_least("read-only")
POOL_OP_OR_CLIENT_CERT = (*POOL_OP, "client-cert")  # _R_POOL_OP ++ _R_CLIENT_CERT


def _listed(roles: tuple[str, ...]) -> str:
    """The roles holding a permission, in datamodel order (inferred: xapi lists the
    Role records that hold it, Xapi_role.get_by_permission_name_label)."""
    return ", ".join(r for r in ORDERED if r in roles)


def denied(permission: str, roles: tuple[str, ...]) -> XeError:
    """rbac.ml disallowed_permission_exn: [permission; message]."""
    return server_error(
        "RBAC_PERMISSION_DENIED", permission,
        f"No permission in user session. (Roles with this permission: {_listed(roles)})")


def check(role: str | None, permission: str, roles: tuple[str, ...]) -> None:
    """``role`` None is the local superuser (rbac.ml: session_is_local_superuser), whom
    RBAC never refuses."""
    if role is not None and role not in roles:
        raise denied(permission.lower(), roles)  # rbac.ml: permissions are lower case
