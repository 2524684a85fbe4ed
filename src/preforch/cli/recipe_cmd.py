"""`preforch evaluate recipe`: run the sections of a paper recipe file in order."""

from __future__ import annotations

from preforch.recipes.configs import STAGES


def add_parser(sub) -> None:
    c = sub.add_parser("recipe", help="run a recipe: score, train the adapter, evaluate it",
                       description="Run the sections of a recipe file (configs/gpu/*.yaml) in order: score -> "
                                   "adapter -> evaluate_adapter; each section holds that command's settings.")
    c.add_argument("--config", required=True, help="recipe YAML file (see configs/gpu/)")
    c.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated stages to run [default: {','.join(STAGES)}]")
    c.set_defaults(func="preforch.cli.jobs:recipe")
