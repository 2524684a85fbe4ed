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
        load = ", load avg %.1f" % os.getloadavg()[0]
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
