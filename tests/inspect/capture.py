"""Regenerate ``tests/inspect/data/*.txt``: real inspect-script output from a real lab.

For every situation below a fresh lab is brought up in a temporary folder, the situation
is set up (an xe command, a lab fault, a broken file…), then the real appliance and pool
scripts (``wlbplan.inspect.appliance.script`` / ``pool.script``) run through the local
connector, and their raw stdout is written to ``<situation>.appliance.txt`` and
``<situation>.pool.txt``. The only thing added is a first ``#`` line naming the
situation; the parser ignores it like any banner. Every lab is stopped (``lab down``)
before the next one starts, also on failure.

The captured certificates are public (the lab makes them for the occasion). Private keys
must never be in a capture: every file is checked, raw and base64-decoded, before any is
written.

    .venv/bin/python tests/inspect/capture.py [--out tests/inspect/data] [--only NAME]...
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from wlbplan.connectors.local import LocalRunner
from wlbplan.inspect import appliance, pool
from wlbplan.inspect import script as facts
from wlbplan.lab import control, faults, pki, stunnel, xe_state
from wlbplan.lab.layout import TargetLayout
from wlbplan.model.command import script
from wlbplan.spec import load_spec

DATA = Path(__file__).resolve().parent / "data"
HOSTS = ("appliance", "pool")
FORBIDDEN = "PRIVATE KEY"
# Names the pool's CA certificates are installed under in these captures.
APPLIANCE_CA = "wlb-appliance.pem"
OTHER_CA = "other-ca.pem"
ROOT_CA = "lab-root.pem"


@dataclass(frozen=True)
class Context:
    lab: control.Lab
    layout: TargetLayout
    work: Path
    """A scratch folder outside the lab (files handed to xe)."""

    @property
    def fqdn(self) -> str:
        return self.lab.targets[0].fqdn

    def xe(self, *args: str) -> str:
        done = subprocess.run([str(self.layout.xe), *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"xe {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    @property
    def pool_uuid(self) -> str:
        return self.xe("pool-list", "--minimal")

    def install_ca(self, pem: bytes, name: str) -> None:
        path = self.work / name
        path.write_bytes(pem)
        # The deprecated name: the only one the 1.249 line (ch82) has, and every xapi keeps.
        command = ("pool-certificate-install" if self.lab.xapi == "ch82"
                   else "pool-install-ca-certificate")
        self.xe(command, f"filename={path}")

    def verify_on(self) -> None:
        self.xe("pool-param-set", f"uuid={self.pool_uuid}", "wlb-verify-cert=true")

    def fault(self, name: str) -> None:
        faults.inject(self.lab.dir, name)

    def restart_stunnel(self) -> subprocess.CompletedProcess[str]:
        return stunnel.restart(self.layout)


def _fresh(ctx: Context) -> None:
    """A lab as `lab up` leaves it: self-signed appliance, pool not verifying, no CA."""


def _trusted_verify(ctx: Context) -> None:
    ctx.install_ca(ctx.layout.cert.read_bytes(), APPLIANCE_CA)
    ctx.verify_on()


def _restart_fails(ctx: Context) -> None:
    ctx.fault("restart-fails")
    done = ctx.restart_stunnel()
    if done.returncode == 0:
        raise RuntimeError("the restart-fails fault did not make the restart fail")


def _desync_host(ctx: Context) -> None:
    ctx.install_ca(ctx.layout.cert.read_bytes(), APPLIANCE_CA)
    ctx.fault("desync-host")


def _stunnel_stopped(ctx: Context) -> None:
    if stunnel.stop(ctx.layout) is None:
        raise RuntimeError("stunnel was not running")


def _key_missing(ctx: Context) -> None:
    ctx.layout.key.unlink()


def _key_der(ctx: Context) -> None:
    """The same key, DER-encoded: openssl reads it, the appliance's stunnel does not (it
    keeps serving with the key it loaded until its next restart)."""
    key = serialization.load_pem_private_key(ctx.layout.key.read_bytes(), password=None)
    ctx.layout.key.write_bytes(key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


def _cert_garbage(ctx: Context) -> None:
    ctx.layout.cert.write_text("this is not a certificate\n")


def _two_ca_one_unreadable(ctx: Context) -> None:
    ctx.install_ca(ctx.layout.cert.read_bytes(), APPLIANCE_CA)
    other = pki.build("Other Lab CA", ca=True)
    ctx.install_ca(other.cert_pem, OTHER_CA)
    # A directory where the file should be: `cat` fails whoever runs it (root included).
    stored = xe_state.coordinator(ctx.layout).certs_dir / OTHER_CA
    stored.unlink()
    stored.mkdir()


def _backups(ctx: Context) -> None:
    """The seed's path B renames: server.pem → server.pem_orig, server.key → server.key_orig."""
    for path in (ctx.layout.cert, ctx.layout.key):
        shutil.copy2(path, path.with_name(path.name + "_orig"))


def _ca_signed(ctx: Context) -> None:
    """Path B done: server.pem = leaf + intermediate + root, root trusted, verify on."""
    root = pki.build("Lab Root CA", ca=True, path_length=1)
    intermediate = pki.build("Lab Intermediate CA", issuer=root, ca=True, path_length=0)
    key = serialization.load_pem_private_key(ctx.layout.key.read_bytes(), password=None)
    leaf = pki.build(ctx.fqdn, key=key, issuer=intermediate, sans=[ctx.fqdn],  # type: ignore[arg-type]
                     server_auth=True)
    ctx.layout.cert.write_bytes(leaf.cert_pem + intermediate.cert_pem + root.cert_pem)
    done = ctx.restart_stunnel()
    if done.returncode != 0:
        raise RuntimeError(f"stunnel did not restart: {done.stderr.strip()}")
    ctx.install_ca(root.cert_pem, ROOT_CA)
    ctx.verify_on()


