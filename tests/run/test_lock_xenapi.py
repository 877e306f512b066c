"""The apply lock as a key of the pool's other_config, through the lab's XenAPI: taken by
one run of many racing, released only by its holder, force-unlocked by its exact id."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from xenapi_pool import Pool

from wlbplan.connectors.xenapi import open_session
from wlbplan.errors import LockError, XapiError
from wlbplan.lab.xenapi import server
from wlbplan.model.spec import CertificateSpec, Target, WlbSpec
from wlbplan.run import lock
from wlbplan.run.lock_xenapi import KEY, XenapiLockStore


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pool]:
    made = Pool(tmp_path_factory.mktemp("xenapi-lock") / "pool1")
    yield made
    made.stop()


def _target(pool: Pool) -> Target:
    return Target(name="pool1", pool=pool.spec(), wlb=WlbSpec(address="wlb1.lab.test"),
                  certificate=CertificateSpec(source="self-signed"))


def _session(pool: Pool) -> Any:
    return open_session("pool1", pool.spec(), address_of=lambda h: h, timeout=10,
                        environ=pool.env, warn=lambda _: None)


def test_take_hold_release(pool: Pool) -> None:
    target = _target(pool)
    with _session(pool) as api:
        store = XenapiLockStore(api, target)
        held = lock.acquire(store, target)
        assert lock.read_lock(store, target) == held
        with pytest.raises(LockError, match="another apply is running") as caught:
            lock.acquire(store, target)
        assert held.id in str(caught.value)
        assert not lock.release(store, target, "someone-else")
        assert lock.release(store, target, held.id)
        assert lock.read_lock(store, target) is None


def test_of_many_racing_runs_exactly_one_takes_it(pool: Pool) -> None:
    target = _target(pool)
    won: list[str] = []
    lost: list[str] = []
    start = threading.Barrier(6)

    def run() -> None:
        with _session(pool) as api:
            store = XenapiLockStore(api, target)
            start.wait()
            try:
                won.append(lock.acquire(store, target).id)
            except LockError as err:
                lost.append(str(err))

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    assert len(lost) == 5
    assert all(won[0] in said for said in lost)
    with _session(pool) as api:
        lock.force_unlock(XenapiLockStore(api, target), target, won[0])


def test_force_unlock_needs_the_exact_id_and_takes_an_unreadable_record(pool: Pool) -> None:
    target = _target(pool)
    with _session(pool) as api:
        store = XenapiLockStore(api, target)
        held = lock.acquire(store, target)
        with pytest.raises(LockError, match="is not the id"):
            lock.force_unlock(store, target, "guess")
        assert lock.force_unlock(store, target, held.id) == held
        ref = api.call("pool.get_all")[0]
        api.call("pool.add_to_other_config", ref, KEY, "{not json")
        assert lock.read_lock(store, target).id == lock.UNREADABLE  # type: ignore[union-attr]
        lock.force_unlock(store, target, lock.UNREADABLE)
        assert lock.read_lock(store, target) is None


def test_a_read_only_account_cannot_take_it(pool: Pool) -> None:
    pool.fault(server.READ_ONLY)
    try:
        with _session(pool) as api, pytest.raises(XapiError, match="pool-operator role"):
            lock.acquire(XenapiLockStore(api, _target(pool)), _target(pool))
    finally:
        pool.fault(server.READ_ONLY, on=False)

