"""`preforch score`: read a preference data set, score every preferred (and rejected) response on every
objective, write the rows out unchanged plus ``score.<objective>`` / ``score_rejected.<objective>`` columns, and
``<output>.provenance.json`` beside them (the scorers with their fingerprints, the input's fingerprint and row
count, the preforch version: :mod:`preforch.provenance`).

Runs the same code in one process or several (``torchrun`` / ``accelerate launch``): written against
``accelerate.PartialState``, each process scores a contiguous shard of rows, writes it atomically into a
shard folder next to the output, and rank 0 merges the shards in row order and writes the output.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from preforch.rewards.registry import build_scorers

try:  # optional: one process without it
    from accelerate import PartialState
except ImportError:
    PartialState = None

from preforch.atomic import refuse_existing, write_json
from preforch.data.load import check_writable, read_table, write_table
from preforch.errors import PreforchError
from preforch.provenance import make_provenance, provenance_path, scorer_records
from preforch.recipes import next_step
from preforch.data.bad_rows import report_rejected
from preforch.recipes.configs import OUTPUT_SUFFIXES, ScoreConfig, output_kind
from preforch.rewards.cache import ScoreCache
from preforch.rewards.scoring import as_multi, attach_scores, parse_rows, score_preference_data

__all__ = ["OUTPUT_SUFFIXES", "ScoreConfig", "ScoreResult", "output_kind", "process_state", "score_dataset"]

@dataclass
class ScoreResult:
    """What a scoring run did. ``seconds`` counts scoring only (not model loading); ``cache_hits`` and
    ``scored`` are summed over scorers (a response scored by 3 scorers counts 3 times)."""

    output: str
    rows: int
    objectives: list[str]
    responses: int
    seconds: float
    load_seconds: float
    cache_hits: int
    scored: int
    truncated: int
    processes: int = 1

    @property
    def responses_per_second(self) -> float:
        return self.responses / self.seconds if self.seconds > 0 else float("inf")


class _SingleProcess:
    """The part of ``accelerate.PartialState`` used here, for when accelerate is not installed."""

    num_processes, process_index, is_main_process = 1, 0, True
    device = "cpu"

    def wait_for_everyone(self) -> None:
        pass

    @contextlib.contextmanager
    def split_between_processes(self, inputs):
        yield inputs


def process_state(device: str = "auto"):
    """``accelerate.PartialState`` (gloo on CPU under torchrun, nccl on GPUs), or a one-process stand-in."""
    if PartialState is None:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise PreforchError("several processes were launched but accelerate is not installed; "
                                "pip install accelerate") from None
        return _SingleProcess()
    return PartialState(cpu=device == "cpu" or not torch.cuda.is_available())


def _shard_dir(output: Path) -> Path:
    return output.parent / f".{output.name}.shards"


def _save_shard(folder: Path, rank: int, chosen: np.ndarray, rejected: np.ndarray | None, stats: dict) -> None:
    tmp = folder / f".rank{rank}.npz.tmp"
    with open(tmp, "wb") as handle:
        arrays = {"chosen": chosen} if rejected is None else {"chosen": chosen, "rejected": rejected}
        np.savez(handle, **arrays)
    os.replace(tmp, folder / f"rank{rank}.npz")
    write_json(folder / f"rank{rank}.json", stats)


def _load_shards(folder: Path, world: int) -> tuple[np.ndarray, np.ndarray | None, list[dict]]:
    chosen, rejected, stats = [], [], []
    for rank in range(world):
        with np.load(folder / f"rank{rank}.npz", allow_pickle=False) as data:
            chosen.append(data["chosen"])
            if "rejected" in data:
                rejected.append(data["rejected"])
        stats.append(json.loads((folder / f"rank{rank}.json").read_text(encoding="utf-8")))
    return np.concatenate(chosen), (np.concatenate(rejected) if rejected else None), stats


def score_dataset(config: ScoreConfig) -> ScoreResult:
    """Read ``config.input``, score it with ``config.scorers`` and write ``config.output`` (see module doc)."""
    output = Path(config.output)
    refuse_existing(output, config.overwrite, "file")
    state = process_state(config.device)
    world, rank = state.num_processes, state.process_index
    if world > 1 and str(state.device).startswith("cpu"):
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))  # ranks share the cores

    rows = read_table(config.input)
    parsed = parse_rows(rows, source=config.input, columns=config.column_map(), on_bad_rows=config.on_bad_rows)
    if state.is_main_process:
        report_rejected(parsed.rejected, len(rows), output, config.input)
    rows, data = [rows[i] for i in parsed.kept], parsed.data
    t0 = time.perf_counter()
    device = str(state.device) if config.device == "auto" and world > 1 else config.device
    scorers = build_scorers(config.scorers, device=device)
    cache = ScoreCache(config.cache_path) if config.cache else None
    multi = as_multi(scorers, config.batch_size, cache, config.progress and state.is_main_process)
    if state.is_main_process:  # the output must be writable before the scoring, not after it
        zeros = np.zeros((len(rows), len(multi.objectives)))
        check_writable(attach_scores(rows, multi.objectives, zeros, zeros if data.rejected is not None else None),
                       output)
    load_seconds = time.perf_counter() - t0
    shards = _shard_dir(output)
    if world > 1:
        if state.is_main_process:
            shutil.rmtree(shards, ignore_errors=True)
            shards.mkdir(parents=True)
        state.wait_for_everyone()
    with state.split_between_processes(list(range(len(data)))) as mine:
        index = list(mine)
    t1 = time.perf_counter()
    try:
        chosen, rejected = score_preference_data(data.subset(index), multi, row_offset=index[0] if index else 0,
                                                 source=config.input)
    finally:
        if cache is not None:
            cache.close()
    stats = {"seconds": time.perf_counter() - t1, "hits": multi.hits, "scored": multi.scored,
             "truncated": sum(int(getattr(s, "truncated", 0)) for s in scorers)}
    if world > 1:
        _save_shard(shards, rank, chosen, rejected, stats)
        state.wait_for_everyone()
        if state.is_main_process:
            chosen, rejected, all_stats = _load_shards(shards, world)
            stats = {"seconds": max(s["seconds"] for s in all_stats),
                     **{key: sum(s[key] for s in all_stats) for key in ("hits", "scored", "truncated")}}
    if state.is_main_process:
        write_table(attach_scores(rows, multi.objectives, chosen, rejected), output)
        write_json(provenance_path(output), make_provenance(scorer_records(config.scorers, scorers), config.input,
                                                            len(rows)))
        shutil.rmtree(shards, ignore_errors=True)
    if world > 1:
        state.wait_for_everyone()
    return ScoreResult(output=str(output), rows=len(rows), objectives=multi.objectives,
                       responses=len(rows) * (2 if data.rejected is not None else 1), seconds=stats["seconds"],
                       load_seconds=load_seconds, cache_hits=stats["hits"], scored=stats["scored"],
                       truncated=stats["truncated"], processes=world)


def run(config) -> int:
    """`preforch score`: score, then print counts, timing and what was written (rank 0 only)."""
    result = score_dataset(config)
    if int(os.environ.get("RANK", "0")) != 0:  # only the main process of a torchrun reports
        return 0
    lookups = result.cache_hits + result.scored
    print(f"scored {result.rows} rows ({result.responses} responses) on {len(result.objectives)} objective(s) "
          f"{result.objectives} with {result.processes} process(es)")
    print(f"time {result.seconds:.2f} s scoring (+{result.load_seconds:.2f} s loading), "
          f"{result.responses_per_second:.1f} responses/s")
    print(f"cache hits {result.cache_hits} of {lookups} scorer lookups" if config.cache else "cache off")
    if result.truncated:
        print(f"truncated {result.truncated} input(s) longer than max_length")
    print(f"wrote {result.output}")
    next_step(f"preforch adapter train --data {result.output} --output runs/adapter  (scores are read, not recomputed)")
    return 0
