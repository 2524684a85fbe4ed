"""Score a preference data set: every preferred (and rejected) response on every objective, rows out unchanged
plus ``score.<objective>`` / ``score_rejected.<objective>`` columns.

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
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from preforch.atomic import refuse_existing
from preforch.config import coerce, field
from preforch.data.load import (
    REJECTED_SCORE_PREFIX,
    SCORE_PREFIX,
    check_writable,
    read_table,
    to_preference_data,
    write_table,
)
from preforch.errors import PreforchError
from preforch.models.paths import check_device
from preforch.rewards.cache import ScoreCache
from preforch.rewards.multi import MultiScorer
from preforch.rewards.scorer import Scorer
from preforch.types import PreferenceData

OUTPUT_SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet")


@dataclass
class ScoreConfig:
    """Settings of `preforch score`."""

    input: str = field("", help="preference data file (.jsonl/.json/.parquet/.csv, optionally .gz) or a saved "
                                "datasets folder")
    output: str = field("", help="where to write the scored rows: .jsonl, .jsonl.gz (gzip-compressed) or .parquet")
    scorers: list[dict] = field([{"type": "builtin"}],
                                help="scorer specs, e.g. {type: hf, path: DIR, objective: harmless}, "
                                     "{type: rule, name: concise}, {type: builtin}, {type: heads, path: DIR}")
    batch_size: int = field(64, help="responses per scoring chunk (the cache commits after each chunk)")
    cache: bool = field(True, help="reuse and store scores in the on-disk score cache")
    cache_path: str | None = field(None, help="score cache file (default: $PREFORCH_CACHE/scores.sqlite, "
                                              "~/.cache/preforch/scores.sqlite)")
    device: str = field("auto", help="default device of model scorers whose spec sets none (auto: this "
                                     "process's accelerator, else cpu)")
    overwrite: bool = field(False, help="replace an existing output file")
    progress: bool = field(True, help="show a progress bar")

    def __post_init__(self) -> None:
        if not self.input:
            raise PreforchError("score: setting 'input' is required (a preference data file)")
        if not self.output:
            raise PreforchError("score: setting 'output' is required (a .jsonl or .parquet file)")
        if output_kind(self.output) not in OUTPUT_SUFFIXES:
            raise PreforchError(f"{self.output}: output must end in .jsonl or .parquet (or .jsonl.gz for gzip-compressed "
                                "JSON lines)")
        if self.batch_size < 1:
            raise PreforchError(f"score: batch_size must be >= 1, got {self.batch_size}")
        check_device(self.device, "device")
        if not self.scorers:
            raise PreforchError("score: setting 'scorers' is empty; give at least one scorer spec")
        for i, spec in enumerate(self.scorers, 1):
            if not isinstance(spec, dict) or "type" not in spec:
                raise PreforchError(f"score: scorer {i} is {spec!r}; expected a mapping with a 'type' "
                                    f"(one of {sorted(SCORER_TYPES)})")


def output_kind(path: str | Path) -> str:
    """'.jsonl', '.jsonl.gz' or '.parquet' (or whatever else the name ends in)."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    return "".join(suffixes[-2:]) if suffixes[-1:] == [".gz"] else "".join(suffixes[-1:])


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


# ---- scorer specs -> scorers -----------------------------------------------------------------------------


def _spec_options(spec: dict, allowed: Sequence[str], where: str) -> dict:
    unknown = sorted(set(spec) - {"type", *allowed})
    if unknown:
        raise PreforchError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    return {k: v for k, v in spec.items() if k != "type"}


def _build_hf(spec: dict, device: str, where: str) -> Scorer:
    from preforch.rewards.hf import HFScorer, HFScorerConfig

    hints = typing.get_type_hints(HFScorerConfig)
    options = _spec_options(spec, list(hints), where)
    values = {k: coerce(v, hints[k], k, where) for k, v in options.items()}
    values.setdefault("device", device)
    return HFScorer(HFScorerConfig(**values))


def _build_rule(spec: dict, device: str, where: str) -> Scorer:
    from preforch.rewards.rules import rule_scorer

    options = _spec_options(spec, ["name", "objective"], where)
    if "name" not in options:
        raise PreforchError(f"{where}: a rule scorer needs 'name' (concise, sentiment or profanity)")
    return rule_scorer(str(options["name"]), options.get("objective"))


def _build_builtin(spec: dict, device: str, where: str) -> Scorer:
    try:
        from preforch.models.builtin import load_builtin_scorer
    except ImportError as err:
        raise PreforchError(f"{where}: the built-in reward models are not available ({err})") from None
    options = _spec_options(spec, ["device", "batch_size"], where)
    options.setdefault("device", device)
    check_device(str(options["device"]), f"{where}: device")
    return load_builtin_scorer(**options)


def _build_heads(spec: dict, device: str, where: str) -> Scorer:
    from preforch.rewards.heads import SharedEncoderHeads

    options = _spec_options(spec, ["path", "device"], where)
    if "path" not in options:
        raise PreforchError(f"{where}: a heads scorer needs 'path' (a folder saved by SharedEncoderHeads)")
    return SharedEncoderHeads.from_pretrained(str(options["path"]),
                                              device=check_device(str(options.get("device", device)), f"{where}: device"))


