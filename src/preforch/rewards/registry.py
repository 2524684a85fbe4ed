"""Scorer specs → scorers: the one table (``type`` → builder) that `preforch score`, adapter training, the
alignment routes, generation and the server all build their scorers from. Errors name the spec (1-based)."""

from __future__ import annotations

import importlib
import typing
from collections.abc import Sequence

from preforch.config import coerce
from preforch.errors import PreforchError
from preforch.models.paths import resolve_device
from preforch.rewards.builtin import load_builtin_scorer
from preforch.rewards.callable import CallableScorer
from preforch.rewards.heads import SharedEncoderHeads
from preforch.rewards.hf import HFScorer, HFScorerConfig
from preforch.rewards.rules import rule_scorer
from preforch.rewards.scorer import SCORER_TYPE_NAMES, Scorer

__all__ = ["SCORER_TYPES", "build_scorers"]


def _spec_options(spec: dict, allowed: Sequence[str], where: str) -> dict:
    unknown = sorted(set(spec) - {"type", *allowed})
    if unknown:
        raise PreforchError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    return {k: v for k, v in spec.items() if k != "type"}


def _build_hf(spec: dict, device: str, where: str) -> Scorer:
    hints = typing.get_type_hints(HFScorerConfig)
    options = _spec_options(spec, list(hints), where)
    values = {k: coerce(v, hints[k], k, where) for k, v in options.items()}
    values.setdefault("device", device)
    return HFScorer(HFScorerConfig(**values))


def _build_rule(spec: dict, device: str, where: str) -> Scorer:
    options = _spec_options(spec, ["name", "objective"], where)
    if "name" not in options:
        raise PreforchError(f"{where}: a rule scorer needs 'name' (concise, sentiment or profanity)")
    return rule_scorer(str(options["name"]), options.get("objective"))


def _build_builtin(spec: dict, device: str, where: str) -> Scorer:
    options = _spec_options(spec, ["device", "batch_size"], where)
    options["device"] = resolve_device(str(options.get("device", device)), f"{where}: device")
    return load_builtin_scorer(**options)


def _build_heads(spec: dict, device: str, where: str) -> Scorer:
    options = _spec_options(spec, ["path", "device"], where)
    if "path" not in options:
        raise PreforchError(f"{where}: a heads scorer needs 'path' (a folder saved by SharedEncoderHeads)")
    return SharedEncoderHeads.from_pretrained(str(options["path"]),
                                              device=resolve_device(str(options.get("device", device)), f"{where}: device"))


def _build_python(spec: dict, device: str, where: str) -> Scorer:
    """``{type: python, callable: "module:function", objectives: [...]}``: ``function(prompts, responses)`` returns
    [N] or [N, K]. The module is imported from sys.path (PYTHONPATH): naming it in a config is the user's choice."""
    options = _spec_options(spec, ["callable", "objectives", "identity"], where)
    target = options.get("callable")
    module, _, name = str(target or "").partition(":")
    if not module or not name:
        raise PreforchError(f"{where}: a python scorer needs 'callable' as \"module:function\", got {target!r}")
    objectives = options.get("objectives")
    if isinstance(objectives, str):
        objectives = [objectives]
    if not isinstance(objectives, list) or not objectives or not all(isinstance(o, str) and o for o in objectives):
        raise PreforchError(f"{where}: a python scorer needs 'objectives' (the names of its output columns)")
    try:
        fn = getattr(importlib.import_module(module), name)
    except ImportError as err:
        raise PreforchError(f"{where}: cannot import module {module!r} ({err}); is its folder on PYTHONPATH?") from None
    except AttributeError:
        raise PreforchError(f"{where}: module {module!r} has no {name!r}") from None
    # the cache keys on the identity: give a new one (e.g. "mymod:reward@v2") whenever the function changes
    return CallableScorer(fn, objectives, str(options.get("identity") or target))


#: scorer spec ``type`` → builder(spec, default device, where-for-errors).
SCORER_TYPES = {
    "hf": _build_hf,
    "rule": _build_rule,
    "builtin": _build_builtin,
    "heads": _build_heads,
    "python": _build_python,
}


def build_scorers(specs: list[dict], device: str = "cpu", source: str = "scorers") -> list[Scorer]:
    """One scorer per spec; errors name the spec (1-based)."""
    device = resolve_device(device, f"{source}: device")
    scorers = []
    for i, spec in enumerate(specs, 1):
        where = f"{source}[{i}] ({spec.get('type') if isinstance(spec, dict) else spec!r})"
        if not isinstance(spec, dict) or spec.get("type") not in SCORER_TYPES:
            raise PreforchError(f"{where}: expected a mapping with 'type' in {sorted(SCORER_TYPES)}, got {spec!r}")
        scorers.append(SCORER_TYPES[spec["type"]](spec, device, where))
    return scorers


if sorted(SCORER_TYPES) != sorted(SCORER_TYPE_NAMES):  # the light list that configs check specs against
    raise ImportError(f"scorer types {sorted(SCORER_TYPES)} differ from SCORER_TYPE_NAMES {sorted(SCORER_TYPE_NAMES)}")
