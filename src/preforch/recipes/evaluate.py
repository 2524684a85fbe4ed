"""`preforch evaluate adapter` and `preforch evaluate responses`: read the artifacts and data files, run the
evaluation components, write the report folder (report.json, report.md, plots) and print its summary."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from preforch.adapter.model import PreferenceAdapter
from preforch.adapter.splits import read_split_prompts
from preforch.atomic import staged_dir
from preforch.conversation import Conversation, as_conversation
from preforch.data.load import (
    SCORE_PREFIX,
    column_present,
    number_matrix,
    prefixed_columns,
    read_table,
)
from preforch.errors import PreforchError
from preforch.evaluate.adapter_eval import evaluate_adapter, predict_once
from preforch.evaluate.report import (
    adapter_markdown,
    responses_markdown,
    write_adapter_report,
    write_responses_report,
)
from preforch.evaluate.responses import evaluate_best_of_n, evaluate_policies
from preforch.models.builtin import BUILTIN_HEADS
from preforch.provenance import check_scored_data
from preforch.recipes import next_step
from preforch.data.bad_rows import read_preference_file
from preforch.recipes.configs import EvaluateAdapterConfig, EvaluateResponsesConfig
from preforch.rewards.head_config import read_training_prompts
from preforch.rewards.normalize import Normalizer
from preforch.weighting import check_weights

log = logging.getLogger(__name__)
WEIGHT_PREFIX = "weight."


def reward_model_prompts(folders: list[str]) -> set[str] | None:
    """Fingerprints of every prompt the named reward heads were trained on ('builtin': the shipped heads);
    None for an empty list (unknown)."""
    if not folders:
        return None
    out: set[str] = set()
    for folder in folders:
        if folder == "builtin":
            for path in dict.fromkeys(BUILTIN_HEADS.values()):
                out |= read_training_prompts(path)
        else:
            out |= read_training_prompts(folder)
    return out


def run_adapter_evaluation(config: EvaluateAdapterConfig) -> Path:
    """Load, evaluate, write the report folder; returns its path."""
    with staged_dir(config.output_dir, overwrite=config.overwrite) as tmp:
        adapter = PreferenceAdapter.from_pretrained(config.adapter, trust_remote_code=config.trust_remote_code)
        for path in (config.data, config.test_data):
            if path is not None:
                check_scored_data(config.adapter, path, "evaluate adapter", config.allow_scorer_mismatch)
        data = read_preference_file(config.data, config, config.output_dir, require_scores=True,
                                    kind_column=config.kind_column).data
        test = None if config.test_data is None else read_preference_file(
            config.test_data, config, Path(config.output_dir) / "test_data", require_scores=True,
            kind_column=config.kind_column).data
        ev = evaluate_adapter(adapter, data, test, adapter_prompts=read_split_prompts(config.adapter),
                              reward_model_prompts=reward_model_prompts(config.reward_model_prompts),
                              tau=config.tau, bootstrap=config.bootstrap,
                              resolution=config.resolution, n_bins=config.calibration_bins,
                              batch_size=config.batch_size)
        write_adapter_report(tmp, ev, dataclasses.asdict(config), plots=config.plots)
    print(adapter_markdown(ev))
    return Path(config.output_dir)


@dataclass
class ResponseRows:
    """Parsed responses: distinct prompts in first-seen order, raw scores per candidate or per policy."""

    objectives: list[str]
    prompts: list[Conversation]
    kinds: list[str] | None
    candidates: np.ndarray | None  # [N, G, K] raw
    policies: dict[str, np.ndarray] | None  # name → [N, K] raw


def load_responses(path: str, mode: str = "auto", kind_column: str = "kind",
                   prompt_column: str = "prompt") -> ResponseRows:
    """Read a responses file; every prompt needs the same number of candidates (or one row per policy)."""
    rows = read_table(path)
    if not rows:
        raise PreforchError(f"{path}: no rows")
    objectives = prefixed_columns(rows, SCORE_PREFIX, path)  # over all rows, not the first one's
    if len(objectives) < 2 or not column_present(rows, prompt_column, source=path):
        raise PreforchError(f"{path}: expected a {prompt_column!r} column (setting prompt_column) and at least 2 "
                            f"score.<objective> columns, got {list(rows[0])}")
    has_policy = column_present(rows, "policy", source=path)
    if mode == "auto":
        mode = "policies" if has_policy else "best_of_n"
    if mode == "policies" and not has_policy:
        raise PreforchError(f"{path}: mode 'policies' needs a 'policy' column")
    by_prompt: dict[Conversation, list[int]] = {}
    kinds: dict[Conversation, str] = {}
    raw = number_matrix(rows, objectives, SCORE_PREFIX, path)  # [rows, K]: no booleans, no text, finite
    has_kinds = column_present(rows, kind_column, source=path)
    conversations = [as_conversation(row.get(prompt_column), f"{path}: row {i}, column {prompt_column!r}")
                     for i, row in enumerate(rows, 1)]
    for i, row in enumerate(rows):
        by_prompt.setdefault(conversations[i], []).append(i)
        if has_kinds:
            kinds[conversations[i]] = str(row[kind_column])
    prompts = list(by_prompt)
    kind_list = [kinds.get(p, "") for p in prompts] if kinds else None
    if mode == "best_of_n":
        sizes = {len(v) for v in by_prompt.values()}
        if len(sizes) != 1:
            first = next(p for p, v in by_prompt.items() if len(v) != len(by_prompt[prompts[0]]))
            raise PreforchError(f"{path}: every prompt needs the same number of candidates; prompt "
                                f"{first.last_user[:60]!r} has "
                                f"{len(by_prompt[first])}, the first prompt {len(by_prompt[prompts[0]])}")
        cands = np.stack([raw[by_prompt[p]] for p in prompts])  # [N, G, K]
        return ResponseRows(objectives, prompts, kind_list, cands, None)
    policies: dict[str, dict[Conversation, int]] = {}
    for i, row in enumerate(rows):
        policies.setdefault(str(row["policy"]), {})[conversations[i]] = i
    out = {}
    for name, where in policies.items():
        missing = [p for p in prompts if p not in where]
        if missing:
            raise PreforchError(f"{path}: policy {name!r} has no response for prompt {missing[0].last_user[:60]!r} "
                                f"({len(missing)} missing); every policy must answer every prompt")
        out[name] = raw[[where[p] for p in prompts]]  # [N, K]
    return ResponseRows(objectives, prompts, kind_list, None, out)


def load_weights_file(path: str, objectives: list[str], prompts: list[Conversation]) -> np.ndarray:
    """Prompt-aware weights per prompt from rows of prompt + weight.<objective>. Shape: [N, K]."""
    rows = read_table(path)
    names = prefixed_columns(rows, WEIGHT_PREFIX, path)  # over all rows, not the first one's
    if names != list(objectives):
        raise PreforchError(f"{path}: weight columns for {names}, expected weight.<objective> for {list(objectives)}")
    values = number_matrix(rows, list(objectives), WEIGHT_PREFIX, path)  # [rows, K]: no booleans, no text, finite
    table = {as_conversation(r.get("prompt"), f"{path}: row {i}, column 'prompt'"): values[i - 1]
             for i, r in enumerate(rows, 1)}
    missing = [p for p in prompts if p not in table]
    if missing:
        raise PreforchError(f"{path}: no weights for prompt {missing[0].last_user[:60]!r} ({len(missing)} of {len(prompts)} "
                            "response prompts missing); the weights file's prompts must match the responses'")
    return check_weights([table[p] for p in prompts], len(objectives), str(path))


def _prompt_aware_weights(config: EvaluateResponsesConfig, adapter, parsed: ResponseRows) -> np.ndarray | None:
    if adapter is not None:
        return predict_once(adapter, parsed.prompts, config.batch_size)
    if config.weights_file:
        return load_weights_file(config.weights_file, parsed.objectives, parsed.prompts)
    return None


def run_responses_evaluation(config: EvaluateResponsesConfig) -> Path:
    with staged_dir(config.output_dir, overwrite=config.overwrite) as tmp:
        parsed = load_responses(config.responses, config.mode, config.kind_column, config.prompt_column)
        k = len(parsed.objectives)
        if config.reference_point is not None and len(config.reference_point) != k:
            raise PreforchError(f"reference_point has {len(config.reference_point)} entries, the responses have "
                                f"K={k} objectives {parsed.objectives}")
        adapter = None
        if config.adapter:
            adapter = PreferenceAdapter.from_pretrained(config.adapter, trust_remote_code=config.trust_remote_code)
            adapter.check_objectives(parsed.objectives, f"responses file {config.responses}")
            check_scored_data(config.adapter, config.responses, "evaluate responses", config.allow_scorer_mismatch)
        raw_all = parsed.candidates.reshape(-1, k) if parsed.candidates is not None else np.vstack(
            list(parsed.policies.values()))
        if config.normalizer:
            norm = Normalizer.load(config.normalizer)
        elif adapter is not None:
            norm = adapter.normalizer
        else:
            log.info("no normaliser given: fitting z-scores on the responses themselves")
            norm = Normalizer(parsed.objectives).fit(raw_all)
        weights = _prompt_aware_weights(config, adapter, parsed)
        if parsed.candidates is not None:
            n, g = parsed.candidates.shape[:2]
            s = norm.transform(parsed.candidates.reshape(-1, k), parsed.objectives).reshape(n, g, k)
            ev = evaluate_best_of_n(parsed.objectives, s, weights, parsed.kinds, config.resolution,
                                    config.reference_point)
        else:
            scores = {p: norm.transform(v, parsed.objectives) for p, v in parsed.policies.items()}
            ev = evaluate_policies(parsed.objectives, scores, config.aware_policy, parsed.kinds,
                                   config.reference_point)
            ev.aware_weights = weights
        settings = {**dataclasses.asdict(config), "normalizer_used": norm.to_dict()}
        write_responses_report(tmp, ev, settings, plots=config.plots)
    print(responses_markdown(ev))
    return Path(config.output_dir)


def run_adapter(config) -> int:
    """`preforch evaluate adapter`: evaluate, print what was written and the next command."""
    out = run_adapter_evaluation(config)
    print(f"wrote {out}/report.md, {out}/report.json" + (" and plots" if config.plots else ""))
    next_step("preforch generate --config configs/generate.yaml --prompts-file configs/prompts.txt"
              + ("" if config.adapter == "runs/example" else f" --adapter {config.adapter}"))
    return 0


def run_responses(config) -> int:
    """`preforch evaluate responses`: evaluate, print what was written and the next command."""
    out = run_responses_evaluation(config)
    print(f"wrote {out}/report.md, {out}/report.json" + (" and plots" if config.plots else ""))
    if config.adapter:
        next_step("preforch align grpo --config configs/align/grpo.yaml"
                  + ("" if config.adapter == "runs/example" else f" --adapter {config.adapter}"))
    return 0