def _fault(name: str) -> Callable[[Context], None]:
    def run(ctx: Context) -> None:
        ctx.fault(name)

    return run


@dataclass(frozen=True)
class Situation:
    describe: str
    setup: Callable[[Context], None]
    xapi: str = "current"


SITUATIONS: dict[str, Situation] = {
    "fresh": Situation("a fresh lab", _fresh),
    "trusted-verify": Situation(
        f"appliance cert installed as {APPLIANCE_CA} (xe pool-install-ca-certificate), "
        "wlb-verify-cert=true", _trusted_verify),
    "legacy-xapi": Situation("a fresh lab whose pool runs xapi 24.19 (verifyPeer)", _fresh,
                             xapi="legacy"),
    "ch82-verify": Situation(
        f"a pool on Citrix Hypervisor 8.2 (xapi 1.249: reports 1.20, no xapi_build, only "
        f"pool-certificate-install), appliance cert installed as {APPLIANCE_CA}, "
        "wlb-verify-cert=true", _trusted_verify, xapi="ch82"),
    "fault-restart-fails": Situation(
        "lab fault restart-fails, then a restart attempt: stunnel left down", _restart_fails),
    "fault-desync-host": Situation(
        f"{APPLIANCE_CA} installed, then lab fault desync-host (a member lost it)", _desync_host),
    "fault-expire": Situation("lab fault expire: the served cert expired 35 days before "
                              "capture", _fault("expire")),
    "fault-key-mismatch": Situation("lab fault key-mismatch: server.key replaced",
                                    _fault("key-mismatch")),
    "fault-cn-mismatch": Situation("lab fault cn-mismatch: cert for other-<fqdn>",
                                   _fault("cn-mismatch")),
    "fault-by-ip": Situation("lab fault by-ip: wlb-url=127.0.0.1:<port>", _fault("by-ip")),
    "fault-wlb-unresolvable": Situation(
        "lab fault wlb-unresolvable: the coordinator's getent does not know wlb1.lab.test",
        _fault("wlb-unresolvable")),
    "fault-wlb-resolves-elsewhere": Situation(
        "lab fault wlb-resolves-elsewhere: the coordinator's getent says 127.0.0.2",
        _fault("wlb-resolves-elsewhere")),
    "fault-stale-backups": Situation(
        "lab fault stale-backups: server.pem_orig, server.key_orig and a pending key, "
        "45 days old", _fault("stale-backups")),
    "stunnel-stopped": Situation("stunnel stopped", _stunnel_stopped),
    "key-missing": Situation("server.key deleted", _key_missing),
    "key-der": Situation("server.key rewritten DER-encoded (stunnel not restarted)", _key_der),
    "cert-garbage": Situation("server.pem overwritten with text that is not PEM",
                              _cert_garbage),
    "two-ca-one-unreadable": Situation(
        f"{APPLIANCE_CA} and {OTHER_CA} installed; the coordinator's {OTHER_CA} replaced by a "
        "directory (cat fails)", _two_ca_one_unreadable),
    "backups": Situation("server.pem_orig and server.key_orig next to the live files",
                         _backups),
    "ca-signed": Situation(
        f"leaf+intermediate+root in server.pem, stunnel restarted, root installed as "
        f"{ROOT_CA}, wlb-verify-cert=true", _ca_signed),
}


def leaks(text: str) -> list[str]:
    """Where ``text`` (a capture) holds private key material: raw, or inside a fact."""
    found = [f"raw line {n}" for n, line in enumerate(text.splitlines(), 1) if FORBIDDEN in line]
    found += [f"fact {name}" for name, raw in facts.parse(text).items() if FORBIDDEN in raw.output]
    return found


def capture_one(name: str, situation: Situation, scratch: Path) -> dict[str, str]:
    lab_dir = scratch / name / "lab"
    work = scratch / name / "work"
    work.mkdir(parents=True)
    try:
        lab = control.up(lab_dir, targets=1, hosts=3, xapi=situation.xapi)
        ctx = Context(lab=lab, layout=lab.layout(lab.targets[0].name), work=work)
        situation.setup(ctx)
        target = load_spec(lab.spec_path).targets[0]
        runner = LocalRunner()
        outputs = {}
        for host, module in (("appliance", appliance), ("pool", pool)):
            result = runner.run(script(module.script(target)), timeout=60)
            if result.stderr.strip():
                print(f"  {name}/{host}: stderr: {result.stderr.strip()}", file=sys.stderr)
            header = f"# wlbplan capture {name}.{host}: {situation.describe}\n"
            outputs[host] = header + result.stdout
        return outputs
    finally:
        control.down(lab_dir)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DATA)
    parser.add_argument("--only", action="append", choices=sorted(SITUATIONS), default=[])
    args = parser.parse_args()
    chosen = args.only or list(SITUATIONS)
    captured: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="wlbplan-capture-") as tmp:
        for name in chosen:
            print(f"capturing {name}: {SITUATIONS[name].describe}", file=sys.stderr)
            for host, text in capture_one(name, SITUATIONS[name], Path(tmp)).items():
                captured[f"{name}.{host}.txt"] = text
    problems = [f"{file}: {where}" for file, text in captured.items() for where in leaks(text)]
    if problems:
        print("private key material in captures; nothing written:\n  " + "\n  ".join(problems),
              file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for file, text in sorted(captured.items()):
        (args.out / file).write_text(text)
        print(f"wrote {args.out / file}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
