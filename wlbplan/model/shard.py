"""``--shard K/N``: one of N deterministic parts of a fleet, for N CI jobs.

A target belongs to shard ``sha256(name) mod N + 1``. By its name's hash and not by its
place in the spec: a target's shard depends on its name and N only, so adding, removing
or reordering other targets moves no one (a CI job keeps its pools, its SARIF category
and its history), and ``--target`` then ``--shard`` picks the same pools whichever names
are given. The price: shards are even only on average (300 targets in 10 shards: 30 ±5).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

MAX_SHARDS = 10_000
_FORM = re.compile(r"([0-9]{1,5})/([0-9]{1,5})", re.ASCII)


@dataclass(frozen=True)
class Shard:
    index: int  # K, from 1
    count: int  # N

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_SHARDS:
            raise ValueError(f"{self}: N must be between 1 and {MAX_SHARDS}")
        if not 1 <= self.index <= self.count:
            raise ValueError(f"{self}: K must be between 1 and N ({self.count})")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``K/N`` with 1 <= K <= N; ValueError saying what is wrong otherwise."""
        form = _FORM.fullmatch(text)
        if form is None:
            raise ValueError(f"{text!r}: expected K/N, e.g. 2/8 (shard 2 of 8)")
        return cls(int(form.group(1)), int(form.group(2)))

    def holds(self, name: str) -> bool:
        return shard_of(name, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(name: str, count: int) -> int:
    """The shard (1..count) that holds the target called ``name``."""
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1
