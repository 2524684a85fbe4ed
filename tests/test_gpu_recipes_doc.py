"""docs/gpu_recipes.md: every preforch command on the page parses and builds its config (what `preforch ...`
checks before it loads anything), every YAML block is accepted by the route it names, and every configs/gpu file
parses. Nothing runs: the models are hub models a GPU user downloads."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from preforch.cli.commands import ConfigCommand
from preforch.cli.main import build_parser
from preforch.config import build_config, overrides_from

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "gpu_recipes.md"
#: the routes a YAML block may name in its first line ("# align grpo"), with a base that makes it a whole config
ROUTES = {"align grpo": "configs/gpu/align/grpo_helpful_assistant.yaml"}


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def preforch_commands() -> list[list[str]]:
    """The preforch argv of each command line in the bash blocks (after `preforch` or `-m preforch.cli.main`)."""
    out = []
    for block in blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if "preforch.cli.main" in words:
                out.append(words[words.index("preforch.cli.main") + 1:])
            elif "preforch" in words:
                out.append(words[words.index("preforch") + 1:])
    return out


def parse_command(argv: list[str]):
    args = build_parser().parse_args(argv)
    command = getattr(args.func, "__self__", None)
    if isinstance(command, ConfigCommand):
        cls = command.config_class()
        return build_config(cls, args.config, overrides_from(args, cls))
    from preforch.recipes.paper import build_recipe, read_recipe  # evaluate recipe

    return build_recipe(read_recipe(args.config), args.config)


def test_the_page_has_the_commands_it_promises():
    commands = preforch_commands()
    routes = {tuple(c[:2]) for c in commands}
    assert {("align", "grpo"), ("align", "rloo"), ("align", "dpo"), ("align", "conditioned"),
            ("evaluate", "recipe")} <= routes
    assert len(commands) >= 12


@pytest.mark.parametrize("argv", preforch_commands(), ids=lambda a: " ".join(a)[:80])
def test_every_command_parses_and_builds_its_config(argv):
    parse_command(argv)


def test_every_yaml_block_is_accepted(tmp_path):
    found = 0
    for block in blocks("yaml"):
        route = block.splitlines()[0].lstrip("# ").strip()
        assert route in ROUTES, f"a YAML block must name its route in its first line, got {route!r}"
        base = yaml.safe_load((ROOT / ROUTES[route]).read_text())
        path = tmp_path / "block.yaml"
        path.write_text(yaml.safe_dump({**base, **yaml.safe_load(block)}))
        parse_command([*route.split(), "--config", str(path)])
        found += 1
    assert found >= 2


def test_the_vllm_settings_of_the_page_reach_grpo():
    job = parse_command(["align", "grpo", "--config", "configs/gpu/align/grpo_helpful_assistant.yaml",
                         "--trl", "vllm_mode=server", "--trl", "vllm_server_base_url=http://10.0.0.9:8000"])
    assert job.trl["use_vllm"] is True and job.trl["vllm_mode"] == "server"
    assert job.report_to == ["tensorboard"]


def test_every_configs_gpu_file_parses():
    files = sorted((ROOT / "configs" / "gpu").rglob("*.yaml"))
    assert {p.stem for p in files} >= {"helpful_assistant", "reddit_summary", "ultrafeedback", "skywork",
                                       "grpo_helpful_assistant", "dpo_helpful_assistant",
                                       "conditioned_helpful_assistant"}
    for path in files:
        rel = str(path.relative_to(ROOT))
        if path.parent.name == "align":
            route = path.stem.split("_")[0]
            parse_command(["align", route, "--config", rel])
        else:
            parse_command(["evaluate", "recipe", "--config", rel])
    assert "configs/gpu/" in DOC.read_text() and all(str(p.relative_to(ROOT)) in DOC.read_text() for p in files)
