"""The signer's output folder is made before the signer runs, as the CSR's is."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from wlbplan.actions.appliance import _sign_run
from wlbplan.core.steps import Step

PEM = (Path(__file__).resolve().parents[1] / "data" / "certs").glob("*.pem")


def test_the_signer_writes_into_a_folder_made_for_it(tmp_path: Path) -> None:
    source = next(iter(sorted(PEM)))
    cert = tmp_path / "new" / "deeper" / "wlb.pem"
    argv = [sys.executable, "-c", "import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2])",
            str(source), str(cert)]
    step = Step("local.sign", "local", "sign", (), (), {"argv": argv, "cert": str(cert)})
    ctx: Any = None  # signing runs here; it needs no host
    _sign_run(ctx, step)
    assert cert.read_bytes() == source.read_bytes()
