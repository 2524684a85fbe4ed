"""The prompt state captured during generation equals CausalLMEncoder.encode (issue 7, target 4)."""

from __future__ import annotations

import pytest
import torch

from preforch.adapter.views import view_inputs
from preforch.conversation import as_conversations
from preforch.models.encoders import CausalLMEncoder
from preforch.models.generation import (
    GenerationConfig,
    generate_with_config,
    generate_with_prompt_states,
    load_policy,
)

PROMPTS = ["hi", "How do I bake bread at home without yeast?", "Tell me a joke about cats, please.", "ok"]


@pytest.mark.parametrize("layer", [-1, 1])
@pytest.mark.parametrize("g", [1, 2])
def test_prompt_states_equal_causal_lm_encoder(tiny_policy_path, layer, g):
    encoder = CausalLMEncoder(str(tiny_policy_path), layer=layer)
    # the adapter's 'context' view of a conversation is what the policy reads when it starts its reply
    expected = encoder.encode(view_inputs(as_conversations(PROMPTS), "context", encoder), batch_size=4)  # [N, D]
    model, tok = load_policy(str(tiny_policy_path))
    config = GenerationConfig(max_new_tokens=3, num_return_sequences=g, batch_size=3, seed=1)
    out = generate_with_prompt_states(model, tok, PROMPTS, config, layer=layer)
    assert out.prompt_states.shape == expected.shape
    torch.testing.assert_close(out.prompt_states, expected, atol=1e-4, rtol=1e-4)
    assert len(out.texts) == len(PROMPTS) and all(len(t) == g for t in out.texts)
    # capturing the states changes nothing about the replies
    assert out.texts == generate_with_config(model, tok, PROMPTS, config)
    # different prompts give different states (the test can fail)
    assert not torch.allclose(out.prompt_states[0], out.prompt_states[1])


def test_prompt_states_empty(tiny_policy_path):
    model, tok = load_policy(str(tiny_policy_path))
    out = generate_with_prompt_states(model, tok, [], GenerationConfig(max_new_tokens=2))
    assert out.texts == [] and tuple(out.prompt_states.shape) == (0, 32)
