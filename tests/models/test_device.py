"""One `device` setting, one meaning: every job's device setting defaults to auto, and every place that puts a
model on a device goes through models.paths.resolve_device (auto = cuda when there is one, else cpu)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from preforch.adapter.config import AdapterConfig
from preforch.align.parts import ScorersPart
from preforch.cli.main import build_parser
from preforch.errors import PreforchError
from preforch.models.encoders import SentenceEncoder
from preforch.models.paths import DEFAULT_DEVICE, resolve_device
from preforch.recipes.configs import GenerateJobConfig, ScoreConfig, TrainAdapterJob
from preforch.rewards.head_config import RMTrainConfig
from preforch.rewards.heads import HeadsConfig, HeadSpec, SharedEncoderHeads
from preforch.rewards.hf import HFScorerConfig
from preforch.rewards.registry import build_scorers
from preforch.serve.config import ServeConfig

HERE = "cuda" if torch.cuda.is_available() else "cpu"
SETTINGS = [AdapterConfig, TrainAdapterJob, ScoreConfig, GenerateJobConfig, RMTrainConfig, ServeConfig, ScorersPart,
            HFScorerConfig]


def test_auto_is_cuda_when_there_is_one_else_cpu():
    assert DEFAULT_DEVICE == "auto"
    assert resolve_device("auto") == resolve_device() == HERE
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(PreforchError, match=r"policy device toaster.*not a torch device"):
        resolve_device("toaster", "policy device")
    with pytest.raises(PreforchError, match=r"cuda:99.*not available"):
        resolve_device("cuda:99")


@pytest.mark.parametrize("config", SETTINGS, ids=lambda c: c.__name__)
def test_every_device_setting_defaults_to_auto_and_says_so(config):
    (device,) = [f for f in dataclasses.fields(config) if f.name == "device"]
    assert device.default == "auto"
    assert "auto (cuda if available, else cpu)" in device.metadata["help"]


def test_weights_command_device_defaults_to_auto():
    args = build_parser().parse_args(["weights", "--adapter", "a", "hi"])
    assert args.device == "auto"


def test_configs_whose_tensors_use_the_setting_hold_the_resolved_device():
    assert AdapterConfig().device == HERE
    assert RMTrainConfig(data="x.jsonl").device == HERE
    with pytest.raises(PreforchError, match="adapter config: device toaster"):
        AdapterConfig(device="toaster")
    with pytest.raises(PreforchError, match="serve: device toaster"):
        ServeConfig(adapter="a", device="toaster")
    with pytest.raises(PreforchError, match="generate: device toaster"):
        GenerateJobConfig(prompts=["hi"], device="toaster")


def test_encoders_take_auto(tiny_encoder_dir):
    assert SentenceEncoder(str(tiny_encoder_dir), device="auto").device == torch.device(HERE)


def test_a_heads_spec_with_device_auto_builds_and_scores(tmp_path, tiny_encoder_dir):
    """A scorer spec's own ``device: auto`` reached the encoder as torch.device('auto') and failed."""
    heads = SharedEncoderHeads(HeadsConfig(heads=[HeadSpec("harmless")], encoder=str(tiny_encoder_dir),
                                           max_length=64, prompt_tokens=16))
    heads.save_pretrained(tmp_path / "heads")
    (scorer,) = build_scorers([{"type": "heads", "path": str(tmp_path / "heads"), "device": "auto"}])
    assert scorer.device == torch.device(HERE)
    np.testing.assert_allclose(scorer.score(["a question"], ["an answer"]),
                               heads.score(["a question"], ["an answer"]), atol=1e-5)
