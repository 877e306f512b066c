"""Conformance of the lab's ``xe`` emulator to xapi (/work/shared/reference/xapi-facts.md).

Every test runs the generated ``bin/xe`` wrapper as a subprocess and checks its stdout,
stderr and exit status. The WLB tests make real TLS handshakes against a real stunnel
(Debian stunnel4) on 127.0.0.1 serving certificates made here. Docstrings quote the
xapi-facts.md line each test checks.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import shutil
import socket
import stat
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from wlbplan.lab import procs, xe_state
from wlbplan.lab.layout import TargetLayout
from wlbplan.lab.pki import Issued, PrivateKey, build, make_key, now, write_private
from wlbplan.lab.procs import Daemon, free_port, port_open, wait_for

pytestmark = pytest.mark.lab

WLB_FQDN = "wlb.lab.test"
WLB_USER = "wlbuser"
WLB_PASSWORD = "Sup3r-s3cret-pw"  # never to appear in any output
RFC3339 = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
DAY = dt.timedelta(days=1)
STUNNEL = shutil.which("stunnel4") or shutil.which("stunnel")


def stop_wlb(pid_file: Path) -> None:
    """Stop a stunnel this test started as ``stunnel FOLDER/stunnel.conf``."""
    procs.stop(Daemon(pid_file, STUNNEL, (str(pid_file.with_name("stunnel.conf")),)))


# --- helpers --------------------------------------------------------------------------


def cert(common_name: str | None, **kw: object) -> Issued:
    """A certificate on a fast EC key (RSA key generation would dominate the suite)."""
    return build(common_name, key=make_key("ec", 256), **kw)  # type: ignore[arg-type]


@functools.cache
def wlb_key() -> PrivateKey:
    """One RSA key for everything WLB serves: xapi's stunnel offers ECDHE-RSA suites only
    (stunnel.ml), so an EC-keyed WLB fails the handshake; one key keeps the suite fast."""
    return make_key("rsa", 2048)


def wlb_cert(common_name: str | None, **kw: object) -> Issued:
    """A certificate for WLB to serve, on the shared RSA key."""
    return build(common_name, key=wlb_key(), **kw)  # type: ignore[arg-type]




def ok(result: subprocess.CompletedProcess[str], stdout: str = "") -> None:
    assert (result.returncode, result.stderr, result.stdout) == (0, "", stdout)


def fails(result: subprocess.CompletedProcess[str], *lines: str) -> None:
    """Exit 1, nothing on stdout, exactly these lines on stderr."""
    expected = "".join(f"{line}\n" for line in lines)
    assert (result.returncode, result.stdout, result.stderr) == (1, "", expected)


class Pool:
    """A lab pool and its ``bin/xe``."""

    def __init__(self, root: Path, xapi: str, hosts: int) -> None:
        self.xapi = xapi
        self.layout = TargetLayout(root)
        xe_state.create_pool(
            self.layout, hosts=hosts, xapi=xapi, wlb_url="", wlb_username="", wlb_password="",
            resolve={WLB_FQDN: "127.0.0.1", "far.lab.test": "10.1.2.3"},
        )
        xe_state.write_xe_wrapper(self.layout)
        write_private(self.layout.wlb_accounts,
                      json.dumps({"username": WLB_USER, "password": WLB_PASSWORD}).encode())
        self.cwd = root / "cwd"
        self.cwd.mkdir()

    def xe(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(self.layout.xe), *args], capture_output=True, text=True,
                                cwd=self.cwd, timeout=60)
        assert WLB_PASSWORD not in result.stdout + result.stderr
        return result

    @property
    def state(self) -> dict[str, object]:
        return json.loads(self.layout.pool_state.read_text())  # type: ignore[no-any-return]

    @property
    def uuid(self) -> str:
        return self.state["pool"]["uuid"]  # type: ignore[index,no-any-return]

    @property
    def host_uuids(self) -> list[str]:
        return [h["uuid"] for h in self.state["hosts"]]  # type: ignore[attr-defined]

    def hosts(self) -> list[Path]:
        """Each host's fake root, coordinator first."""
        return [self.layout.pool_dir / "hosts" / h["dir"] for h in self.state["hosts"]]  # type: ignore[attr-defined]

    def certs(self, index: int) -> dict[str, bytes]:
        folder = self.hosts()[index] / "etc/stunnel/certs"
        return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}

    def bundle(self, index: int) -> Path:
        return self.hosts()[index] / "etc/stunnel/xapi-stunnel-ca-bundle.pem"

    def file(self, name: str, data: bytes) -> str:
        (self.cwd / name).write_bytes(data)
        return name

    @property
    def install_command(self) -> str:
        """The 1.249 line (ch82) has only the deprecated name."""
        return "pool-certificate-install" if self.xapi == "ch82" else "pool-install-ca-certificate"

    @property
    def uninstall_command(self) -> str:
        return ("pool-certificate-uninstall" if self.xapi == "ch82"
                else "pool-uninstall-ca-certificate")

    def install(self, name: str, issued: Issued) -> None:
        ok(self.xe(self.install_command, f"filename={self.file(name, issued.cert_pem)}"))

    def set(self, **params: str) -> None:
        pairs = [f"{k.replace('_', '-')}={v}" for k, v in params.items()]
        ok(self.xe("pool-param-set", f"uuid={self.uuid}", *pairs))

    def get(self, name: str) -> str:
        result = self.xe("pool-param-get", f"uuid={self.uuid}", f"param-name={name}")
        assert result.returncode == 0, result.stderr
        return result.stdout

    def initialize(self, url: str, *, password: str = WLB_PASSWORD,
                   user: str = WLB_USER) -> subprocess.CompletedProcess[str]:
        return self.xe("pool-initialize-wlb", f"wlb_url={url}", f"wlb_username={user}",
                       f"wlb_password={password}", "xenserver_username=root",
                       "xenserver_password=xs-password")