#: scorer spec ``type`` → builder(spec, default device, where-for-errors).
SCORER_TYPES = {
    "hf": _build_hf,
    "rule": _build_rule,
    "builtin": _build_builtin,
    "heads": _build_heads,
}


def build_scorers(specs: list[dict], device: str = "cpu", source: str = "scorers") -> list[Scorer]:
    """One scorer per spec; errors name the spec (1-based)."""
    from preforch.rewards.hf import resolve_device

    device = resolve_device(device)
    scorers = []
    for i, spec in enumerate(specs, 1):
        where = f"{source}[{i}] ({spec.get('type') if isinstance(spec, dict) else spec!r})"
        if not isinstance(spec, dict) or spec.get("type") not in SCORER_TYPES:
            raise PreforchError(f"{where}: expected a mapping with 'type' in {sorted(SCORER_TYPES)}, got {spec!r}")
        scorers.append(SCORER_TYPES[spec["type"]](spec, device, where))
    return scorers


# ---- scoring rows -----------------------------------------------------------------------------------------


def parse_rows(rows: list[dict[str, Any]], source: str) -> PreferenceData:
    """Prompts and responses of ``rows`` (existing score columns are ignored: they will be replaced)."""
    clean = [{k: v for k, v in r.items() if not k.startswith((SCORE_PREFIX, REJECTED_SCORE_PREFIX))} for r in rows]
    return to_preference_data(clean, source=source)


def score_preference_data(data: PreferenceData, multi: MultiScorer, row_offset: int = 0,
                          source: str = "<rows>") -> tuple[np.ndarray, np.ndarray | None]:
    """Scores of the chosen and (when present) rejected responses. Shapes: [N, K], [N, K] or None."""
    n = len(data)
    responses = data.chosen + (data.rejected or [])
    prompts = data.prompts + (data.prompts if data.rejected is not None else [])

    def name_row(i: int) -> str:
        which = "preferred" if i < n else "rejected"
        return f"{source}: row {row_offset + i % n + 1} ({which} response)" if n else source

    scores = multi.score(prompts, responses, name_row=name_row)  # [N or 2N, K]
    return scores[:n], (scores[n:] if data.rejected is not None else None)


def attach_scores(rows: list[dict[str, Any]], objectives: list[str], chosen: np.ndarray,
                  rejected: np.ndarray | None) -> list[dict[str, Any]]:
    """``rows`` with ``score.<objective>`` (and ``score_rejected.<objective>``) columns set (new dicts).

    Columns of the same name are replaced; score columns of other objectives are kept as they were.
    """
    out = []
    for i, row in enumerate(rows):
        new = dict(row)
        for k, name in enumerate(objectives):
            new[f"{SCORE_PREFIX}{name}"] = float(chosen[i, k])
        if rejected is not None:
            for k, name in enumerate(objectives):
                new[f"{REJECTED_SCORE_PREFIX}{name}"] = float(rejected[i, k])
        out.append(new)
    return out


def score_rows(rows: list[dict[str, Any]], scorer: Scorer | Sequence[Scorer], cache: ScoreCache | None = None,
               batch_size: int = 64, progress: bool = False, source: str = "<rows>") -> list[dict[str, Any]]:
    """Score rows of any accepted shape in this process; returns the rows with score columns added."""
    multi = _as_multi(scorer, batch_size, cache, progress)
    chosen, rejected = score_preference_data(parse_rows(rows, source), multi, source=source)
    return attach_scores(rows, multi.objectives, chosen, rejected)


def _as_multi(scorer: Scorer | Sequence[Scorer], batch_size: int, cache: ScoreCache | None,
              progress: bool) -> MultiScorer:
    scorers = list(scorer) if isinstance(scorer, (list, tuple)) else [scorer]
    return MultiScorer(scorers, batch_size=batch_size, cache=cache, progress=progress)


# ---- the whole job, one process or several ----------------------------------------------------------------


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
    import torch

    try:
        from accelerate import PartialState
    except ImportError:
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
    from preforch.atomic import write_json

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
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))  # ranks share the cores
    rows = read_table(config.input)
    data = parse_rows(rows, source=config.input)
    t0 = time.perf_counter()
    device = str(state.device) if config.device == "auto" and world > 1 else config.device
    scorers = build_scorers(config.scorers, device=device)
    cache = ScoreCache(config.cache_path) if config.cache else None
    multi = _as_multi(scorers, config.batch_size, cache, config.progress and state.is_main_process)
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
        shutil.rmtree(shards, ignore_errors=True)
    if world > 1:
        state.wait_for_everyone()
    return ScoreResult(output=str(output), rows=len(rows), objectives=multi.objectives,
                       responses=len(rows) * (2 if data.rejected is not None else 1), seconds=stats["seconds"],
                       load_seconds=load_seconds, cache_hits=stats["hits"], scored=stats["scored"],
                       truncated=stats["truncated"], processes=world)
