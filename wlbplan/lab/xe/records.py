"""Object records (records.ml): the generic list and param commands of each class."""

from __future__ import annotations

from wlbplan.lab import xe_state
from wlbplan.lab.xe.cli import STDPARAMS, Record
from wlbplan.lab.xe.errors import cli_failure, server_error

# Not typing's: importing typing costs every xe call ~10 ms. mypy reads it as true.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from wlbplan.lab.xe.cli import Context, Handler
    from wlbplan.lab.xe_state import State


class Field:
    """One record field: ``kind`` is str, bool or map; RW when ``settable``."""

    def __init__(self, name: str, kind: str = "str", settable: bool = False) -> None:
        self.name = name
        self.kind = kind
        self.settable = settable

    @property
    def label(self) -> str:
        """cli_operations.ml print_field: the access marker after the name."""
        if self.kind == "map":
            return f"{self.name} (MRW)" if self.settable else f"{self.name} (MRO)"
        return f"{self.name} ( RW)" if self.settable else f"{self.name} ( RO)"

    def render(self, obj: State) -> str:
        value = obj.get(self.name, {} if self.kind == "map" else "")
        if self.kind == "bool":
            return "true" if value else "false"
        if self.kind == "map":
            return "; ".join(f"{k}: {v}" for k, v in value.items())
        return str(value)


class ObjectClass:
    """An xe class (pool, host): its fields, its default list columns, its objects."""

    def __init__(self, name: str, fields: tuple[Field, ...], defaults: tuple[str, ...],
                 objects: Callable[[State], list[State]]) -> None:
        self.name = name
        self.fields = fields
        self.defaults = defaults
        self.objects = objects

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def get(self, state: State, uuid: str) -> State:
        for obj in self.objects(state):
            if obj["uuid"] == uuid:
                return obj
        raise server_error("UUID_INVALID", self.name, uuid)


POOL = ObjectClass(
    "pool",
    (Field("uuid"), Field("name-label", settable=True), Field("name-description", settable=True),
     Field("master"), Field("default-SR"), Field("wlb-url"), Field("wlb-username"),
     Field("wlb-enabled", "bool", settable=True), Field("wlb-verify-cert", "bool", settable=True),
     Field("tls-verification-enabled", "bool"), Field("other-config", "map", settable=True)),
    ("uuid", "name-label", "name-description", "master", "default-SR"),
    lambda state: [state["pool"]],
)
HOST = ObjectClass(
    "host",
    (Field("uuid"), Field("name-label", settable=True), Field("name-description", settable=True),
     Field("enabled", "bool"), Field("hostname"), Field("software-version", "map")),
    ("uuid", "name-label", "name-description"),
    lambda state: list(state["hosts"]),
)


def _record(cls: ObjectClass, obj: State, names: Iterable[str] | None) -> Record:
    """select_fields: the chosen fields in the record's own order (not the order asked)."""
    wanted = None if names is None else set(names)
    return [(f.label, f.render(obj)) for f in cls.fields if wanted is None or f.name in wanted]


def _chosen_fields(ctx: Context, cls: ObjectClass) -> list[str] | None:
    params = ctx.params.get("params")
    if params is None:
        return list(cls.defaults)
    return None if params == "all" else params.split(",")


def _filter(ctx: Context, cls: ObjectClass, objects: list[State]) -> list[State]:
    """`xe <class>-list field=value`: keep the objects whose field renders as value."""
    for key, value in ctx.params.items():
        if key == "params" or key in STDPARAMS or key.startswith("database:") or not objects:
            continue
        field = cls.field(key)
        if field is None:
            raise cli_failure(f"Unknown field '{key}'")
        objects = [o for o in objects if field.render(o) == value]
    return objects


def list_command(cls: ObjectClass) -> Handler:
    def run(ctx: Context) -> None:
        objects = _filter(ctx, cls, cls.objects(ctx.state()))
        names = _chosen_fields(ctx, cls)
        ctx.printer.table([_record(cls, o, names) for o in objects])

    return run


def param_list_command(cls: ObjectClass) -> Handler:
    def run(ctx: Context) -> None:
        ctx.printer.table([_record(cls, cls.get(ctx.state(), ctx.params["uuid"]), None)])

    return run


