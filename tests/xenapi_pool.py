"""A lab pool whose XenAPI the test process serves itself, on 127.0.0.1 (no daemon): for
the connector's and the lock's tests."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from wlbplan.lab import xe_state
from wlbplan.lab.layout import TargetLayout
from wlbplan.lab.procs import free_port
from wlbplan.lab.xenapi import server
from wlbplan.lab.xenapi.daemon import account, endpoint, make_pool_identity, server_cert
from wlbplan.model.spec import PoolCredentials, PoolSpec, PoolTls

ENV = {"XS_USER": "wlbplan", "XS_PASS": ""}


class Pool:
    """A lab pool with its XenAPI served from a thread of this test."""

    def __init__(self, root: Path) -> None:
        self.layout = TargetLayout(root)
        xe_state.create_pool(self.layout, hosts=2, xapi="current", wlb_url="", wlb_username="",
                             wlb_password="", resolve={})
        make_pool_identity(self.layout, "pool-operator")
        self.password = json.loads(account(self.layout).read_text())["password"]
        self.port = free_port()
        self.server = server.build(endpoint(self.layout, self.port))
        self.dispatcher: server.Dispatcher = self.server.instance  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def spec(self, **tls: Any) -> PoolSpec:
        if not tls:
            tls = {"ca_file": server_cert(self.layout)}
        return PoolSpec("xs1-01.lab.test", connector="xenapi",
                        url=f"https://127.0.0.1:{self.port}",
                        credentials=PoolCredentials("XS_USER", "XS_PASS"), tls=PoolTls(**tls))

    @property
    def env(self) -> dict[str, str]:
        return {**ENV, "XS_PASS": self.password}

    def fault(self, name: str, on: bool = True) -> None:
        self.layout.faults_dir.mkdir(exist_ok=True)
        marker = self.layout.faults_dir / name
        marker.touch() if on else marker.unlink()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


