"""Every ``configs/tiny/*.yaml`` runs from the CLI as its header comment writes it (the ``#   preforch ...`` line,
optional ``[...]`` parts left out), in a folder holding only links to the checkout's configs/ and src/ (the
shipped data files), each after the configs whose outputs it reads. The fast ones run by default (GRPO on the
embedded SmolLM2 among them); the other configs that load or train it (20–40 s each on a quiet 2-core CPU,
BENCHMARKS.md) are ``slow``."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from preforch.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny"

#: config → the configs whose outputs it reads (run first when not run yet).
NEEDS = {"evaluate_adapter": ["adapter"], "evaluate_routing": ["adapter"], "generate": [],
         "evaluate_responses": ["adapter", "generate"], "serve": ["adapter"]}
#: seconds each on a quiet 2-core machine (score 8, adapter 19, evaluate routing 4, GRPO on the embedded SmolLM2
#: 19): on in the default run; the GRPO one is the always-on end-to-end run of a real policy.
FAST = ["score", "adapter", "evaluate_routing", "align_grpo"]
ALL = sorted(p.stem for p in TINY.glob("*.yaml"))


def header_command(name: str) -> list[str]:
    """The command the config's header comment gives for itself, as argv after ``preforch``."""
    lines = [line[1:].strip() for line in (TINY / f"{name}.yaml").read_text().splitlines() if line.startswith("#")]
    mine = [line for line in lines if line.startswith("preforch ") and f"configs/tiny/{name}.yaml" in line]
    assert len(mine) == 1, f"configs/tiny/{name}.yaml: its header must give one 'preforch ...' line, got {mine}"
    command = re.sub(r"\[[^\]]*\]", "", mine[0].split("  #")[0])
    return shlex.split(command)[1:]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_configs")
    for name in ("configs", "src"):
        (folder / name).symlink_to(ROOT / name)
    return folder, set()


def run(name: str, workdir, capsys) -> None:
    folder, done = workdir
    for need in NEEDS.get(name, []):
        if need not in done:
            run(need, workdir, capsys)
    argv = header_command(name)
    if name == "serve":
        serve_until_healthy(folder, argv)
    else:
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc == 0, f"preforch {' '.join(argv)}: exit {rc}\n{err[-2000:]}"
    done.add(name)


def serve_until_healthy(folder: Path, argv: list[str]) -> None:
    """Start the server as written (on a free port instead of 8000), wait for /health, stop it with Ctrl-C."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "preforch.cli.main", *argv, "--port", str(port)], cwd=folder,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail(f"serve did not become healthy: {proc.communicate(timeout=30)[0][-2000:]}")
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=60)[0]
    # Ctrl-C is how it is stopped: the server shuts down cleanly and the command exits 130 ("interrupted")
    assert proc.returncode == 130 and "Application shutdown complete" in out, out[-2000:]


def test_every_tiny_config_is_covered_and_names_its_command():
    assert set(FAST) <= set(ALL) and set(NEEDS) <= set(ALL)
    for name in ALL:
        assert header_command(name)[:1] != [], name


@pytest.mark.parametrize("name", [pytest.param(n, marks=() if n in FAST else pytest.mark.slow) for n in ALL])
def test_tiny_config_runs_as_written(name, workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir[0])
    run(name, workdir, capsys)