@pytest.fixture
def make_pool(tmp_path: Path) -> Callable[..., Pool]:
    count = iter(range(1, 100))

    def make(xapi: str = "current", hosts: int = 3) -> Pool:
        return Pool(tmp_path / f"pool{next(count)}", xapi, hosts)

    return make


@pytest.fixture
def pool(make_pool: Callable[..., Pool]) -> Pool:
    return make_pool()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[Issued], int]]:
    """Start a real stunnel serving a certificate on 127.0.0.1 (like the appliance's)."""
    if STUNNEL is None:
        pytest.skip("stunnel4 is not installed")
    pid_files: list[Path] = []

    def start(issued: Issued) -> int:
        folder = tmp_path / f"wlb{len(pid_files)}"
        folder.mkdir()
        write_private(folder / "server.pem", issued.cert_pem, mode=0o644)
        write_private(folder / "server.key", issued.key_pem)
        port, pid_file = free_port(), folder / "stunnel.pid"
        (folder / "stunnel.conf").write_text(
            f"foreground = no\npid = {pid_file}\noutput = {folder / 'stunnel.log'}\n"
            f"[wlb]\naccept = 127.0.0.1:{port}\ncert = {folder / 'server.pem'}\n"
            f"key = {folder / 'server.key'}\nconnect = 127.0.0.1:{free_port()}\n"
        )
        subprocess.run([str(STUNNEL), str(folder / "stunnel.conf")], check=True, timeout=30)
        pid_files.append(pid_file)
        wait_for(lambda: pid_file.exists() and port_open(port), 10, "stunnel")
        return port

    yield start
    for pid_file in pid_files:
        stop_wlb(pid_file)










@pytest.fixture(scope="module")
def root_ca() -> Issued:
    return cert("wlbplan lab root CA", ca=True, days=3650)


def leaf(root: Issued, name: str = WLB_FQDN, **kw: object) -> Issued:
    return wlb_cert(name, issuer=root, sans=[name], server_auth=True, **kw)


# --- output formats -------------------------------------------------------------------


def test_pool_list_prints_xe_records(pool: Pool) -> None:
    """Output: records as cli_printer.ml multi_line_record, two blank lines after each."""
    state = pool.state
    uuid, master = state["pool"]["uuid"], state["hosts"][0]["uuid"]  # type: ignore[index]
    ok(pool.xe("pool-list"),
       f"uuid ( RO)                : {uuid}\n"
       f"          name-label ( RW): {pool.layout.name}\n"
       f"    name-description ( RW): \n"
       f"              master ( RO): {master}\n"
       f"          default-SR ( RO): <not in database>\n\n\n")


def test_list_params_keep_record_order_and_minimal_takes_the_first(pool: Pool) -> None:
    """`host-list`, `pool-list` with `--minimal` and `params=`."""
    ok(pool.xe("pool-list", "params=wlb-verify-cert,uuid"),
       f"uuid ( RO)               : {pool.uuid}\n    wlb-verify-cert ( RW): false\n\n\n")
    hosts = [h["uuid"] for h in pool.state["hosts"]]  # type: ignore[attr-defined]
    ok(pool.xe("host-list", "--minimal"), ",".join(hosts) + "\n")
    ok(pool.xe("--minimal", "host-list", "params=name-label"),
       ",".join(p.name for p in pool.hosts()) + "\n")
    ok(pool.xe("host-list", f"uuid={hosts[1]}", "params=uuid"),
       f"uuid ( RO)    : {hosts[1]}\n\n\n")
    ok(pool.xe("host-list", "name-label=nobody", "--minimal"), "\n")


def test_pool_param_get_wlb_fields_and_booleans(pool: Pool) -> None:
    """`wlb-url` (RO, `host:port`, empty when unset) …; booleans print `true`/`false`."""
    assert pool.get("wlb-url") == "\n"
    assert pool.get("wlb-username") == "\n"
    assert pool.get("wlb-enabled") == "false\n"
    assert pool.get("wlb-verify-cert") == "false\n"
    assert pool.get("uuid") == pool.uuid + "\n"
    assert pool.get("master") == pool.host_uuids[0] + "\n"
    assert pool.get("name-label") == pool.layout.name + "\n"


def test_pool_param_list_prints_every_field_in_one_record(pool: Pool) -> None:
    """`pool-param-list uuid=U`: one record as multi_line_record (cli_printer.ml), every
    field with its access marker ` RO`/` RW`/`MRW` (cli_operations.ml print_field), a map
    as `k: v; k2: v2`, each other value as pool-param-get prints it; read by wlbplan's
    inspection (inspect/pool.py parse_param_list) in one call instead of one per field."""
    from wlbplan.inspect.pool import parse_param_list

    pool.set(**{"other-config:a": "1", "other-config:b": "two words", "wlb-enabled": "true"})
    master = pool.host_uuids[0]
    ok(pool.xe("pool-param-list", f"uuid={pool.uuid}"),
       f"uuid ( RO)                        : {pool.uuid}\n"
       f"                  name-label ( RW): {pool.layout.name}\n"
       f"            name-description ( RW): \n"
       f"                      master ( RO): {master}\n"
       f"                  default-SR ( RO): <not in database>\n"
       f"                     wlb-url ( RO): \n"
       f"                wlb-username ( RO): \n"
       f"                 wlb-enabled ( RW): true\n"
       f"             wlb-verify-cert ( RW): false\n"
       f"    tls-verification-enabled ( RO): false\n"
       f"                other-config (MRW): a: 1; b: two words\n\n\n")
    record = parse_param_list(pool.xe("pool-param-list", f"uuid={pool.uuid}").stdout)
    for name in ("uuid", "name-label", "master", "wlb-url", "wlb-username", "wlb-enabled",
                 "wlb-verify-cert"):
        assert record[name] == pool.get(name).strip(), name
    fails(pool.xe("pool-param-list", "uuid=not-a-pool"),
          "The uuid you supplied was invalid.", "type: pool", "uuid: not-a-pool")


