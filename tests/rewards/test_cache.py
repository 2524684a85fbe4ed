"""ScoreCache: round trip, hits on a re-run, resume after an interruption."""

from __future__ import annotations

import numpy as np
import pytest

from preforch.errors import PreforchError
from preforch.rewards.cache import ScoreCache, pair_key
from preforch.rewards.callable import CallableScorer
from preforch.rewards.multi import MultiScorer

PROMPTS = [f"p{i}" for i in range(10)]
RESPONSES = [f"response number {i}" for i in range(10)]


class Counting:
    """A scorer that records every response it scores and can fail on a given call."""

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.objectives = ["len", "neg"]
        self.calls = 0
        self.seen: list[str] = []
        self.fail_on_call = fail_on_call

    def identity(self) -> str:
        return "counting:v1"

    def score(self, prompts, responses):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise RuntimeError("interrupted")
        self.seen += list(responses)
        return np.array([[len(r), -len(r)] for r in responses], dtype=np.float64)


def test_round_trip_and_keys(tmp_path):
    keys = [pair_key("a", "bc"), pair_key("ab", "c"), pair_key("a", "bc")]
    assert keys[0] != keys[1] and keys[0] == keys[2]  # the split between prompt and response counts
    with ScoreCache(tmp_path / "s.sqlite") as cache:
        cache.put_many("id", keys[:2], np.array([[1.0, 2.0], [3.0, 4.0]]))
        found, values = cache.get_many("id", keys + [pair_key("x", "y")], 2)
        assert found.tolist() == [True, True, True, False]
        np.testing.assert_array_equal(values[:3], [[1, 2], [3, 4], [1, 2]])
        assert np.isnan(values[3]).all()
        assert cache.get_many("other-id", keys, 2)[0].sum() == 0  # keyed by scorer identity too
        assert (cache.hits, cache.misses) == (3, 4)


def test_rerun_scores_only_what_is_new(tmp_path):
    path = tmp_path / "s.sqlite"
    first = Counting()
    with ScoreCache(path) as cache:
        out1 = MultiScorer([first], batch_size=4, cache=cache).score(PROMPTS[:6], RESPONSES[:6])
    assert len(first.seen) == 6
    again = Counting()
    with ScoreCache(path) as cache:
        multi = MultiScorer([again], batch_size=4, cache=cache)
        out2 = multi.score(PROMPTS, RESPONSES)
    assert sorted(again.seen) == sorted(RESPONSES[6:]) and multi.hits == 6 and multi.scored == 4
    np.testing.assert_array_equal(out2[:6], out1)


def test_interrupted_run_resumes(tmp_path):
    path = tmp_path / "s.sqlite"
    broken = Counting(fail_on_call=3)
    with ScoreCache(path) as cache, pytest.raises(RuntimeError, match="interrupted"):
        MultiScorer([broken], batch_size=3, cache=cache).score(PROMPTS, RESPONSES)
    assert len(broken.seen) == 6  # two chunks of 3 done and committed before the failure
    resumed = Counting()
    with ScoreCache(path) as cache:
        out = MultiScorer([resumed], batch_size=3, cache=cache).score(PROMPTS, RESPONSES)
    assert resumed.calls == 2 and len(resumed.seen) == 4
    assert set(resumed.seen).isdisjoint(broken.seen)
    np.testing.assert_array_equal(out[:, 0], [len(r) for r in RESPONSES])


def test_identity_change_rescores(tmp_path):
    with ScoreCache(tmp_path / "s.sqlite") as cache:
        v1 = CallableScorer(lambda p, r: [1.0] * len(r), "x", identity="v1")
        v2 = CallableScorer(lambda p, r: [2.0] * len(r), "x", identity="v2")
        assert MultiScorer([v1], cache=cache).score(["p"], ["r"])[0, 0] == 1.0
        assert MultiScorer([v2], cache=cache).score(["p"], ["r"])[0, 0] == 2.0
        assert MultiScorer([v1], cache=cache).score(["p"], ["r"])[0, 0] == 1.0


def test_not_a_cache_file(tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(PreforchError, match="not a usable score cache"):
        ScoreCache(bad)


def test_default_location_follows_the_cache_root(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFORCH_CACHE", str(tmp_path / "root"))
    with ScoreCache() as cache:
        cache.put_many("id", [pair_key("p", "r")], np.array([[1.5]]))
    assert (tmp_path / "root" / "scores.sqlite").is_file()
