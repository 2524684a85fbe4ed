"""GPU tests (marker ``gpu``; deselected by default, skipped without CUDA): the optimised paths give the plain
paths' numbers on a CUDA device too. benchmarks/gpu_check.sh runs them."""

from __future__ import annotations

import pytest
import torch

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_shared_heads_on_cuda_equal_cpu(tiny_encoder_dir):
    from preforch.models.encoders import SentenceEncoder
    from preforch.rewards.heads import HeadsConfig, HeadSpec, SharedEncoderHeads

    prompts = ["hi there", "how do I cook rice?", "tell me a joke"]
    responses = ["hello", "Rinse it, then simmer it for 15 minutes.", "Why did the cat sit on the computer?"]
    config = HeadsConfig(heads=[HeadSpec("a"), HeadSpec("b", pooling="response_attention", features=["response", "prompt"])],
                         max_length=64, prompt_tokens=16)
    torch.manual_seed(0)
    cpu = SharedEncoderHeads(config, encoder=SentenceEncoder(str(tiny_encoder_dir), normalize=False))
    gpu = SharedEncoderHeads(config, encoder=SentenceEncoder(str(tiny_encoder_dir), normalize=False, device="cuda"))
    gpu.load_tensors(cpu.state_dict(), source="cpu heads")
    a, b = cpu.score(prompts, responses), gpu.score(prompts, responses)
    assert a.shape == (3, 2)
    assert abs(a - b).max() < 1e-3


def test_prompt_states_on_cuda_equal_encoder(tiny_policy_path):
    from preforch.models.encoders import CausalLMEncoder
    from preforch.models.generation import GenerationConfig, generate_with_prompt_states, load_policy

    prompts = ["hi", "How do I bake bread at home?", "ok then"]
    expected = CausalLMEncoder(str(tiny_policy_path), device="cuda").encode(prompts)
    model, tok = load_policy(str(tiny_policy_path), device="cuda")
    out = generate_with_prompt_states(model, tok, prompts, GenerationConfig(max_new_tokens=3, batch_size=2))
    torch.testing.assert_close(out.prompt_states, expected, atol=1e-3, rtol=1e-3)


def test_bf16_reward_model_tracks_fp32(tmp_path):
    import numpy as np
    from transformers import GPT2Config, GPT2ForSequenceClassification

    torch.manual_seed(0)
    model = GPT2ForSequenceClassification(GPT2Config(vocab_size=500, n_embd=128, n_layer=4, n_head=4, num_labels=1,
                                                     pad_token_id=0)).cuda().eval()
    ids = torch.randint(1, 500, (16, 64), device="cuda")
    with torch.inference_mode():
        fp32 = model(input_ids=ids).logits[:, 0].float().cpu().numpy()
        bf16 = model.to(torch.bfloat16)(input_ids=ids).logits[:, 0].float().cpu().numpy()
    assert np.corrcoef(fp32, bf16)[0, 1] > 0.95