def param_get_command(cls: ObjectClass) -> Handler:
    def run(ctx: Context) -> None:
        obj = cls.get(ctx.state(), ctx.params["uuid"])
        name = ctx.params["param-name"]
        field = cls.field(name)
        if field is None:
            # records.ml CLI_failed_to_find_param → server_error "Missing parameter" (undeclared)
            raise server_error("Missing parameter", name)
        key = ctx.params.get("param-key")
        if key is not None and field.kind == "map":
            if key not in obj[name]:
                raise cli_failure(f"Key {key} not found in map")
            ctx.printer.lines([str(obj[name][key])])
        else:
            ctx.printer.lines([field.render(obj)])

    return run


def _set_field(cls: ObjectClass, obj: State, key: str, value: str) -> None:
    """cli_operations.ml p_set for one `key=value`; the texts are its failwith messages."""
    field = cls.field(key)
    if field is None:
        base = cls.field(key.split(":", 1)[0]) if ":" in key else None
        if base is None:
            raise cli_failure(f"Unknown field '{key}'")
        if base.kind != "map":
            raise cli_failure(f"Field '{base.name}' is not a set or map")
        if not base.settable:
            raise cli_failure(f"Map field '{base.name}' is read-only.")
        # records.ml set_in_map: `other-config:KEY=VALUE` replaces the key's value
        obj.setdefault(base.name, {})[key.split(":", 1)[1]] = value
        return
    if not field.settable:
        raise cli_failure(f"Field '{key}' is read-only.")
    if field.kind == "bool":
        # records.ml uses OCaml's bool_of_string: exactly "true" or "false".
        if value not in ("true", "false"):
            raise cli_failure(f"Parameter {key} must be a boolean (true or false)")
        obj[key] = value == "true"
    else:
        obj[key] = value


_NOT_PAIRS = frozenset({"uuid", "param-name", "param-key"}) | STDPARAMS


def _settable_map(cls: ObjectClass, name: str) -> str:
    field = cls.field(name)
    if field is None:
        raise server_error("Missing parameter", name)
    if field.kind != "map":
        raise cli_failure("Can only add to parameters of type Set or Map")
    if not field.settable:
        raise cli_failure("Parameter is a read-only map")
    return name


def param_add_command(cls: ObjectClass) -> Handler:
    """cli_operations.ml make_param_funs addfunc: each `key=value` beyond the standard
    parameters is the map's add_to_map (db_cache_types.ml): a key already there with another
    value is MAP_DUPLICATE_KEY, and nothing of this call is added after it."""
    def run(ctx: Context) -> None:
        name = _settable_map(cls, ctx.params["param-name"])
        with xe_state.locked(ctx.state_path) as state:
            obj = cls.get(state, ctx.params["uuid"])
            held = obj.setdefault(name, {})
            try:
                for key, value in ctx.params.items():
                    if key in _NOT_PAIRS:
                        continue
                    if key in held and held[key] != value:
                        raise server_error("MAP_DUPLICATE_KEY", cls.name,
                                           name.replace("-", "_"), obj["uuid"], key)
                    held[key] = value
            finally:
                xe_state.save(ctx.state_path, state)

    return run


def param_remove_command(cls: ObjectClass) -> Handler:
    """cli_operations.ml removefunc: the map's remove_from_map; a missing key is no error."""
    def run(ctx: Context) -> None:
        name = _settable_map(cls, ctx.params["param-name"])
        with xe_state.locked(ctx.state_path) as state:
            obj = cls.get(state, ctx.params["uuid"])
            obj.setdefault(name, {}).pop(ctx.params["param-key"], None)
            xe_state.save(ctx.state_path, state)

    return run


def param_set_command(cls: ObjectClass) -> Handler:
    def run(ctx: Context) -> None:
        with xe_state.locked(ctx.state_path) as state:
            obj = cls.get(state, ctx.params["uuid"])
            try:
                for key, value in ctx.params.items():
                    if key != "uuid" and key not in STDPARAMS:
                        _set_field(cls, obj, key, value)
            finally:
                # each field is its own API call: those set before a failure stay set
                xe_state.save(ctx.state_path, state)

    return run