@pytest.mark.parametrize(("xapi", "version"), [("current", "25.33.1"), ("legacy", "24.19.2"),
                                              ("ch82", "1.20")])
def test_host_param_get_software_version(make_pool: Callable[..., Pool], xapi: str,
                                         version: str) -> None:
    """`host-param-get uuid=<h> param-name=software-version param-key=xapi` gives
    MAJOR.MINOR, and on the 1.249 line (Citrix Hypervisor 8.2) the hard-coded `1.20`. The
    full version is the `xapi_build` key, present since v22.9.0."""
    pool = make_pool(xapi)
    host = pool.host_uuids[0]
    ok(pool.xe("host-param-get", f"uuid={host}", "param-name=software-version",
               "param-key=xapi"), version + "\n")
    whole = pool.xe("host-param-get", f"uuid={host}", "param-name=software-version")
    assert f"; xapi: {version};" in whole.stdout
    assert whole.stdout.startswith("product_version: ")
    fails(pool.xe("host-param-get", f"uuid={host}", "param-name=software-version",
                  "param-key=nope"), "Error: Key nope not found in map")
    build = pool.xe("host-param-get", f"uuid={host}", "param-name=software-version",
                    "param-key=xapi_build")
    if xapi == "ch82":
        fails(build, "Error: Key xapi_build not found in map")
        assert "Citrix Hypervisor" in whole.stdout
    else:
        ok(build, version + "\n")


def test_pool_param_set_is_silent_and_sticks(pool: Pool) -> None:
    """`pool-param-set uuid=U wlb-verify-cert=true`; pool-param-set is silent."""
    pool.set(wlb_verify_cert="true", wlb_enabled="true")
    assert pool.get("wlb-verify-cert") == "true\n"
    assert pool.get("wlb-enabled") == "true\n"
    pool.set(wlb_verify_cert="false")
    assert pool.get("wlb-verify-cert") == "false\n"


def test_pool_param_set_refusals(pool: Pool) -> None:
    """`Parameter wlb-verify-cert must be a boolean (true or false)`;
    `Field 'wlb-url' is read-only.` (cli_operations.ml raises Cli_failure: `Error: `)."""
    uuid = pool.uuid
    for value in ("yes", "TRUE", "1", ""):
        fails(pool.xe("pool-param-set", f"uuid={uuid}", f"wlb-verify-cert={value}"),
              "Error: Parameter wlb-verify-cert must be a boolean (true or false)")
    for field in ("wlb-url", "wlb-username", "master"):
        fails(pool.xe("pool-param-set", f"uuid={uuid}", f"{field}=x"),
              f"Error: Field '{field}' is read-only.")
    fails(pool.xe("pool-param-set", f"uuid={uuid}", "no-such=1"), "Error: Unknown field 'no-such'")
    assert pool.get("wlb-verify-cert") == "false\n"


def test_pool_param_add_and_remove_on_other_config(pool: Pool) -> None:
    """`pool-param-add uuid=U param-name=other-config KEY=VALUE` is add_to_other_config:
    a key already there with another value is MAP_DUPLICATE_KEY (the test-and-set of
    wlbplan's lock over SSH); `pool-param-remove … param-key=KEY` takes it out, a missing
    key being no error; a field that is no map is refused."""
    uuid, record = pool.uuid, '{"id": "a, b=c"}'
    add = ("pool-param-add", f"uuid={uuid}", "param-name=other-config")
    ok(pool.xe(*add, f"lock={record}"))
    ok(pool.xe(*add, f"lock={record}"))  # the same value: idempotent
    fails(pool.xe(*add, "lock=another"),
          "You tried to add a key-value pair to a map, but that key is already there.",
          "type: pool", "param_name: other_config", f"uuid: {uuid}", "key: lock")
    ok(pool.xe("pool-param-get", f"uuid={uuid}", "param-name=other-config", "param-key=lock"),
       record + "\n")
    remove = ("pool-param-remove", f"uuid={uuid}", "param-name=other-config", "param-key=lock")
    ok(pool.xe(*remove))
    ok(pool.xe(*remove))
    fails(pool.xe("pool-param-get", f"uuid={uuid}", "param-name=other-config",
                  "param-key=lock"), "Error: Key lock not found in map")
    fails(pool.xe("pool-param-add", f"uuid={uuid}", "param-name=wlb-url", "k=v"),
          "Error: Can only add to parameters of type Set or Map")


def test_wrong_uuid_is_uuid_invalid(pool: Pool) -> None:
    """A declared error: its description line then one `param: value` line per parameter."""
    for command in ("pool-param-get", "pool-param-set"):
        fails(pool.xe(command, "uuid=not-a-pool", "param-name=uuid", "wlb-enabled=true"),
              "The uuid you supplied was invalid.", "type: pool", "uuid: not-a-pool")
    fails(pool.xe("host-param-get", "uuid=nohost", "param-name=uuid"),
          "The uuid you supplied was invalid.", "type: host", "uuid: nohost")


def test_unknown_field_and_command_and_missing_parameter(pool: Pool) -> None:
    """Missing parameter: `Required parameter not found: filename` / `For usage run: 'xe help'`."""
    fails(pool.xe("pool-param-get", f"uuid={pool.uuid}", "param-name=wlb-password"),
          "Error code: Missing parameter", "Error parameters: wlb-password")
    fails(pool.xe("pool-frobnicate"), "Unknown command: pool-frobnicate",
          "For usage run: 'xe help'")
    fails(pool.xe("pool-install-ca-certificate"), "Required parameter not found: filename",
          "For usage run: 'xe help'")
    fails(pool.xe("pool-param-get", f"uuid={pool.uuid}"),
          "Required parameter not found: param-name", "For usage run: 'xe help'")
    fails(pool.xe("pool-initialize-wlb", "wlb_url=x:1", "wlb_username=u"),
          "Required parameter not found: wlb_password", "For usage run: 'xe help'")


