"""Two processes (torchrun, gloo on CPU) score their shards; rank 0's merged output equals one process's.

The rules-only run is in the default suite; the run with a tiny HF reward model added takes > 20 s on a
busy 2-core machine (two more transformers imports), so it is marked slow.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import yaml
from tiny_rm import make_bert_classifier

from preforch.data.load import read_table, write_table
from preforch.recipes.score import ScoreConfig, score_dataset


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


RULES = [{"type": "rule", "name": "concise"}, {"type": "rule", "name": "sentiment"}]


@pytest.mark.parametrize("with_hf", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["rules", "rules+hf"])
def test_two_process_run_equals_single_process(tmp_path, with_hf):
    rows = [{"id": i, "prompt": f"question {i} " * (i % 4 + 1), "chosen": "a fine, good answer " * (i + 1),
             "rejected": "you awful idiot" if i % 3 == 0 else "no"} for i in range(11)]  # shards of 6 and 5
    write_table(rows, tmp_path / "in.jsonl")
    scorers = list(RULES)
    if with_hf:
        rm = make_bert_classifier(tmp_path / "rm")
        scorers.append({"type": "hf", "path": str(rm), "objective": "harmless", "template": "plain",
                        "device": "cpu", "batch_size": 4})
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    # A static rendezvous on 127.0.0.1: some sandboxes cannot resolve "localhost", which --standalone uses.
    env["GLOO_SOCKET_IFNAME"] = "lo"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
           "-m", "preforch.cli.main", "score", "--input", str(tmp_path / "in.jsonl"),
           "--output", str(tmp_path / "multi.jsonl"), "--cache", "false", "--progress", "false",
           "--scorers", yaml.safe_dump(scorers, default_flow_style=True)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "with 2 process(es)" in proc.stdout and proc.stdout.count("wrote ") == 1  # rank 0 reports
    assert not (tmp_path / ".multi.jsonl.shards").exists()

    single = score_dataset(ScoreConfig(input=str(tmp_path / "in.jsonl"), output=str(tmp_path / "single.jsonl"),
                                       scorers=scorers, cache=False, progress=False))
    assert single.processes == 1
    multi_rows, single_rows = read_table(tmp_path / "multi.jsonl"), read_table(tmp_path / "single.jsonl")
    assert [r["id"] for r in multi_rows] == list(range(11))
    assert list(multi_rows[0]) == list(single_rows[0])
    assert len({r["score.positive"] for r in single_rows}) > 2  # scores vary, so a row mix-up would show
    for m, s in zip(multi_rows, single_rows):
        for key, value in s.items():
            if key.endswith("harmless"):  # float32 model: batch composition may move the last bits
                np.testing.assert_allclose(m[key], value, rtol=1e-5, atol=1e-6)
            else:
                assert m[key] == value, key
