"""Load test of `preforch serve` on loopback: starts the real server (a subprocess running the CLI) with the
embedded SmolLM2 policy, then concurrent clients send a bounded number of requests to /v1/weights (50 at a
time by default) and /v1/chat/completions (plain sampling and best-of-N, 8 at a time). Prints p50/p99
latency, requests/s and failures per phase, and the mean number of requests per model pass.

The same phases run twice, one server after the other: with micro-batching (the default) and with
`batching: false` (one request per model pass, the old one-at-a-time behaviour) as the baseline; the last
table gives the throughput ratio. --no-baseline skips the second server.

    .venv/bin/python benchmarks/serve_load.py [--clients 50] [--chat-clients 8] [--weights-requests 200]

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


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


class RawClient:
    """One keep-alive HTTP/1.1 connection, requests written and responses read by hand. On a 2-core machine
    shared with the server, a full HTTP client costs more CPU per request than the server's own work;
    this one costs little, so the numbers measure the server."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def post(self, path: str, body: dict) -> int:
        import asyncio
        import json

        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        data = json.dumps(body).encode()
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json"
                          f"\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        await self.reader.readexactly(length)
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def run_phase(name: str, base: str, path: str, bodies: list[dict], clients: int, time_limit: float) -> dict:
    """Send ``bodies`` from ``clients`` concurrent clients (asyncio, one connection each) until done or out of
    time; the server's batching counters before and after give the requests per model pass."""
    import asyncio

    import httpx

    latencies: list[float] = []
    failures: list[str] = []
    skipped: list[int] = []
    lane = "encoder" if path == "/v1/weights" else "policy"
    host, port = base.removeprefix("http://").split(":")

    async def client(mine: list[dict], deadline: float) -> None:
        http = RawClient(host, int(port))
        try:
            for body in mine:
                if time.perf_counter() > deadline:
                    skipped.append(1)
                    continue
                t0 = time.perf_counter()
                try:
                    status = await asyncio.wait_for(http.post(path, body), timeout=max(10.0, time_limit))
                    ok, detail = status == 200, f"HTTP {status}"
                except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as err:
                    ok, detail = False, type(err).__name__
                    await http.close()
                    http = RawClient(host, int(port))
                if ok:
                    latencies.append(time.perf_counter() - t0)
                else:
                    failures.append(detail)
        finally:
            await http.close()

    async def run() -> float:
        start = time.perf_counter()
        deadline = start + time_limit
        await asyncio.gather(*(client(bodies[i::clients], deadline) for i in range(clients)))
        return time.perf_counter() - start

    before = httpx.get(f"{base}/health", timeout=10).json()["batching"][lane]
    wall = asyncio.run(run())
    after = httpx.get(f"{base}/health", timeout=10).json()["batching"][lane]
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000 if ordered else float("nan")

    passes = after["passes"] - before["passes"]
    return {"name": name, "clients": clients, "sent": len(bodies) - len(skipped), "ok": len(latencies),
            "failed": len(failures), "skipped": len(skipped), "p50": pct(0.5), "p99": pct(0.99),
            "mean": statistics.fmean(ordered) * 1000 if ordered else float("nan"),
            "rps": len(latencies) / wall if wall > 0 else 0.0, "wall": wall, "errors": sorted(set(failures)),
            "per_pass": (after["jobs"] - before["jobs"]) / passes if passes else float("nan")}


def run_server(label: str, settings: dict, args, log_path: Path) -> tuple[list[dict], float]:
    """Start one server, run the three phases against it, stop it."""
    proc, startup = start_server(settings, log_path, args.startup_timeout)
    base = f"http://127.0.0.1:{settings['port']}"
    try:
        # every prompt distinct (request and position in the text), as from real clients
        weights = [{"prompts": [f"{PROMPTS[(i + j) % len(PROMPTS)]} (request {i}.{j})"
                                for j in range(args.weights_batch)]}
                   for i in range(args.weights_requests)]

        def chat(i: int, extra: dict) -> dict:
            return {"model": "preforch", "messages": [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}],
                    "max_tokens": args.max_tokens, "temperature": 0.7, **extra}

        phases = [run_phase(f"{label} /v1/weights", base, "/v1/weights", weights, args.clients, args.time_limit)]
        if args.chat_requests:
            phases += [
                run_phase(f"{label} chat sample", base, "/v1/chat/completions",
                          [chat(i, {"strategy": "sample"}) for i in range(args.chat_requests)], args.chat_clients,
                          args.time_limit),
                run_phase(f"{label} chat best_of_n N={args.best_of}", base, "/v1/chat/completions",
                          [chat(i, {"strategy": "best_of_n", "best_of": args.best_of})
                           for i in range(args.chat_requests)], args.chat_clients, args.time_limit)]
    finally:
        stop_server(proc)
    return phases, startup


