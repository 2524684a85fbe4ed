"""Micro-batching (issue 13): concurrent requests gathered into one model pass, each answered with its own
slice; no timing is asserted (lanes are held busy so requests are known to wait together)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from preforch.serve.batching import Lane, ServerBusy


def wait_until(predicate, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


class Held:
    """Keeps a lane's worker busy until released, so the jobs submitted meanwhile wait together."""

    def __init__(self, lane: Lane) -> None:
        self.entered, self.release = threading.Event(), threading.Event()
        self.future = lane.submit(object(), self._hold, [None])
        assert self.entered.wait(10)

    def _hold(self, items):
        self.entered.set()
        self.release.wait(30)
        return items


def test_waiting_jobs_with_one_key_share_a_pass():
    lane = Lane("t", window_s=0.0, max_items=100, max_queue=100)
    calls = []

    def double(items):
        calls.append(list(items))
        return [2 * x for x in items]

    held = Held(lane)
    futures = [lane.submit("double", double, [i, 10 + i]) for i in range(5)]
    other = lane.submit("other", lambda items: [-x for x in items], [7])
    held.release.set()
    assert [f.result(10) for f in futures] == [[2 * i, 20 + 2 * i] for i in range(5)]
    assert other.result(10) == [-7]
    assert calls == [[0, 10, 1, 11, 2, 12, 3, 13, 4, 14]]  # one pass, in arrival order
    lane.close()


def test_max_items_and_no_batching():
    for batching, expected in ((True, [4, 4, 2]), (False, [2, 2, 2, 2, 2])):
        lane = Lane("t", window_s=0.0, max_items=4, max_queue=100, batching=batching)
        sizes = []
        held = Held(lane)
        futures = [lane.submit("k", lambda items, sizes=sizes: sizes.append(len(items)) or items, [i, i])
                   for i in range(5)]
        held.release.set()
        assert [f.result(10) for f in futures] == [[i, i] for i in range(5)]
        assert sizes == expected
        lane.close()


def test_a_failing_job_fails_alone():
    lane = Lane("t", window_s=0.0, max_items=100, max_queue=100)

    def check(items):
        if "bad" in items:
            raise ValueError("bad item")
        return items

    held = Held(lane)
    good, bad, good2 = (lane.submit("k", check, [x]) for x in ("a", "bad", "b"))
    held.release.set()
    assert good.result(10) == ["a"] and good2.result(10) == ["b"]
    with pytest.raises(ValueError):
        bad.result(10)
    lane.close()


def test_cancelled_jobs_are_skipped_and_full_queues_refuse():
    lane = Lane("t", window_s=0.0, max_items=100, max_queue=2)
    seen = []
    held = Held(lane)
    first = lane.submit("k", lambda items: seen.extend(items) or items, ["x"])
    second = lane.submit("k", lambda items: seen.extend(items) or items, ["y"])
    with pytest.raises(ServerBusy):
        lane.submit("k", lambda items: items, ["z"])
    assert first.cancel()  # the client went away before its pass
    held.release.set()
    assert second.result(10) == ["y"] and seen == ["y"]
    lane.close()


def test_concurrent_weight_requests_are_one_encoder_pass(live_server, engine):
    prompts = [f"prompt number {i} about {'cats' if i % 2 else 'tax law'}" for i in range(12)]
    before = engine.encoder_lane.stats.passes
    held = Held(engine.encoder_lane)
    with ThreadPoolExecutor(max_workers=12) as pool:
        futures = [pool.submit(httpx.post, f"{live_server}/v1/weights", json={"prompts": [p]}, timeout=60)
                   for p in prompts]
        wait_until(lambda: engine.encoder_lane.waiting == 12)
        held.release.set()
        rows = [f.result().json()["data"][0]["inferred"] for f in futures]
    got = np.array([[r[k] for k in engine.objectives] for r in rows])  # [N, K]
    np.testing.assert_allclose(got, engine.adapter.predict_weights(prompts), atol=1e-6)  # each its own row
    assert engine.encoder_lane.stats.passes - before == 2  # the held job, then all twelve together


def test_unseeded_chats_share_a_generation_pass_and_seeded_ones_do_not(live_server, engine):
    lane = engine.policy_lane
    before = lane.stats.passes
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "strategy": "sample"}
    held = Held(lane)
    with ThreadPoolExecutor(max_workers=5) as pool:
        unseeded = [pool.submit(httpx.post, f"{live_server}/v1/chat/completions", json=body, timeout=60)
                    for _ in range(3)]
        wait_until(lambda: lane.waiting == 3)
        seeded = [pool.submit(httpx.post, f"{live_server}/v1/chat/completions", json={**body, "seed": i},
                              timeout=60) for i in range(2)]
        wait_until(lambda: lane.waiting == 5)
        held.release.set()
        assert all(f.result().status_code == 200 for f in unseeded + seeded)
    assert lane.stats.passes - before == 1 + 1 + 2  # held, three unseeded together, each seeded alone
