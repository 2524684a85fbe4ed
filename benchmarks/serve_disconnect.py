"""A client that leaves: how long the next request waits. Starts `preforch serve` (the CLI, the embedded SmolLM2
policy; models as `serve_load.py` picks them), then, per trial: a short chat on the idle server (the probe:
plain sampling, 16 tokens, seeded), a best-of-4, 128-token chat whose client closes its connection after
--leave-after seconds, and the same probe at once. Without cancelling, the probe waited for all of the abandoned
chat's generation and scoring; the last table shows how long that work takes when nobody leaves.

    .venv/bin/python benchmarks/serve_disconnect.py [--trials 8] [--leave-after 2] [--adapter runs/example]

Prints per-trial latencies and the mean ratio (after / idle) with its 95% bootstrap interval over trials.
"""

from __future__ import annotations

import argparse
import json
import platform
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import pick_models, start_server, stop_server


def chat(max_tokens: int, **extra) -> bytes:
    return json.dumps({"model": "m", "messages": [{"role": "user", "content": "Tell me a story about a lighthouse."}],
                       "max_tokens": max_tokens, **extra}).encode()


def post(port: int, body: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    return sock


def answered(port: int, body: bytes) -> float:
    """Seconds until the whole answer (connection: close, so until the server closes)."""
    start = time.perf_counter()
    sock = post(port, body)
    got = b""
    while chunk := sock.recv(65536):
        got += chunk
    sock.close()
    if not got.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"request failed: {got[:300]!r}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--leave-after", type=float, default=2.0, help="seconds before the client leaves")
    parser.add_argument("--whole", type=int, default=2, help="abandoned-size chats run to the end, for scale")
    parser.add_argument("--adapter", default=None)
    parser.add_argument("--port", type=int, default=8771)
    args = parser.parse_args()
    from preforch.stats import bootstrap_interval

    adapter, scorers, what = pick_models(args.adapter)
    settings = {"adapter": adapter, "scorers": scorers, "policy": "embedded:smollm2", "port": args.port,
                "threads": 1, "max_tokens": 128, "best_of": 4, "max_best_of": 4, "log_level": "warning"}
    proc, started = start_server(settings, Path("/tmp/serve_disconnect.log"), timeout=600)
    probe = chat(16, strategy="sample", seed=7, temperature=0.7)
    left = chat(128, strategy="best_of_n", best_of=4, temperature=0.9)
    try:
        answered(args.port, probe)  # warm
        idle, after = [], []
        for trial in range(args.trials):
            idle.append(answered(args.port, probe))
            sock = post(args.port, left)
            time.sleep(args.leave_after)
            sock.close()
            after.append(answered(args.port, probe))
            print(f"trial {trial + 1}: idle {idle[-1]:.2f} s, after a client left {after[-1]:.2f} s", flush=True)
        whole = [answered(args.port, left) for _ in range(args.whole)]
    finally:
        stop_server(proc)
    ratios = [a / i for a, i in zip(after, idle)]
    lo, hi = bootstrap_interval(ratios)
    print(f"\nmodels: {what}; server ready in {started:.0f} s; {platform.machine()} {platform.processor() or ''}")
    print("| measure | value |\n| --- | ---: |")
    print(f"| probe on the idle server, median s | {statistics.median(idle):.2f} |")
    print(f"| probe right after a client left a best-of-4 128-token chat, median s | {statistics.median(after):.2f} |")
    print(f"| ratio after / idle, mean over {len(ratios)} trials [95% CI] | {statistics.mean(ratios):.2f} "
          f"[{lo:.2f}, {hi:.2f}] |")
    print(f"| the abandoned chat run to the end (what the probe waited for before), median s | "
          f"{statistics.median(whole):.1f} |")


if __name__ == "__main__":
    main()
