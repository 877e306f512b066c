"""``--shard K/N``: every target in exactly one shard, by its name alone, the same on
every machine and release (CI jobs and their report categories depend on it)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wlbplan.model.shard import MAX_SHARDS, Shard, shard_of


@pytest.mark.parametrize(("text", "k", "n"), [("1/1", 1, 1), ("2/8", 2, 8), ("08/10", 8, 10),
                                              ("10000/10000", 10_000, 10_000)])
def test_k_of_n_is_read(text: str, k: int, n: int) -> None:
    assert Shard.parse(text) == Shard(k, n)
    assert str(Shard.parse(text)) == f"{k}/{n}"


@pytest.mark.parametrize(("text", "says"), [
    ("0/3", "K must be between 1 and N (3)"),
    ("4/3", "K must be between 1 and N (3)"),
    ("1/0", "N must be between 1 and 10000"),
    ("1/10001", "N must be between 1 and 10000"),
    ("-1/3", "expected K/N"),
    ("1/3/4", "expected K/N"),
    (" 1/3", "expected K/N"),
    ("1", "expected K/N"),
    ("a/b", "expected K/N"),
    ("１/３", "expected K/N"),  # full-width digits: int() would take them
    ("", "expected K/N"),
])
def test_anything_else_is_refused_with_the_reason(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says.replace("(", r"\(").replace(")", r"\)")):
        Shard.parse(text)


@given(st.sets(st.text(min_size=1, max_size=40), min_size=1, max_size=60),
       st.integers(1, 12))
def test_every_target_is_in_exactly_one_shard(names: set[str], count: int) -> None:
    shards = [Shard(k, count) for k in range(1, count + 1)]
    for name in names:
        holders = [s for s in shards if s.holds(name)]
        assert holders == [Shard(shard_of(name, count), count)]


def test_the_split_is_pinned() -> None:
    """A new hash would move pools between CI jobs (and their SARIF categories): only on
    purpose, with a CHANGELOG line."""
    assert [shard_of(f"pool{i}", 4) for i in range(1, 9)] == [2, 4, 1, 1, 4, 3, 1, 4]
    assert [shard_of(n, 3) for n in ("alpha", "beta", "delta", "é")] == [3, 1, 2, 1]
    assert shard_of("pool1", MAX_SHARDS) == 3942


def test_shards_are_even_on_average() -> None:
    counts = [0] * 10
    for i in range(1, 1001):
        counts[shard_of(f"pool{i}", 10) - 1] += 1
    assert min(counts) >= 70, counts
    assert max(counts) <= 130, counts
