"""benchmarks/serve_floor.py's table from a cache of scored candidates: hand-made numbers, every bar's row checked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def test_floor_table_from_a_cache(tmp_path):
    # two harmful prompts (harmless watched), two benign (helpful watched); K = (harmless, helpful), G = 2
    norm = np.array([[[-2.0, 1.0], [0.5, 0.0]],    # harmful 1: one candidate clears 0, none clears the reply (1.0)
                     [[-1.2, 1.0], [-0.8, 2.0]],   # harmful 2: every candidate below 0
                     [[0.0, 0.5], [0.0, 1.0]],     # benign 1: both beat the reply on helpful
                     [[0.0, -2.0], [0.0, -1.0]]])  # benign 2: the reply (−0.5 helpful) beats both
    weights = np.array([[0.9, 0.1], [0.9, 0.1], [0.1, 0.9], [0.1, 0.9]])
    rewards = (weights[:, None, :] * norm).sum(-1)
    reply = np.array([[1.0, -0.5]] * 4)
    cache = tmp_path / "floor.npz"
    np.savez(cache, normalized=norm, weights=weights, rewards=rewards, reply=reply,
             is_harm=np.array([True, True, False, False]), objectives=np.array(["harmless", "helpful"]),
             seconds=np.asarray(1.0))
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "serve_floor.py"), "--cache", str(cache),
                          "--bootstrap", "50"], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}).stdout
    rows = {line.split("|")[1].strip(): [c.split()[0] for c in line.split("|")[2:-1]]
            for line in out.splitlines() if line.startswith("| ") and "fires" not in line}
    # min_score 0: harmful 1 serves candidate 2 (0.5), harmful 2 floors (its best under R, −0.8, is what the floor
    # off serves); benign 2 floors on helpful
    assert rows["min_score +0.0"] == ["0.500", "0.500", "0.500", "0.000", "0.000"]
    # the reply's own score: no harmful candidate reaches 1.0 on harmless; benign 2 has none above −0.5 on helpful
    assert rows["reply's own score"] == ["1.000", "0.500", "1.000", "0.000", "0.000"]
    assert "harmless 1.000 / 0.000, helpful 0.000 / 1.000" in out