def test_connection_options_are_accepted_and_never_echoed(pool: Pool) -> None:
    """xe runs on the coordinator; `-s -u -pw -p` are accepted (and the password hidden)."""
    result = pool.xe("-s", "xs.example", "-u", "root", "-pw", WLB_PASSWORD, "-p", "443",
                     "pool-list", "--minimal")
    ok(result, pool.uuid + "\n")


# --- CA certificates ------------------------------------------------------------------


@pytest.mark.parametrize("command", ["pool-install-ca-certificate", "pool-certificate-install"])
def test_install_distributes_to_every_host(pool: Pool, root_ca: Issued, command: str) -> None:
    """`pool-install-ca-certificate filename=F` and the deprecated alias, same behaviour;
    CA certs in `/etc/stunnel/certs/<name>` (0644), directory 0700; success prints nothing."""
    ok(pool.xe(command, f"filename={pool.file('root.pem', root_ca.cert_pem)}"))
    for index, host in enumerate(pool.hosts()):
        assert pool.certs(index) == {"root.pem": root_ca.cert_pem}
        assert stat.S_IMODE((host / "etc/stunnel/certs/root.pem").stat().st_mode) == 0o644
        assert stat.S_IMODE((host / "etc/stunnel/certs").stat().st_mode) == 0o700
        assert pool.bundle(index).read_bytes() == root_ca.cert_pem + b"\n"
    ok(pool.xe("pool-certificate-list"), "root.pem\n")
    assert pool.state["ca_certificates"] == ["root.pem"]


def test_install_reads_relative_to_cwd_and_names_by_basename(pool: Pool, root_ca: Issued) -> None:
    """`xe` reads F on the client side; the certificate's name is the basename of F."""
    (pool.cwd / "certs").mkdir()
    (pool.cwd / "certs" / "corp-root.pem").write_bytes(root_ca.cert_pem)
    ok(pool.xe("pool-install-ca-certificate", "filename=certs/corp-root.pem"))
    ok(pool.xe("pool-certificate-list"), "corp-root.pem\n")
    fails(pool.xe("pool-install-ca-certificate", "filename=corp-root.pem"),
          "Failed to read certificate")
    fails(pool.xe("pool-install-ca-certificate", "filename=certs"), "Failed to read certificate")


def test_install_check_order(pool: Pool, root_ca: Issued) -> None:
    """Checks, in order: PEM parses and is within its validity; the name is valid; the name
    is not taken. Undeclared codes print `Error code: X` / `Error parameters: a, b`."""
    invalid = ("Error code: CA_CERTIFICATE_INVALID", "Error parameters: ")
    fails(pool.xe("pool-install-ca-certificate", f"filename={pool.file('a.pem', b'junk')}"),
          *invalid)
    fails(pool.xe("pool-install-ca-certificate", f"filename={pool.file('bad name', b'junk')}"),
          *invalid)  # the content is checked before the name
    two = root_ca.cert_pem + cert("other").cert_pem
    fails(pool.xe("pool-install-ca-certificate", f"filename={pool.file('two.pem', two)}"),
          *invalid)  # ocaml-x509 decode_pem wants exactly one certificate
    for name in ("root.crt", ".root.pem", "root cert.pem", "r\u00f6ot.pem"):
        fails(pool.xe("pool-install-ca-certificate",
                      f"filename={pool.file(name, root_ca.cert_pem)}"),
              "The specified certificate name is invalid.", f"name: {name}")
    pool.install("root.pem", root_ca)
    fails(pool.xe("pool-install-ca-certificate", "filename=root.pem"),
          "A certificate already exists with the specified name.", "name: root.pem")
    assert pool.state["ca_certificates"] == ["root.pem"]


def test_install_refuses_certificates_outside_their_validity(pool: Pool) -> None:
    """`CA_CERTIFICATE_EXPIRED [now; not_after]`, `CA_CERTIFICATE_NOT_VALID_YET [now;
    not_before]`, RFC 3339 UTC."""
    expired = cert("old CA", ca=True, not_before=now() - 400 * DAY, not_after=now() - 35 * DAY)
    result = pool.xe("pool-install-ca-certificate",
                     f"filename={pool.file('old.pem', expired.cert_pem)}")
    not_after = expired.cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (result.returncode, result.stdout) == (1, "")
    assert re.fullmatch(f"Error code: CA_CERTIFICATE_EXPIRED\nError parameters: {RFC3339}, "
                        f"{not_after}\n", result.stderr)
    future = cert("new CA", ca=True, not_before=now() + 10 * DAY)
    result = pool.xe("pool-install-ca-certificate",
                     f"filename={pool.file('new.pem', future.cert_pem)}")
    not_before = future.cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert re.fullmatch(f"Error code: CA_CERTIFICATE_NOT_VALID_YET\nError parameters: {RFC3339}, "
                        f"{not_before}\n", result.stderr)
    assert pool.certs(0) == {}


def test_bundle_order_blank_lines_and_deletion(pool: Pool) -> None:
    """Bundle rebuilt by `update-ca-bundle.sh`: concatenates `*.pem` (with `*.new.pem`
    first), a blank line after each; an empty bundle is deleted."""
    certs = {name: cert(name, ca=True) for name in ("b.pem", "a.pem", "z.new.pem")}
    for name, issued in certs.items():
        pool.install(name, issued)
    expected = b"".join(certs[n].cert_pem + b"\n" for n in ("z.new.pem", "a.pem", "b.pem"))
    assert all(pool.bundle(i).read_bytes() == expected for i in range(3))
    assert b"-----END CERTIFICATE-----\n\n-----BEGIN CERTIFICATE-----" in expected
    for name in certs:
        ok(pool.xe("pool-uninstall-ca-certificate", f"name={name}"))
    assert not any(pool.bundle(i).exists() for i in range(3))


