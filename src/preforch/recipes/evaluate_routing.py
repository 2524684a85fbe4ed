"""`preforch evaluate routing`: read labelled prompts, get each prompt's weights (an adapter, or a weights file),
run the routing metrics (:mod:`preforch.evaluate.routing`) and write report.json, report.txt and a plot."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from preforch.adapter.model import PreferenceAdapter
from preforch.atomic import staged_dir, write_json, write_text
from preforch.conversation import Conversation, as_conversation
from preforch.data.load import column_present, prefixed_columns, read_table
from preforch.errors import PreforchError
from preforch.evaluate.adapter_eval import predict_once
from preforch.evaluate.plots import plot_routing
from preforch.evaluate.routing import RoutingEvaluation, evaluate_routing, labels_from_expected, routing_text
from preforch.recipes import next_step
from preforch.recipes.configs import EvaluateRoutingConfig
from preforch.recipes.evaluate import WEIGHT_PREFIX, load_weights_file

LABEL_PREFIX = "label."
REPORT_JSON, REPORT_TXT, PLOT = "report.json", "report.txt", "weights_by_label.png"


@dataclass
class RoutingProbes:
    """Parsed labelled prompts: labels [N, L] over the ``labelled`` objectives, groups [N] or None."""

    prompts: list[Conversation]
    labelled: list[str]
    labels: np.ndarray
    groups: list[str] | None
    labels_from: str


def _select_split(rows: list[dict], path: str, column: str, split: str | None) -> list[tuple[int, dict]]:
    """(1-based file row, row) of the rows to evaluate."""
    numbered = list(enumerate(rows, 1))
    if split is None:
        return numbered
    if not column_present(rows, column, source=path):
        raise PreforchError(f"{path}: setting split is {split!r} but the rows have no {column!r} column")
    kept = [(i, r) for i, r in numbered if str(r[column]) == split]
    if not kept:
        values = sorted({str(r[column]) for r in rows})
        raise PreforchError(f"{path}: no row has {column} = {split!r}; values: {values}")
    return kept


def _label_value(value, where: str) -> bool:
    if isinstance(value, bool) or value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return value.strip() == "1"
    raise PreforchError(f"{where}: expected 0 or 1, got {value!r}")


def load_routing_probes(path: str, objectives: list[str], config: EvaluateRoutingConfig) -> RoutingProbes:
    """Read labelled prompts; every label must name one of ``objectives``. Errors name the file, row and column."""
    rows = read_table(path)
    if not rows:
        raise PreforchError(f"{path}: no rows")
    kept = _select_split(rows, path, config.split_column, config.split)
    subset = [r for _, r in kept]
    prompts = [as_conversation(r.get(config.prompt_column), f"{path}: row {i}, column {config.prompt_column!r}")
               for i, r in kept]
    label_names = prefixed_columns(rows, LABEL_PREFIX, path)
    has_expected = column_present(subset, config.expected_column, source=path)
    if has_expected == bool(label_names):
        raise PreforchError(f"{path}: give either an {config.expected_column!r} column or label.<objective> columns "
                            f"(one of them, not both); columns: {list(rows[0])}")
    if has_expected:
        expected = []
        for i, r in kept:
            value = r[config.expected_column]
            if value not in objectives:
                raise PreforchError(f"{path}: row {i}, column {config.expected_column!r}: {value!r} is not one of the "
                                    f"objectives {objectives}")
            expected.append(value)
        labelled = [o for o in objectives if o in set(expected)]
        labels, source = labels_from_expected(expected, labelled), f"the {config.expected_column!r} column"
    else:
        unknown = [n for n in label_names if n not in objectives]
        if unknown:
            raise PreforchError(f"{path}: column {LABEL_PREFIX}{unknown[0]!r} names no objective of {objectives}")
        labelled = [o for o in objectives if o in label_names]
        labels = np.array([[_label_value(r.get(LABEL_PREFIX + o), f"{path}: row {i}, column '{LABEL_PREFIX}{o}'")
                            for o in labelled] for i, r in kept], dtype=bool)  # [N, L]
        source = "label.<objective> columns"
    groups = None
    if column_present(subset, config.group_column, source=path):
        groups = [str(r[config.group_column]) for r in subset]
    return RoutingProbes(prompts, labelled, labels, groups, source)


def _weights(config: EvaluateRoutingConfig):
    """(objectives, a function from prompts to weights [N, K], where the weights come from)."""
    if config.adapter:
        adapter = PreferenceAdapter.from_pretrained(config.adapter, trust_remote_code=config.trust_remote_code)
        return (adapter.objectives, lambda prompts: predict_once(adapter, prompts, config.batch_size),
                f"the adapter {config.adapter} (prompt view {adapter.config.prompt_view})")
    objectives = prefixed_columns(read_table(config.weights_file), WEIGHT_PREFIX, config.weights_file)
    return (objectives, lambda prompts: load_weights_file(config.weights_file, objectives, prompts),
            f"the weights file {config.weights_file}")


def run_routing_evaluation(config: EvaluateRoutingConfig) -> RoutingEvaluation:
    """Load, weigh, evaluate, write the report folder; returns the evaluation."""
    with staged_dir(config.output_dir, overwrite=config.overwrite) as tmp:
        objectives, weigh, weights_from = _weights(config)
        probes = load_routing_probes(config.data, objectives, config)
        start = time.perf_counter()
        weights = weigh(probes.prompts)  # [N, K]
        seconds = time.perf_counter() - start
        protocol = {"weights_from": weights_from, "data": config.data, "split": config.split,
                    "split_column": config.split_column, "labels_from": probes.labels_from,
                    "bootstrap": config.bootstrap, "weighing_seconds": round(seconds, 3)}
        ev = evaluate_routing(objectives, weights, probes.labels, probes.labelled,
                              prompts=[p.key() for p in probes.prompts], groups=probes.groups, pools=config.pools,
                              n_bins=config.calibration_bins, bootstrap=config.bootstrap, protocol=protocol)
        write_json(tmp / REPORT_JSON, {"kind": "routing_evaluation", "settings": dataclasses.asdict(config),
                                       "result": ev.to_dict()})
        write_text(tmp / REPORT_TXT, routing_text(ev))
        if config.plots:
            where = f" ({config.split_column} = {config.split})" if config.split else ""
            plot_routing(objectives, ev.labelled, weights, probes.labels, probes.groups, tmp / PLOT,
                         title=f"weights by label: {Path(config.data).name}{where}")
    return ev


def run(config) -> int:
    """`preforch evaluate routing`: evaluate, print the tables and what was written."""
    ev = run_routing_evaluation(config)
    out = config.output_dir
    print(routing_text(ev))
    print(f"wrote {out}/{REPORT_TXT}, {out}/{REPORT_JSON}" + (f" and {out}/{PLOT}" if config.plots else ""))
    if config.adapter:
        next_step("preforch evaluate adapter --config configs/evaluate_adapter.yaml"
                  + ("" if config.adapter == "runs/example" else f" --adapter {config.adapter}"))
    return 0
