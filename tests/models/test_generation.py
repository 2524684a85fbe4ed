from __future__ import annotations

import pytest
import torch

from preforch.errors import PreforchError
from preforch.models.generation import GenerationConfig, format_prompts, generate, load_policy

PROMPTS = [
    "a long prompt about zebras and the savanna and the rain that falls there in the spring",
    "hi",
    "what is the capital of france",
    "tell me a story about a dog",
]


@pytest.fixture(scope="module")
def policy(tiny_policy_dir):
    return load_policy(str(tiny_policy_dir))


def test_shape_and_input_order(policy):
    model, tok = policy
    batched = generate(model, tok, PROMPTS, max_new_tokens=6, do_sample=False, batch_size=2)
    assert len(batched) == len(PROMPTS) and all(len(row) == 1 for row in batched)
    alone = [generate(model, tok, [p], max_new_tokens=6, do_sample=False)[0] for p in PROMPTS]
    # Length-sorted, left-padded batches give each prompt the reply it gets on its own, in input order.
    assert batched == alone
    assert len({row[0] for row in batched}) > 1


def test_num_return_sequences_and_seed(policy):
    model, tok = policy
    a = generate(model, tok, PROMPTS, max_new_tokens=5, num_return_sequences=3, seed=7, batch_size=3)
    b = generate(model, tok, PROMPTS, max_new_tokens=5, num_return_sequences=3, seed=7, batch_size=3)
    c = generate(model, tok, PROMPTS, max_new_tokens=5, num_return_sequences=3, seed=8, batch_size=3)
    assert [len(row) for row in a] == [3, 3, 3, 3]
    assert a == b
    assert a != c
    assert len(set(a[0])) > 1  # sampled replies differ within a prompt


def test_only_new_tokens_are_decoded(policy):
    model, tok = policy
    out = generate(model, tok, [PROMPTS[0]], max_new_tokens=3, do_sample=False)
    assert "zebras" not in out[0][0] and "assistant" not in out[0][0]
    assert len(tok(out[0][0], add_special_tokens=False)["input_ids"]) <= 6


def test_generation_leaves_rng_and_tokenizer_alone(policy):
    import torch

    model, tok = policy
    tok.padding_side = "right"
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    generate(model, tok, PROMPTS[:2], max_new_tokens=2)
    assert torch.equal(torch.rand(3), expected)
    assert tok.padding_side == "right"
    tok.padding_side = "left"


def test_chat_template_applied(policy):
    _, tok = policy
    texts, templated = format_prompts(tok, ["hello"], chat_template=True)
    assert templated and texts == ["user: hello\nassistant:"]
    assert format_prompts(tok, ["hello"], chat_template=False) == (["hello"], False)


def test_config_validation():
    with pytest.raises(PreforchError, match="num_return_sequences"):
        GenerationConfig(do_sample=False, num_return_sequences=2)
    with pytest.raises(PreforchError, match="top_p"):
        GenerationConfig(top_p=0.0)
    with pytest.raises(PreforchError, match="max_new_tokens"):
        GenerationConfig(max_new_tokens=0)


def test_load_policy_errors(tmp_path):
    with pytest.raises(PreforchError, match="not found"):
        load_policy(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(PreforchError, match="safetensors"):
        load_policy(str(tmp_path / "empty"))


def test_a_cancelled_prompt_stops_at_the_next_step_and_the_others_go_on(policy):
    from preforch.models.generation import generate_with_config

    model, tokenizer = policy
    config = GenerationConfig(max_new_tokens=12, num_return_sequences=2, batch_size=3, seed=4)
    prompts = ["first prompt", "second prompt here", "third"]
    flags = [lambda: False, lambda: True, lambda: False]  # the second one's client has gone
    out = generate_with_config(model, tokenizer, prompts, config, cancelled=flags)  # [3][2]

    def tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    assert max(tokens(t) for t in out[1]) <= 1  # one decoding step, then stopped
    assert min(tokens(t) for t in out[0] + out[2]) > 4  # the rest of the batch generated on
    assert out[0] == generate_with_config(model, tokenizer, prompts, config)[0]  # and as without the flags


def test_one_decoding_step_serves_batches_and_streams(policy):
    """decode_batch is the step generate_with_config runs per batch and the server streams through: a streamed
    one-prompt decode gives the batch's reply and prefill state, and its pieces are that reply."""
    from transformers import TextStreamer

    from preforch.models.generation import decode_batch, generate_with_prompt_states

    model, tok = policy
    config = GenerationConfig(max_new_tokens=8, temperature=0.9, seed=11, batch_size=1)
    whole = generate_with_prompt_states(model, tok, PROMPTS[:1], config, layer=-1)
    pieces = []

    class Pieces(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            pieces.append(text)

    texts, templated = format_prompts(tok, PROMPTS[:1], config.chat_template)
    streamed = decode_batch(model, tok, texts, config, add_special_tokens=not templated, layer=-1,
                            streamer=Pieces(tok, skip_prompt=True, skip_special_tokens=True))
    assert streamed.texts == whole.texts and whole.texts[0][0]
    assert "".join(pieces).strip() == streamed.texts[0][0]
    assert torch.equal(streamed.prompt_states, whole.prompt_states)