def main() -> int:
    import torch

    from preforch.serve.server import free_port

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients of the /v1/weights phase")
    parser.add_argument("--chat-clients", type=int, default=8, help="concurrent clients of the chat phases")
    parser.add_argument("--weights-requests", type=int, default=200, help="requests to /v1/weights")
    parser.add_argument("--weights-batch", type=int, default=1, help="prompts per /v1/weights request")
    parser.add_argument("--chat-requests", type=int, default=16, help="requests per chat phase")
    parser.add_argument("--max-tokens", type=int, default=16, help="max_tokens of each chat request")
    parser.add_argument("--best-of", type=int, default=4, help="N of the best-of-N phase")
    parser.add_argument("--time-limit", type=float, default=240.0, help="seconds per phase, at most")
    parser.add_argument("--startup-timeout", type=float, default=600.0, help="seconds to wait for the server")
    parser.add_argument("--no-baseline", action="store_true", help="skip the one-request-per-pass server")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the server (on a shared 2-core "
                        "machine two spinning threads made one encoder call 15x slower; 0 = torch default)")
    parser.add_argument("--adapter", default=None, help="adapter folder (default: see the module doc)")
    parser.add_argument("--policy", default="embedded:smollm2", help="policy folder or embedded:smollm2")
    parser.add_argument("--log", default=str(ROOT / "runs" / "bench" / "serve_load.log"), help="server log file")
    args = parser.parse_args()

    adapter, scorers, what = pick_models(args.adapter)
    Path(args.log).parent.mkdir(parents=True, exist_ok=True)
    settings = {"host": "127.0.0.1", "adapter": adapter, "scorers": scorers, "policy": args.policy,
                "strategy": "sample", "best_of": min(args.best_of, 8), "max_best_of": max(8, args.best_of),
                "max_tokens": max(256, args.max_tokens), "max_queue": max(256, 2 * args.clients),
                "threads": args.threads or None, "access_log": False, "log_level": "warning"}
    runs = [("batched", {"batching": True})] + ([] if args.no_baseline else [("one-at-a-time", {"batching": False})])
    phases, startups = [], []
    for label, extra in runs:
        got, startup = run_server(label, {**settings, **extra, "port": free_port()}, args,
                                  Path(args.log).with_suffix(f".{label}.log"))
        phases += got
        startups.append(f"{label} {startup:.1f} s")

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__}; policy {args.policy}; {what}; servers ready in {', '.join(startups)}")
    print(f"/v1/weights: {args.weights_batch} prompt(s) per request, {args.clients} concurrent clients; chat: "
          f"max_tokens {args.max_tokens}, temperature 0.7, unseeded, {args.chat_clients} concurrent clients")
    print()
    print("| server, endpoint | clients | requests | failed | p50 ms | p99 ms | mean ms | req/s | requests per pass |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for p in phases:
        print(f"| {p['name']} | {p['clients']} | {p['sent']} | {p['failed']} | {p['p50']:.0f} | {p['p99']:.0f} "
              f"| {p['mean']:.0f} | {p['rps']:.2f} | {p['per_pass']:.1f} |")
    if not args.no_baseline:
        print()
        print("| endpoint | throughput batched / one-at-a-time | p50 batched / one-at-a-time |")
        print("| --- | ---: | ---: |")
        half = len(phases) // 2
        for new, old in zip(phases[:half], phases[half:]):
            name = new["name"].removeprefix("batched ")
            print(f"| {name} | {new['rps'] / old['rps']:.2f}x | {new['p50'] / old['p50']:.2f} |")
    failed = sum(p["failed"] for p in phases)
    skipped = sum(p["skipped"] for p in phases)
    if skipped:
        print(f"\n{skipped} request(s) not sent: a phase hit --time-limit {args.time_limit:.0f} s")
    for p in phases:
        if p["errors"]:
            print(f"{p['name']}: errors {p['errors']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
