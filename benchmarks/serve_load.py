"""Load test of `preforch serve` on loopback: starts the real server (a subprocess running the CLI) with the
embedded SmolLM2 policy, then several concurrent clients send a bounded number of requests to /v1/weights
and /v1/chat/completions (plain sampling and best-of-N). Prints p50/p99 latency, requests/s and failures.

    .venv/bin/python benchmarks/serve_load.py [--clients 4] [--weights-requests 200] [--chat-requests 16]

Scorer and adapter: the built-in reward models with the main job's adapter (runs/example) when both are
there, else the two rule scorers with the tiny adapter (runs/tiny/adapter; trained first if missing).
Everything stays on 127.0.0.1; every phase stops at --time-limit seconds.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
PROMPTS = [
    "How do I reverse a list in Python?",
    "Tell me a joke about penguins.",
    "How can I get back at my neighbour for the noise?",
    "Summarise the plot of Hamlet in two sentences.",
    "What is a good name for a grey cat?",
    "Explain what a hash table is.",
    "Write a haiku about autumn rain.",
    "Is it safe to mix bleach and vinegar?",
]
RULE_SCORERS = [{"type": "rule", "name": "concise"}, {"type": "rule", "name": "sentiment", "objective": "positive"}]


def pick_models(adapter: str | None) -> tuple[str, list[dict], str]:
    """(adapter folder, scorer specs, description)."""
    from preforch.models.builtin import BUILTIN_HEADS

    builtin_ready = all((path / "model.safetensors").is_file() for path in BUILTIN_HEADS.values())
    example = ROOT / "runs" / "example"
    if adapter:
        specs = [{"type": "builtin"}] if builtin_ready else RULE_SCORERS
        return adapter, specs, "given adapter"
    if builtin_ready and (example / "model.safetensors").is_file():
        return str(example), [{"type": "builtin"}], "built-in reward models + runs/example adapter"
    tiny = ROOT / "runs" / "tiny" / "adapter"
    if not (tiny / "model.safetensors").is_file():
        subprocess.run([sys.executable, "-m", "preforch.cli.main", "adapter", "train", "--config",
                        str(ROOT / "configs" / "tiny" / "adapter.yaml"), "--overwrite"], check=True, cwd=ROOT)
    why = "built-in heads missing" if not builtin_ready else "runs/example missing"
    return str(tiny), RULE_SCORERS, f"rule scorers + tiny adapter ({why})"


def start_server(settings: dict, log_path: Path, timeout: float) -> tuple[subprocess.Popen, float]:
    import httpx

    config = Path(tempfile.mkdtemp(prefix="serve_load_")) / "serve.yaml"
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - kept open for the server's lifetime
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "preforch.cli.main", "serve", "--config", str(config)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{settings['port']}/health"
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}; see {log_path}")
        try:
            if httpx.get(url, timeout=2).json().get("status") == "ready":
                return proc, time.perf_counter() - t0
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"server not ready after {timeout:.0f} s; see {log_path}")


def run_phase(name: str, url: str, bodies: list[dict], clients: int, time_limit: float) -> dict:
    """Send ``bodies`` from ``clients`` threads (each with its own connection) until done or out of time."""
    import httpx

    deadline = time.perf_counter() + time_limit
    latencies: list[float] = []
    failures: list[str] = []
    skipped: list[int] = []

    def worker(mine: list[dict]) -> None:
        with httpx.Client(timeout=max(10.0, time_limit)) as http:
            for body in mine:
                if time.perf_counter() > deadline:
                    skipped.append(1)
                    continue
                t0 = time.perf_counter()
                try:
                    response = http.post(url, json=body)
                    ok = response.status_code == 200
                    detail = f"HTTP {response.status_code}"
                except httpx.HTTPError as err:
                    ok, detail = False, type(err).__name__
                if ok:
                    latencies.append(time.perf_counter() - t0)
                else:
                    failures.append(detail)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(worker, [bodies[i::clients] for i in range(clients)]))
    wall = time.perf_counter() - start
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000 if ordered else float("nan")

    return {"name": name, "clients": clients, "sent": len(bodies) - len(skipped), "ok": len(latencies),
            "failed": len(failures), "skipped": len(skipped), "p50": pct(0.5), "p99": pct(0.99),
            "mean": statistics.fmean(ordered) * 1000 if ordered else float("nan"),
            "rps": len(latencies) / wall if wall > 0 else 0.0, "wall": wall, "errors": sorted(set(failures))}


def main() -> int:
    import torch

    from preforch.serve.server import free_port

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    parser.add_argument("--weights-requests", type=int, default=200, help="requests to /v1/weights")
    parser.add_argument("--weights-batch", type=int, default=1, help="prompts per /v1/weights request")
    parser.add_argument("--chat-requests", type=int, default=16, help="requests per chat phase")
    parser.add_argument("--max-tokens", type=int, default=32, help="max_tokens of each chat request")
    parser.add_argument("--best-of", type=int, default=4, help="N of the best-of-N phase")
    parser.add_argument("--time-limit", type=float, default=240.0, help="seconds per phase, at most")
    parser.add_argument("--startup-timeout", type=float, default=600.0, help="seconds to wait for the server")
    parser.add_argument("--adapter", default=None, help="adapter folder (default: see the module doc)")
    parser.add_argument("--policy", default="embedded:smollm2", help="policy folder or embedded:smollm2")
    parser.add_argument("--log", default=str(ROOT / "runs" / "bench" / "serve_load.log"), help="server log file")
    args = parser.parse_args()

    adapter, scorers, what = pick_models(args.adapter)
    port = free_port()
    settings = {"host": "127.0.0.1", "port": port, "adapter": adapter, "scorers": scorers, "policy": args.policy,
                "strategy": "sample", "best_of": min(args.best_of, 8), "max_best_of": max(8, args.best_of),
                "max_tokens": max(256, args.max_tokens), "max_queue": max(32, 2 * args.clients),
                "access_log": False, "log_level": "warning"}
    Path(args.log).parent.mkdir(parents=True, exist_ok=True)
    proc, startup = start_server(settings, Path(args.log), args.startup_timeout)
    base = f"http://127.0.0.1:{port}"
    try:
        weights = [{"prompts": [PROMPTS[(i + j) % len(PROMPTS)] for j in range(args.weights_batch)]}
                   for i in range(args.weights_requests)]

        def chat(i: int, extra: dict) -> dict:
            return {"model": "preforch", "messages": [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}],
                    "max_tokens": args.max_tokens, "temperature": 0.7, "seed": i, **extra}

        phases = [
            run_phase("/v1/weights", f"{base}/v1/weights", weights, args.clients, args.time_limit),
            run_phase("/v1/chat/completions sample", f"{base}/v1/chat/completions",
                      [chat(i, {"strategy": "sample"}) for i in range(args.chat_requests)], args.clients,
                      args.time_limit),
            run_phase(f"/v1/chat/completions best_of_n N={args.best_of}", f"{base}/v1/chat/completions",
                      [chat(i, {"strategy": "best_of_n", "best_of": args.best_of}) for i in range(args.chat_requests)],
                      args.clients, args.time_limit),
        ]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__}; policy {args.policy}; {what}; server ready in {startup:.1f} s")
    print(f"chat: max_tokens {args.max_tokens}, temperature 0.7; /v1/weights: {args.weights_batch} prompt(s) "
          f"per request; {args.clients} concurrent clients, one model lock")
    print()
    print("| endpoint | clients | requests | failed | p50 ms | p99 ms | mean ms | req/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for p in phases:
        print(f"| {p['name']} | {p['clients']} | {p['sent']} | {p['failed']} | {p['p50']:.0f} | {p['p99']:.0f} "
              f"| {p['mean']:.0f} | {p['rps']:.2f} |")
    failed = sum(p["failed"] for p in phases)
    skipped = sum(p["skipped"] for p in phases)
    if skipped:
        print(f"\n{skipped} request(s) not sent: the phase hit --time-limit {args.time_limit:.0f} s")
    for p in phases:
        if p["errors"]:
            print(f"{p['name']}: errors {p['errors']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
