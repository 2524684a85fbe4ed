"""The ``trl:`` mapping: every field of each route's TRL config settable from YAML and flags, unknown and
preforch-owned keys refused, values reaching TRL's config, the run hash, vLLM and tracker checks."""

import dataclasses
import importlib.util

import pytest
import yaml

from preforch.align import trl_settings
from preforch.align.config import ConditionedJob, DPOJob, GRPOJob, RLOOJob
from preforch.align.runs import RUN_CONFIG_NAME, prepare_run_dir, trl_args
from preforch.cli.main import build_parser
from preforch.config import build_config, overrides_from
from preforch.errors import PreforchError

ROUTES = {"grpo": GRPOJob, "rloo": RLOOJob, "dpo": DPOJob, "conditioned": ConditionedJob}
BASE = {"adapter": "runs/x"}


def settable(cls) -> list[dataclasses.Field]:
    """The TRL config fields a user sets through ``trl:`` (all but those preforch owns)."""
    own = {f.name for f in dataclasses.fields(cls)}
    trl_cls = trl_settings.trl_config_class(cls.__name__)
    return [f for f in dataclasses.fields(trl_cls)
            if f.init and f.name not in own and f.name not in trl_settings.OWNED_ELSEWHERE]


def default_of(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_every_field_of_the_trl_config_is_accepted_from_yaml(route, tmp_path):
    cls = ROUTES[route]
    fields = settable(cls)
    assert len(fields) > 80  # the whole config, not a list of favourites
    values = {}
    for f in fields:
        value = default_of(f)
        values[f.name] = value.value if hasattr(value, "value") else value  # enums as their YAML text
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump({**BASE, "trl": values}))
    job = build_config(cls, path)
    assert set(job.trl) == set(values)


def parse(route: str, *flags: str, config: str | None = None):
    cls = ROUTES[route]
    argv = ["align", route, *(["--config", config] if config else []), "--adapter", "runs/x", *flags]
    args = build_parser().parse_args(argv)
    return build_config(cls, args.config, overrides_from(args, cls))


def test_flags_set_fields_of_every_type_and_merge_over_the_yaml(tmp_path):
    path = tmp_path / "grpo.yaml"
    path.write_text(yaml.safe_dump({**BASE, "trl": {"top_p": 0.5, "vllm_mode": "server"}}))
    job = parse("grpo", "--trl", "use_vllm=true", "--trl", "vllm_mode=colocate", "--trl", "top_k=5",
                "--trl", "epsilon=0.3", "--trl", "generation_kwargs={min_p: 0.1}", "--trl", "deepspeed=zero3.json",
                config=str(path))
    assert job.trl == {"top_p": 0.5, "vllm_mode": "colocate", "use_vllm": True, "top_k": 5, "epsilon": 0.3,
                       "generation_kwargs": {"min_p": 0.1}, "deepspeed": "zero3.json"}
    assert parse("dpo", "--trl", "loss_type=[sigmoid, bco_pair]", "--trl", "label_smoothing=0.1").trl == {
        "loss_type": ["sigmoid", "bco_pair"], "label_smoothing": 0.1}
    with pytest.raises(SystemExit):
        parse("grpo", "--trl", "use_vllm")  # no '='