def test_certificate_list_minimal(pool: Pool) -> None:
    """`pool-certificate-list`: one name per line, no header; with `--minimal` one
    comma-separated line."""
    ok(pool.xe("pool-certificate-list"))
    ok(pool.xe("pool-certificate-list", "--minimal"), "\n")
    for name in ("b.pem", "a.pem"):
        pool.install(name, cert(name, ca=True))
    ok(pool.xe("pool-certificate-list"), "a.pem\nb.pem\n")
    ok(pool.xe("pool-certificate-list", "--minimal"), "a.pem,b.pem\n")


@pytest.mark.parametrize("command", ["pool-uninstall-ca-certificate",
                                     "pool-certificate-uninstall"])
def test_uninstall_removes_everywhere(pool: Pool, root_ca: Issued, command: str) -> None:
    """`pool-uninstall-ca-certificate name=N` (old: `pool-certificate-uninstall`): prints
    nothing on success; removes the file everywhere and the DB record."""
    pool.install("root.pem", root_ca)
    pool.install("keep.pem", cert("keep", ca=True))
    ok(pool.xe(command, "name=root.pem"))
    assert all(set(pool.certs(i)) == {"keep.pem"} for i in range(3))
    assert pool.state["ca_certificates"] == ["keep.pem"]
    ok(pool.xe("pool-certificate-list"), "keep.pem\n")
    fails(pool.xe(command, "name=root.pem"),
          "The specified certificate does not exist.", "name: root.pem")
    fails(pool.xe(command, "name=root.crt"),
          "The specified certificate name is invalid.", "name: root.crt")


@pytest.mark.parametrize(("xapi", "forced"), [("current", True), ("legacy", False)])
def test_uninstall_force(make_pool: Callable[..., Pool], xapi: str, forced: bool) -> None:
    """`CERTIFICATE_DOES_NOT_EXIST` unless force (`force` since 24.35.0)."""
    pool = make_pool(xapi)
    result = pool.xe("pool-uninstall-ca-certificate", "name=gone.pem", "force=true")
    if forced:
        ok(result)
    else:
        fails(result, "The specified certificate does not exist.", "name: gone.pem")
    fails(pool.xe("pool-certificate-uninstall", "name=gone.pem", "--force"),
          "The specified certificate does not exist.", "name: gone.pem")


def test_uninstall_without_db_record_is_invalid_value(pool: Pool, root_ca: Issued) -> None:
    """Uninstall: … remove file and DB record (no record: `INVALID_VALUE`)."""
    pool.install("root.pem", root_ca)
    state = pool.state
    state["ca_certificates"] = []
    xe_state.save(pool.layout.pool_state, state)
    fails(pool.xe("pool-uninstall-ca-certificate", "name=root.pem"),
          "The value given is invalid", "field: certificate:name", "value: root.pem")
    assert pool.certs(0) == {}


def test_sync_repairs_a_member(pool: Pool, root_ca: Issued) -> None:
    """`pool-certificate-sync`: pushes the coordinator's CA certs and CRLs to every other host
    (erasing the old ones there) and rehashes. Prints nothing."""
    pool.install("root.pem", root_ca)
    ok(pool.xe("pool-crl-install", f"filename={pool.file('root.crl.pem', b'crl data')}"))
    host, name = xe_state.drop_member_certificate(pool.layout)
    assert (host, name) == (pool.hosts()[2].name, "root.pem")
    member = pool.hosts()[2] / "etc/stunnel"
    (member / "certs/stray.pem").write_bytes(b"stray")
    (member / "crls/stray.pem").write_bytes(b"stray")
    (member / "crls/root.crl.pem").unlink()
    assert pool.certs(2) == {"stray.pem": b"stray"}
    ok(pool.xe("pool-certificate-sync"))
    for index in range(3):
        assert pool.certs(index) == {"root.pem": root_ca.cert_pem}
        assert pool.bundle(index).read_bytes() == root_ca.cert_pem + b"\n"
        assert {p.name for p in (pool.hosts()[index] / "etc/stunnel/crls").iterdir()} == {
            "root.crl.pem"}
    assert stat.S_IMODE((member / "certs/root.pem").stat().st_mode) == 0o644


def test_crl_commands(pool: Pool) -> None:
    """`pool-crl-install filename=`, `pool-crl-uninstall name=`, `pool-crl-list`: the same
    shapes for CRLs (`/etc/stunnel/crls/`); `Failed to read CRL`."""
    fails(pool.xe("pool-crl-install", "filename=missing.pem"), "Failed to read CRL")
    fails(pool.xe("pool-crl-install", f"filename={pool.file('ca.crl', b'x')}"),
          "The specified CRL name is invalid.", "name: ca.crl")
    ok(pool.xe("pool-crl-install", f"filename={pool.file('ca.pem', b'x')}"))
    fails(pool.xe("pool-crl-install", "filename=ca.pem"),
          "A CRL already exists with the specified name.", "name: ca.pem")
    ok(pool.xe("pool-crl-list"), "ca.pem\n")
    ok(pool.xe("pool-crl-list", "--minimal"), "ca.pem\n")
    for host in pool.hosts():
        assert (host / "etc/stunnel/crls/ca.pem").read_bytes() == b"x"
        assert not (host / "etc/stunnel/xapi-stunnel-ca-bundle.pem").exists()
    ok(pool.xe("pool-crl-uninstall", "name=ca.pem"))
    fails(pool.xe("pool-crl-uninstall", "name=ca.pem"),
          "The specified CRL does not exist.", "name: ca.pem")
    ok(pool.xe("pool-crl-list"))
    assert pool.certs(0) == {}


NEW_COMMANDS = ("pool-install-ca-certificate", "pool-uninstall-ca-certificate",
                "pool-enable-tls-verification")


