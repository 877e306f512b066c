"""The apply lock over XenAPI: a key of the pool's ``other_config``, no shell needed.

The lock's record (``LockInfo``: id, owner, pid, time, target) is the key's value, as
JSON. How two wlbplan runs are kept apart:

- Taking it is ``pool.add_to_other_config(pool, KEY, record)``, one call that xapi's
  database runs atomically: a key already there with another value is refused with
  MAP_DUPLICATE_KEY (db_cache_types.ml add_to_map; db_cache_impl.ml). Where xapi uses
  its idempotent add, the same key with the *same* value is accepted; every record
  carries a fresh uuid4 id, so two runs never write the same value: of two runs racing,
  exactly one takes the lock and the other reads the winner's record.
- Releasing reads the key and removes it only when it still holds this run's id. Between
  the read and the removal no other run can take the lock (the key is there, so their add
  fails); only a ``force-unlock`` by an operator could, exactly as with the lock file
  over SSH.
- ``force-unlock ID`` removes the key when it holds that id (or does not parse: id
  ``unreadable``), the same rule as over SSH.

A pool reached by SSH takes the same key (with ``xe pool-param-add``, the same
add_to_other_config) beside its lock file, in its one lock command (run/lock.py): a run
over SSH and a run over XenAPI on one pool race for that one key, and one of them wins.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from wlbplan.connectors.xenapi import XenapiSession
from wlbplan.errors import XapiError
from wlbplan.model.lock import LOCK_KEY, UNREADABLE, LockInfo, parse_lock
from wlbplan.model.spec import Target

KEY = LOCK_KEY


class XenapiLockStore:
    """``other_config:wlbplan-apply-lock`` of the pool a session is logged in to."""

    def __init__(self, session: XenapiSession, target: Target) -> None:
        self.session = session
        self.target = target
        self._pool: str | None = None

    @property
    def host(self) -> str:
        return self.session.url

    @property
    def where(self) -> str:
        return f"other_config:{KEY} of the pool"

    def _ref(self) -> str:
        if self._pool is None:
            refs = self.session.call("pool.get_all")
            if not isinstance(refs, list) or len(refs) != 1 or not isinstance(refs[0], str):
                raise XapiError(f"{self.target.name}: the pool's XenAPI lists {refs!r:.80} as "
                                "its pools, not one", "UNEXPECTED")
            self._pool = refs[0]
        return self._pool

    def _value(self) -> Any:
        config = self.session.call("pool.get_other_config", self._ref())
        return config.get(KEY) if isinstance(config, dict) else None

    def create(self, info: LockInfo) -> bool:
        try:
            self.session.call("pool.add_to_other_config", self._ref(), KEY,
                              json.dumps(asdict(info)))
        except XapiError as err:
            if err.code == "MAP_DUPLICATE_KEY":
                return False
            raise
        return True

    def read(self) -> LockInfo | None:
        value = self._value()
        if value is None:
            return None
        return parse_lock(value if isinstance(value, str) else "", self.target.name)

    def remove(self, lock_id: str) -> bool:
        held = self.read()
        if held is None or (lock_id != UNREADABLE and held.id != lock_id) or \
                (lock_id == UNREADABLE and held.id != UNREADABLE):
            return False
        self.session.call("pool.remove_from_other_config", self._ref(), KEY)
        return True