def test_values_reach_the_trl_config_and_preforch_wins():
    from trl import DPOConfig, GRPOConfig

    job = GRPOJob(**BASE, output_dir="runs/g", trl={"use_vllm": True, "vllm_mode": "colocate", "top_p": 0.8,
                                                    "epsilon_high": 0.28, "vllm_gpu_memory_utilization": 0.5})
    config = GRPOConfig(**trl_args(job, num_generations=job.num_generations, beta=job.beta))
    assert (config.use_vllm, config.vllm_mode, config.top_p, config.epsilon_high,
            config.vllm_gpu_memory_utilization) == (True, "colocate", 0.8, 0.28, 0.5)
    assert config.output_dir.endswith("checkpoints") and config.num_generations == 4
    # a key preforch owns never reaches TRL from the mapping, even if it slipped past the parse-time check
    assert trl_args(job, beta=0.3)["beta"] == 0.3
    assert trl_settings.merged_trl_args({"beta": 9.0, "top_k": 3}, {"beta": 0.3}) == {"beta": 0.3, "top_k": 3}
    dpo = DPOJob(**BASE, trl={"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 0.5]})
    config = DPOConfig(**trl_args(dpo, beta=dpo.beta))
    assert config.loss_type == ["sigmoid", "sft"] and config.loss_weights == [1.0, 0.5]


@pytest.mark.parametrize(("route", "trl", "message"), [
    ("grpo", {"use_vlm": True}, r"trl\.use_vlm is not a field of GRPOConfig; did you mean use_vllm"),
    ("grpo", {"learning_rate": 1.0}, r"trl\.learning_rate is set by preforch; use --learning-rate"),
    ("grpo", {"multi_objective_aggregation": "sum_then_normalize"}, r"use --aggregation"),
    ("grpo", {"report_to": ["wandb"]}, r"use --report-to"),
    ("grpo", {"output_dir": "x"}, r"trl\.output_dir is set by preforch; use --output-dir"),
    ("grpo", {"data_seed": 3}, r"trl\.data_seed is set by preforch; use --seed"),
    ("grpo", {"use_cpu": True}, r"trl\.use_cpu is set by preforch; use the machine"),
    ("grpo", {"top_p": "high"}, r"'trl\.top_p' is 'high', expected float"),
    ("rloo", {"normalize_advantages": True}, r"use --normalize-advantages"),
    ("dpo", {"use_vllm": True}, r"trl\.use_vllm is not a field of DPOConfig"),
    ("dpo", {"max_length": 9}, r"use --max-length"),
    ("conditioned", {"completion_only_loss": False}, r"conditioned SFT learns the response only"),
])
def test_unknown_and_owned_keys_are_refused(route, trl, message):
    with pytest.raises(PreforchError, match=f"^align config: .*{message}"):
        ROUTES[route](**BASE, trl=trl)


def test_the_hash_covers_the_mapping_and_a_resume_with_other_settings_is_refused(tmp_path):
    plain = GRPOJob(**BASE)
    assert GRPOJob(**BASE, trl={}).config_hash() == plain.config_hash()  # shipped configs keep their hash
    vllm = GRPOJob(**BASE, trl={"top_p": 0.9})
    assert vllm.config_hash() != plain.config_hash()
    out = str(tmp_path / "run")
    assert prepare_run_dir(GRPOJob(**BASE, output_dir=out)) is None
    assert (tmp_path / "run" / RUN_CONFIG_NAME).is_file()
    with pytest.raises(PreforchError, match=r"cannot resume.*settings differ: \['trl'\]"):
        prepare_run_dir(GRPOJob(**BASE, output_dir=out, resume=True, trl={"top_p": 0.9}))
    # run-control settings (trackers, logging cadence) may change on a resume: no checkpoint yet, nothing refused
    assert prepare_run_dir(GRPOJob(**BASE, output_dir=out, resume=True, logging_steps=5)) is None


def _pretend(monkeypatch, present: set[str], absent: set[str]):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name in present else None if name in absent else real(name, *a))


def test_vllm_without_the_package_or_without_a_gpu_is_a_clear_error(monkeypatch):
    import torch

    trl = {"use_vllm": True, "vllm_mode": "colocate"}
    job = GRPOJob(**BASE, trl=trl)  # parsing does not need vLLM (the docs' configs parse on any machine)
    _pretend(monkeypatch, set(), {"vllm"})
    with pytest.raises(PreforchError, match=r"^align config: trl\.use_vllm needs the vllm package"):
        trl_settings.check_run_environment(job.report_to, job.trl)
    _pretend(monkeypatch, {"vllm"}, set())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(PreforchError, match=r"^align config: trl\.use_vllm needs a CUDA GPU and none is visible"):
        trl_settings.check_run_environment(job.report_to, job.trl)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    trl_settings.check_run_environment(job.report_to, job.trl)  # both present: no complaint
    trl_settings.check_run_environment([], {"use_vllm": False})


def test_a_tracker_without_its_package_is_refused(monkeypatch):
    _pretend(monkeypatch, set(), {"tensorboard", "tensorboardX", "trackio"})
    for name in ("tensorboard", "trackio"):
        with pytest.raises(PreforchError, match=f"report_to '{name}' needs the {name} package"):
            trl_settings.check_run_environment([name], {})
    trl_settings.check_run_environment([], {})
