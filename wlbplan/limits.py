"""Input size caps, and the one bounded read that enforces them.

Everything wlbplan reads that someone else may have written (a spec, a saved plan, a
journal, a certificate bundle, a host's output) is read through ``read_capped``: at most
``cap + 1`` bytes are ever held, so a huge or endless input (``/dev/zero``) ends at once
with a message that names the cap, never with a machine out of memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from wlbplan.errors import WlbplanError

KiB = 1024
MiB = 1024 * KiB
_CHUNK = 64 * KiB


@dataclass(frozen=True)
class Cap:
    """What is read (for the message) and how many bytes it may hold."""

    what: str
    size: int
    advice: str = "is it the right file?"

    def __str__(self) -> str:
        return _human(self.size)


# A spec of a fleet of a thousand targets is well under 1 MiB.
SPEC = Cap("a spec file", 4 * MiB)
# A plan carries every target's public certificates and observed facts, twice at most.
PLAN = Cap("a plan file", 32 * MiB)
# What `wlbplan inspect --format json` writes: every target's facts, like a plan's.
INSPECTION = Cap("an inspection report", 32 * MiB)
# A journal holds one target's plan and a few lines per step.
JOURNAL = Cap("a journal", 8 * MiB)
# A full public CA store (Mozilla's) is about 220 KiB.
PEM = Cap("a certificate file", 2 * MiB)
# One inspection script's output: every trusted CA certificate, base64-encoded, and more.
OUTPUT = Cap("the output of one remote command", 16 * MiB,
             "the host printed far more than that command should; run it there by hand to "
             "see what it prints")


class TooLarge(WlbplanError):
    """An input is larger than its cap; the message says which cap."""


def too_large(cap: Cap, source: str) -> TooLarge:
    return TooLarge(f"{source} is larger than {cap}, the most wlbplan reads from {cap.what}; "
                    f"it was not read ({cap.advice})")


def read_capped(read: Callable[[int], bytes], cap: Cap, source: str) -> bytes:
    """Everything ``read`` gives until EOF; TooLarge as soon as it passes ``cap``."""
    chunks: list[bytes] = []
    held = 0
    while True:
        chunk = read(min(_CHUNK, cap.size + 1 - held))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        held += len(chunk)
        if held > cap.size:
            raise too_large(cap, source)


def read_file(path: str | os.PathLike[str], cap: Cap, *, follow: bool = True) -> bytes:
    """A local file's bytes, at most ``cap``; OSError as ``open`` raises it.

    ``follow=False`` refuses a symlink (ELOOP), for files in wlbplan's own state folders.
    """
    flags = os.O_RDONLY | (0 if follow else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb", buffering=0) as handle:
        return read_stream(handle, cap, os.fspath(path))


def read_stream(handle: BinaryIO, cap: Cap, source: str) -> bytes:
    return read_capped(handle.read, cap, str(source))


def _human(size: int) -> str:
    for unit, factor in (("MiB", MiB), ("KiB", KiB)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"
