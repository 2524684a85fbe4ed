"""Shared pieces of the performance benchmarks (issue 7): thread setting, timing, the machine line, a K = 3
heads scorer, and the one-table printer. Every benchmark prints ONE table and exits non-zero only when a run
is broken (wrong numbers, a crash), never when it is slow.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]


class BrokenRun(Exception):
    """A benchmark produced wrong results (not: slow ones)."""


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op threads explicitly (default: all cores) and return the number used."""
    import torch

    n = threads or os.cpu_count() or 1
    torch.set_num_threads(n)
    return torch.get_num_threads()


def machine_line() -> str:
    import torch

    try:
        load = f", load avg {os.getloadavg()[0]:.1f}"
    except OSError:
        load = ""
    cpu = platform.processor() or platform.machine()
    return (f"machine: {cpu}, {os.cpu_count()} cores{load}; torch {torch.__version__}, "
            f"{torch.get_num_threads()} torch threads; {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")


def command_line() -> str:
    return "command: python " + " ".join([os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def interleaved(cases: dict[str, Callable[[], object]], repeats: int,
                warmup: bool = True) -> tuple[dict[str, list[float]], dict[str, object]]:
    """Run every case once per repetition, in turn, so the shared machine's noise hits them alike.

    Returns the seconds of each case per repetition and each case's last output.
    """
    outputs: dict[str, object] = {}
    if warmup:
        for name, fn in cases.items():
            outputs[name] = fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            seconds, outputs[name] = timed(fn)
            times[name].append(seconds)
    return times, outputs


def print_table(title: str, header: list[str], rows: list[list[object]], notes: list[str] = ()) -> None:
    print(f"## {title}")
    print(machine_line())
    print(command_line())
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join("---" for _ in header) + " |")
    for row in rows:
        print("| " + " | ".join(_cell(v) for v in row) + " |")
    for note in notes:
        print(note)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def three_heads(encoder=None, encoder_path: str | None = None, max_length: int = 256, seed: int = 0):
    """A K = 3 SharedEncoderHeads on MiniLM with randomly initialised heads of the built-in heads' kinds
    (mean / response mean / response attention pooling, prompt features, an MLP head). Scores' values do
    not matter for speed; the work per row is the same as trained heads'."""
    import torch

    from preforch.rewards.heads import HeadsConfig, HeadSpec, SharedEncoderHeads

    torch.manual_seed(seed)
    config = HeadsConfig(heads=[HeadSpec("harmless", pooling="response_mean", features=["response", "product"]),
                                HeadSpec("helpful", pooling="response_attention", features=["response", "prompt"],
                                         hidden=64),
                                HeadSpec("humor", pooling="mean", features=["response"])],
                         max_length=max_length, prompt_tokens=64)
    return SharedEncoderHeads(config, encoder=encoder, encoder_path=encoder_path)


def run_main(main: Callable[[], int]) -> None:
    """Exit 1 with a one-line reason on a broken run."""
    try:
        code = main()
    except BrokenRun as err:
        print(f"BROKEN RUN: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    raise SystemExit(code)


# ---- a `preforch score` job on the example data, for the cache and multi-process benchmarks ----------------


def builtin_available() -> bool:
    try:
        from preforch.models.builtin import BUILTIN_HEADS
    except ImportError:
        return False
    return all((p / "model.safetensors").is_file() for p in BUILTIN_HEADS.values())


def score_job(folder: Path, rows: int, scorers: str = "auto") -> tuple[Path, list[dict], str]:
    """Write ``rows`` example rows (chosen + rejected) to ``folder/in.jsonl`` and pick K = 3 scorers: the
    built-in ones when their weights are shipped (``auto``/``builtin``), else random heads (harmless, helpful)
    on MiniLM saved to ``folder/heads`` plus the conciseness rule. Returns (input, scorer specs, what)."""
    import json

    from preforch.data.example import load_example
    from preforch.rewards.heads import HeadsConfig, HeadSpec, SharedEncoderHeads

    folder.mkdir(parents=True, exist_ok=True)
    data = load_example().subset(list(range(rows)))
    path = folder / "in.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps({"prompt": p.to_messages(), "chosen": c, "rejected": r}) + "\n" for p, c, r in zip(data.prompts, data.chosen, data.rejected))
    if scorers in ("auto", "builtin") and builtin_available():
        return path, [{"type": "builtin"}], "built-in scorer (harmless + helpful heads on MiniLM, concise rule)"
    import torch

    torch.manual_seed(0)
    config = HeadsConfig(heads=[HeadSpec("harmless", pooling="response_mean", features=["response", "product"]),
                                HeadSpec("helpful", pooling="response_attention", features=["response", "prompt"],
                                         hidden=64)], max_length=256, prompt_tokens=64)
    SharedEncoderHeads(config).save_pretrained(folder / "heads", overwrite=True)
    return path, [{"type": "heads", "path": str(folder / "heads")}, {"type": "rule", "name": "concise"}], \
        "random heads (harmless, helpful) on MiniLM + concise rule (built-in weights not shipped yet)"


def read_scores(path: Path) -> np.ndarray:  # noqa: F821
    """score.* and score_rejected.* columns of a scored JSONL file. Shape: [N, 2K]."""
    import json

    import numpy as np

    with open(path, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    cols = sorted(k for k in rows[0] if k.startswith(("score.", "score_rejected.")))
    return np.array([[r[c] for c in cols] for r in rows], dtype=np.float64)


def parse_score_output(stdout: str) -> dict[str, float]:
    """Numbers of `preforch score`'s report: scoring seconds, loading seconds, cache hits, lookups."""
    import re

    out: dict[str, float] = {}
    m = re.search(r"time ([\d.]+) s scoring \(\+([\d.]+) s loading\)", stdout)
    if m:
        out["scoring"], out["loading"] = float(m.group(1)), float(m.group(2))
    m = re.search(r"cache hits (\d+) of (\d+)", stdout)
    if m:
        out["hits"], out["lookups"] = float(m.group(1)), float(m.group(2))
    return out


def ratio_median(times: dict[str, list[float]], num: str, den: str) -> float:
    """Median over repetitions of time[num] / time[den]: the two ran back to back, so a burst of load from
    other jobs on the shared machine hits both, and the ratio is steadier than a ratio of medians."""
    return median([a / b for a, b in zip(times[num], times[den])])
