"""What the appliance's stunnel.conf says it serves on WLB's port: its ``cert`` and ``key``
files. Pure: the text comes from the appliance (untrusted), read by the run layer.

stunnel's syntax: ``option = value`` lines, ``;`` or ``#`` comments, ``[service]``
sections that inherit the global options; ``key`` defaults to the ``cert`` file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SECTION = re.compile(r"^\[(.+)\]$")
_OPTION = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


@dataclass(frozen=True)
class Served:
    """The files the service on ``port`` loads, or why that could not be told."""

    cert: str | None = None
    key: str | None = None
    problem: str | None = None


def served_files(text: str, port: int) -> Served:
    """The cert and key of the service that accepts ``port`` (global options inherited)."""
    globals_: dict[str, str] = {}
    sections: list[dict[str, str]] = []
    current = globals_
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in ";#":
            continue
        if _SECTION.match(line):
            current = {}
            sections.append(current)
            continue
        option = _OPTION.match(line)
        if option:
            current.setdefault(option.group(1).lower(), option.group(2))
    for section in sections:
        if _accepts(section.get("accept", ""), port):
            cert = section.get("cert", globals_.get("cert"))
            key = section.get("key", globals_.get("key")) or cert
            if cert is None:
                return Served(problem=f"the service on port {port} names no cert")
            return Served(cert, key)
    return Served(problem=f"no service in it accepts port {port}")


def _accepts(value: str, port: int) -> bool:
    """``accept = 8012``, ``accept = 0.0.0.0:8012``, ``accept = :::8012``."""
    return value.rsplit(":", 1)[-1].strip() == str(port)