@pytest.mark.parametrize("xapi", ["current", "legacy", "ch82"])
def test_help_names_a_command_or_says_it_is_unknown(make_pool: Callable[..., Pool],
                                                    xapi: str) -> None:
    """pool-install-ca-certificate: since 1.290 — absent on the 1.249 line (Citrix Hypervisor
    8.2), where only pool-certificate-install exists. `xe help NAME` (cli_frontend.ml
    rio_help) prints the command's record, or `Unknown command 'NAME'`, exit 0 both ways."""
    pool = make_pool(xapi, hosts=1)
    ok(pool.xe("help", "pool-certificate-install"),
       "command name            : pool-certificate-install\n"
       "        reqd params     : filename\n"
       "        optional params : \n"
       "        description     : Installs a TLS CA certificate, pool-wide.\n\n\n")
    asked = pool.xe("help", *NEW_COMMANDS, "no-such-command")
    assert (asked.returncode, asked.stderr) == (0, "")
    for name in NEW_COMMANDS:
        offered = f"command name            : {name}\n" in asked.stdout
        assert offered is (xapi != "ch82"), asked.stdout
        assert (f"Unknown command '{name}'\n" in asked.stdout) is (xapi == "ch82")
    assert "Unknown command 'no-such-command'\n" in asked.stdout
    listed = pool.xe("help").stdout.splitlines()
    assert "pool-certificate-install" in listed
    assert ("pool-install-ca-certificate" in listed) is (xapi != "ch82")


def test_ch82_has_only_the_old_certificate_commands(make_pool: Callable[..., Pool],
                                                     root_ca: Issued) -> None:
    """The 1.249 line has only `pool-certificate-install` / `pool-certificate-uninstall`;
    installs are not content-checked (before 1.304: any content was accepted); no
    Certificate DB records (older pool-certificate-list read the directory)."""
    pool = make_pool("ch82")
    for name in NEW_COMMANDS:
        fails(pool.xe(name, "filename=x.pem", "name=x.pem"), f"Unknown command: {name}",
              "For usage run: 'xe help'")
    two = root_ca.cert_pem + cert("other").cert_pem
    ok(pool.xe("pool-certificate-install", f"filename={pool.file('junk.pem', b'junk')}"))
    ok(pool.xe("pool-certificate-install", f"filename={pool.file('two.pem', two)}"))
    fails(pool.xe("pool-certificate-install", f"filename={pool.file('bad.crt', b'x')}"),
          "The specified certificate name is invalid.", "name: bad.crt")
    fails(pool.xe("pool-certificate-install", "filename=junk.pem"),
          "A certificate already exists with the specified name.", "name: junk.pem")
    for index in range(3):
        assert pool.certs(index) == {"junk.pem": b"junk", "two.pem": two}
        assert pool.bundle(index).read_bytes() == b"junk\n" + two + b"\n"
    ok(pool.xe("pool-certificate-list"), "junk.pem\ntwo.pem\n")
    ok(pool.xe("pool-certificate-list", "--minimal"), "junk.pem,two.pem\n")
    assert pool.state["ca_certificates"] == []
    ok(pool.xe("pool-certificate-uninstall", "name=junk.pem"))
    fails(pool.xe("pool-certificate-uninstall", "name=junk.pem"),
          "The specified certificate does not exist.", "name: junk.pem")
    ok(pool.xe("pool-certificate-list"), "two.pem\n")
    assert all(pool.certs(i) == {"two.pem": two} for i in range(3))


def test_concurrent_installs_all_land(pool: Pool) -> None:
    """State writes are atomic and serialised: parallel xe calls lose nothing."""
    names = [f"ca{i}.pem" for i in range(8)]
    for name in names:
        pool.file(name, cert(name, ca=True).cert_pem)
    with ThreadPoolExecutor(max_workers=8) as workers:
        results = list(workers.map(
            lambda n: pool.xe("pool-install-ca-certificate", f"filename={n}"), names))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    assert sorted(pool.state["ca_certificates"]) == names  # type: ignore[call-overload]
    assert pool.bundle(1).read_bytes().count(b"BEGIN CERTIFICATE") == 8


def test_enable_tls_verification_turns_on_wlb_verification(pool: Pool) -> None:
    """`pool-enable-tls-verification` also sets wlb-verify-cert=true."""
    ok(pool.xe("pool-enable-tls-verification"))
    assert pool.get("tls-verification-enabled") == "true\n"
    assert pool.get("wlb-verify-cert") == "true\n"


def test_a_missing_pool_says_so(pool: Pool) -> None:
    """Every failure exits 1 (here: the lab pool's state is gone)."""
    pool.layout.pool_state.unlink()
    fails(pool.xe("pool-list"),
          f"Error: no pool state at {pool.layout.pool_state.resolve()} (is the lab up?)")


def test_state_and_wrapper_files(pool: Pool) -> None:
    """The wrapper is executable and starts without site; the state is private."""
    assert stat.S_IMODE(pool.layout.xe.stat().st_mode) == 0o755
    first = pool.layout.xe.read_text().splitlines()[0]
    assert first.startswith("#!/")
    assert first.endswith(" -S")
    assert "shims" not in first
    assert stat.S_IMODE(pool.layout.pool_state.stat().st_mode) == 0o600


# --- WLB: connection, TLS verification, credentials -----------------------------------


def test_initialize_records_the_url_and_enables(pool: Pool, serve: Callable[[Issued], int],
                                                 root_ca: Issued) -> None:
    """`pool-initialize-wlb … (underscores!)` connects to WLB and records the URL
    (verification off: the appliance's own self-signed certificate is not checked)."""
    port = serve(wlb_cert(WLB_FQDN, sans=[WLB_FQDN], ca=True))
    ok(pool.initialize(f"{WLB_FQDN}:{port}"))
    assert pool.get("wlb-url") == f"{WLB_FQDN}:{port}\n"
    assert pool.get("wlb-username") == f"{WLB_USER}\n"
    assert pool.get("wlb-enabled") == "true\n"
    assert pool.state["wlb_password"] == WLB_PASSWORD


