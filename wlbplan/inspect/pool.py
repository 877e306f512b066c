"""Pool facts from the coordinator: WLB settings, xapi version, hosts, installed CA certs.

The certificates' content is read from the coordinator's trust store so that trust can
be matched by fingerprint whatever name it was installed under.
"""

from __future__ import annotations

from wlbplan import certs
from wlbplan.errors import RemoteCommandError, VerifyError
from wlbplan.inspect.script import RawFact, build, fact
from wlbplan.model.command import Raw, sh
from wlbplan.model.observed import PoolFacts, TrustedCert
from wlbplan.model.spec import Target

PARAMS = ("wlb-url", "wlb-username", "wlb-enabled", "wlb-verify-cert", "master")
# xapi's rule for CA certificate names (certificates.ml): anything else is not read.
_UNSAFE_NAME = "*[!A-Za-z0-9._-]*"


def script(target: Target) -> str:
    xe = target.pool.xe
    certs_dir = f"{str(target.pool.trust_dir).rstrip('/')}/certs/"
    uuid = Raw('uuid="$uuid"')
    lines = [fact("uuid", xe, "pool-list", "--minimal"), 'uuid=$_o']
    lines += [fact(f"param.{p}", xe, "pool-param-get", uuid, f"param-name={p}") for p in PARAMS]
    lines += [
        'master=$_o',
        fact("xapi", xe, "host-param-get", Raw('uuid="$master"'), "param-name=software-version",
             "param-key=xapi"),
        fact("hosts", xe, "host-list", "--minimal"),
        fact("certs", xe, "pool-certificate-list", "--minimal"),
        # Globbing off: the names are split on commas only, never expanded.
        "set -f",
        "for _c in $(printf '%s' \"$_o\" | tr ',' ' '); do",
        f"  case $_c in {_UNSAFE_NAME}) continue;; esac",
        "  " + fact(Raw('"ca:$_c"'), "cat", "--", Raw(sh(certs_dir) + '"$_c"')),
        "done",
    ]
    return build(lines)


def _value(raw: dict[str, RawFact], name: str, target: Target) -> str:
    got = raw.get(name)
    if got is None:
        raise RemoteCommandError(
            f"{target.name}: the coordinator did not report {name!r}; is {target.pool.xe!r} "
            "the xe CLI of a pool coordinator?"
        )
    if not got.ok:
        raise RemoteCommandError(f"{target.name}: xe failed reading {name}: {got.problem()}")
    return got.output.strip()


def _bool(text: str) -> bool:
    return text.strip().lower() == "true"


def _names(text: str) -> tuple[str, ...]:
    return tuple(sorted(n for n in (p.strip() for p in text.replace("\n", ",").split(",")) if n))


def parse(raw: dict[str, RawFact], target: Target) -> PoolFacts:
    def value(name: str) -> str:
        return _value(raw, name, target)

    names = _names(value("certs"))
    return PoolFacts(
        uuid=value("uuid"),
        coordinator=value("param.master"),
        hosts=_names(value("hosts")),
        xapi_version=value("xapi"),
        wlb_url=value("param.wlb-url"),
        wlb_username=value("param.wlb-username"),
        wlb_enabled=_bool(value("param.wlb-enabled")),
        wlb_verify_cert=_bool(value("param.wlb-verify-cert")),
        trusted=tuple(_trusted(name, raw.get(f"ca:{name}")) for name in names),
    )


def _trusted(name: str, raw: RawFact | None) -> TrustedCert:
    if raw is None or not raw.ok:
        return TrustedCert(name=name)
    try:
        found = certs.parse_pem_bundle(raw.output.encode())
    except VerifyError:
        return TrustedCert(name=name)
    pem = certs.to_pem(found[:1]).decode() if found else None
    return TrustedCert(name=name, pem=pem)