def test_wlb_url_needs_a_port(pool: Pool) -> None:
    """wlb-url is `host:port` (IPv6 `[addr]:port`) with no default port; otherwise
    `WLB_URL_INVALID [url]`."""
    for url in (WLB_FQDN, f"{WLB_FQDN}:", "[::1]", "::1:8012", f"{WLB_FQDN}:http",
                f"{WLB_FQDN}:0", f"{WLB_FQDN}:70000", f"https://{WLB_FQDN}:8012"):
        fails(pool.initialize(url),
              "The WLB URL is invalid. Ensure it is in the format: <ipaddress>:<port>. "
              "The configured/given URL is returned.", f"url: {url}")
    assert pool.get("wlb-url") == "\n"


def test_unknown_host(pool: Pool) -> None:
    """unresolvable name `WLB_UNKNOWN_HOST`; the lab never contacts anything but loopback."""
    for url in ("nowhere.lab.test:8012", "far.lab.test:8012", "192.0.2.7:8012",
                "[2001:db8::1]:8012"):
        fails(pool.initialize(url), "The configured WLB server name failed to resolve in DNS.")


def test_connection_refused(pool: Pool) -> None:
    """refused connection `WLB_CONNECTION_REFUSED`."""
    closed = free_port()
    fails(pool.initialize(f"{WLB_FQDN}:{closed}"), "WLB refused a connection to the server.")
    fails(pool.initialize(f"127.0.0.1:{closed}"), "WLB refused a connection to the server.")


def test_connection_refused_over_ipv6(pool: Pool) -> None:
    """IPv6 `[addr]:port` is parsed and dialled."""
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
            closed = probe.getsockname()[1]
    except OSError:
        pytest.skip("no IPv6 loopback here")
    fails(pool.initialize(f"[::1]:{closed}"), "WLB refused a connection to the server.")


def test_bad_credentials(pool: Pool, serve: Callable[[Issued], int]) -> None:
    """bad credentials `WLB_AUTHENTICATION_FAILED`."""
    port = serve(wlb_cert(WLB_FQDN, sans=[WLB_FQDN], ca=True))
    fails(pool.initialize(f"{WLB_FQDN}:{port}", password="wrong"),
          "WLB rejected our configured authentication details.")
    fails(pool.initialize(f"{WLB_FQDN}:{port}", user="admin"),
          "WLB rejected our configured authentication details.")
    assert pool.get("wlb-url") == "\n"


VERIFY_ERROR = (
    "The remote system's SSL certificate failed to verify against our certificate library.")


def verify_fails(result: subprocess.CompletedProcess[str], reason: str) -> None:
    """`SSL_VERIFY_ERROR [reason]`, the reason being OpenSSL's (or stunnel's) text."""
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith(VERIFY_ERROR + "\nreason: "), result.stderr
    assert reason in result.stderr, result.stderr


@pytest.mark.parametrize("xapi", ["current", "legacy", "ch82"])
def test_self_signed_leaf_in_bundle_verifies(make_pool: Callable[..., Pool],
                                             serve: Callable[[Issued], int], xapi: str) -> None:
    """Path A: install the appliance's self-signed server.pem, set wlb-verify-cert=true;
    a self-signed certificate in the CAfile is trusted as an anchor whatever its CA bit."""
    pool = make_pool(xapi)
    appliance = wlb_cert(WLB_FQDN, sans=[WLB_FQDN], ca=True)  # what `openssl req -x509` makes
    port = serve(appliance)
    pool.set(wlb_verify_cert="true")
    verify_fails(pool.initialize(f"{WLB_FQDN}:{port}"), "self-signed certificate")
    pool.install("server.pem", appliance)
    ok(pool.initialize(f"{WLB_FQDN}:{port}"))
    ok(pool.xe(pool.uninstall_command, "name=server.pem"))
    verify_fails(pool.initialize(f"{WLB_FQDN}:{port}"), "self-signed certificate")


@pytest.mark.parametrize("xapi", ["current", "legacy", "ch82"])
def test_root_only_trust(make_pool: Callable[..., Pool], serve: Callable[[Issued], int],
                         root_ca: Issued, xapi: str) -> None:
    """(xapi >= 24.40) `verifyChain=yes` — a root CA in the bundle is enough. Older xapi used
    `verifyPeer=yes`: the WLB leaf itself had to be in the bundle; trusting only the root
    failed."""
    pool = make_pool(xapi)
    served = leaf(root_ca)
    port = serve(served)
    pool.install("root.pem", root_ca)
    pool.set(wlb_verify_cert="true")
    result = pool.initialize(f"{WLB_FQDN}:{port}")
    if xapi == "current":
        ok(result)
    else:
        verify_fails(result, "Certificate not found in local repository")
        pool.install("wlb-leaf.pem", served)
        ok(pool.initialize(f"{WLB_FQDN}:{port}"))


def test_legacy_leaf_alone_is_an_anchor(make_pool: Callable[..., Pool],
                                        serve: Callable[[Issued], int], root_ca: Issued) -> None:
    """verifyPeer: the peer certificate stored in the CAfile suffices, even without its CA."""
    pool = make_pool("legacy")
    served = leaf(root_ca)
    port = serve(served)
    pool.install("wlb-leaf.pem", served)
    pool.set(wlb_verify_cert="true")
    ok(pool.initialize(f"{WLB_FQDN}:{port}"))


@pytest.mark.parametrize("xapi", ["current", "legacy"])
def test_name_mismatch_is_refused(make_pool: Callable[..., Pool], serve: Callable[[Issued], int],
                                  root_ca: Issued, xapi: str) -> None:
    """`checkHost=<host part of wlb-url>`: a CN/SAN that differs from the name breaks it."""
    pool = make_pool(xapi)
    served = leaf(root_ca, "other.lab.test")
    port = serve(served)
    pool.install("root.pem", root_ca)
    pool.install("wlb-leaf.pem", served)
    pool.set(wlb_verify_cert="true")
    verify_fails(pool.initialize(f"{WLB_FQDN}:{port}"), "Subject checks failed")
    pool.set(wlb_verify_cert="false")
    ok(pool.initialize(f"{WLB_FQDN}:{port}"))  # the troubleshooting step of the seed


def test_cn_only_leaf_matches_by_common_name(pool: Pool, serve: Callable[[Issued], int],
                                             root_ca: Issued) -> None:
    """`X509_check_host` with its CN fallback when the leaf has no DNS SAN."""
    port = serve(wlb_cert(WLB_FQDN, issuer=root_ca, server_auth=True))  # no subjectAltName
    pool.install("root.pem", root_ca)
    pool.set(wlb_verify_cert="true")
    ok(pool.initialize(f"{WLB_FQDN}:{port}"))


def test_expired_leaf_is_refused(pool: Pool, serve: Callable[[Issued], int],
                                 root_ca: Issued) -> None:
    """certificate failure → `SSL_VERIFY_ERROR [reason]` (`certificate has expired`)."""
    port = serve(leaf(root_ca, not_before=now() - 400 * DAY, not_after=now() - 35 * DAY))
    pool.install("root.pem", root_ca)
    pool.set(wlb_verify_cert="true")
    verify_fails(pool.initialize(f"{WLB_FQDN}:{port}"), "certificate has expired")


@pytest.mark.parametrize("xapi", ["current", "legacy"])
def test_by_ip_checkhost_never_reads_ip_sans(make_pool: Callable[..., Pool],
                                             serve: Callable[[Issued], int], root_ca: Issued,
                                             xapi: str) -> None:
    """The pool must reach WLB by host name, not IP: checkHost is X509_check_host(), which
    compares even an IP literal with the DNS SANs (the CN without them), never an IP SAN
    (measured with stunnel 5.68: `CERT: Subject checks failed`)."""
    pool = make_pool(xapi)
    by_name = leaf(root_ca)
    with_ip = wlb_cert(WLB_FQDN, issuer=root_ca, sans=[WLB_FQDN, "127.0.0.1"], server_auth=True)
    cn_ip = wlb_cert("127.0.0.1", issuer=root_ca, server_auth=True)  # no subjectAltName
    ports = [serve(c) for c in (by_name, with_ip, cn_ip)]
    pool.install("root.pem", root_ca)
    for index, served in enumerate((by_name, with_ip, cn_ip)):
        pool.install(f"wlb-{index}.pem", served)  # legacy: the leaf itself must be there
    pool.set(wlb_verify_cert="true")
    verify_fails(pool.initialize(f"127.0.0.1:{ports[0]}"), "Subject checks failed")
    verify_fails(pool.initialize(f"127.0.0.1:{ports[1]}"), "Subject checks failed")
    ok(pool.initialize(f"127.0.0.1:{ports[2]}"))


def test_empty_bundle_fails_verification(pool: Pool, serve: Callable[[Issued], int],
                                         root_ca: Issued) -> None:
    """`CAfile=/etc/stunnel/xapi-stunnel-ca-bundle.pem`: deleted when empty, trusting nothing."""
    port = serve(leaf(root_ca))
    pool.set(wlb_verify_cert="true")
    assert not pool.bundle(0).exists()
    verify_fails(pool.initialize(f"{WLB_FQDN}:{port}"), "unable to get local issuer certificate")


def test_retrieve_configuration(pool: Pool, serve: Callable[[Issued], int],
                                root_ca: Issued) -> None:
    """`pool-retrieve-wlb-configuration` calls WLB and fails if it cannot connect."""
    fails(pool.xe("pool-retrieve-wlb-configuration"), "No WLB connection is configured.")
    served = leaf(root_ca)
    port = serve(served)
    ok(pool.initialize(f"{WLB_FQDN}:{port}"))
    result = pool.xe("pool-retrieve-wlb-configuration")
    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.split("\n")
    assert re.fullmatch(r"\w+ +: \S+", lines[0])
    assert re.fullmatch(r" +\w+: \S+", lines[1])
    assert result.stdout.endswith("\n\n\n")
    pool.set(wlb_verify_cert="true")
    verify_fails(pool.xe("pool-retrieve-wlb-configuration"), "unable to get local issuer")
    pool.install("root.pem", root_ca)
    assert pool.xe("pool-retrieve-wlb-configuration").returncode == 0
    state = pool.state
    state["wlb_password"] = "changed-on-wlb"
    xe_state.save(pool.layout.pool_state, state)
    fails(pool.xe("pool-retrieve-wlb-configuration"),
          "WLB rejected our configured authentication details.")


def test_retrieve_when_wlb_is_down(pool: Pool, serve: Callable[[Issued], int]) -> None:
    """`pool-retrieve-wlb-configuration` … fails if it cannot connect."""
    port = serve(wlb_cert(WLB_FQDN, sans=[WLB_FQDN]))
    ok(pool.initialize(f"{WLB_FQDN}:{port}"))
    pid_file = next(pool.layout.root.parent.glob("wlb*/stunnel.pid"))
    stop_wlb(pid_file)
    wait_for(lambda: not port_open(port), 10, "stunnel to stop")
    fails(pool.xe("pool-retrieve-wlb-configuration"), "WLB refused a connection to the server.")


def test_deconfigure_clears_even_when_unreachable(pool: Pool,
                                                  serve: Callable[[Issued], int]) -> None:
    """`pool-deconfigure-wlb` clears WLB settings even if WLB is unreachable."""
    fails(pool.xe("pool-deconfigure-wlb"), "No WLB connection is configured.")
    port = serve(wlb_cert(WLB_FQDN, sans=[WLB_FQDN]))
    ok(pool.initialize(f"{WLB_FQDN}:{port}"))
    pool.set(wlb_verify_cert="true")
    stop_wlb(next(pool.layout.root.parent.glob("wlb*/stunnel.pid")))
    ok(pool.xe("pool-deconfigure-wlb"))
    assert (pool.get("wlb-url"), pool.get("wlb-username"), pool.get("wlb-enabled")) == (
        "\n", "\n", "false\n")
    assert pool.get("wlb-verify-cert") == "true\n"
    assert pool.state["wlb_password"] == ""
