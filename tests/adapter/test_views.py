"""The prompt view: one conversation gets one set of weights, whatever shape it arrives in; the context view keeps
the final user turn of long histories; an adapter runs with the view it was trained with."""

import numpy as np
import pytest

from preforch.adapter import AdapterConfig, PreferenceAdapter, train_adapter
from preforch.adapter.views import view_inputs, view_messages
from preforch.conversation import as_conversation
from preforch.data.load import to_preference_data
from preforch.types import PreferenceData

OBJECTIVES = ["harmless", "helpful"]
HISTORY = [{"role": "user", "content": "I need help with my garden."},
           {"role": "assistant", "content": "Sure, what would you like to grow?"},
           {"role": "user", "content": "Tomatoes. How often should I water them?"}]


def data(n: int = 120) -> PreferenceData:
    rng = np.random.default_rng(0)
    prompts, scores = [], []
    for i in range(n):
        harmful = i % 2 == 0
        text = f"how do I {'hurt' if harmful else 'help'} my neighbour {i}?"
        turns = [{"role": "user", "content": f"earlier question {i}"}, {"role": "assistant", "content": "ok"},
                 {"role": "user", "content": text}] if i % 3 == 0 else [{"role": "user", "content": text}]
        prompts.append(as_conversation(turns))
        scores.append([2.0, 0.0] if harmful else [0.0, 2.0])
    s = np.array(scores) + rng.normal(0, 0.3, (n, 2))
    return PreferenceData(prompts=prompts, chosen=["a"] * n, rejected=["b"] * n, objectives=OBJECTIVES,
                          scores_chosen=s, scores_rejected=s[:, ::-1].copy(), source="views")


def config(encoder_dir, **kw) -> AdapterConfig:
    return AdapterConfig(**{"encoder_path": str(encoder_dir), "hidden": 16, "epochs": 5, "dropout": 0.0,
                            "cache_embeddings": False, "test_fraction": 0.0, **kw})


@pytest.fixture(scope="module", params=["last_user", "context"])
def adapter(request, tiny_encoder_dir) -> PreferenceAdapter:
    return train_adapter(config(tiny_encoder_dir, prompt_view=request.param), data(), progress=False).adapter


def test_one_conversation_in_every_shape_gets_identical_weights(adapter):
    hh = "\n\nHuman: I need help with my garden.\n\nAssistant: Sure, what would you like to grow?" \
         "\n\nHuman: Tomatoes. How often should I water them?\n\nAssistant:"
    trl_row = to_preference_data([{"prompt": HISTORY, "chosen": [{"role": "assistant", "content": "x"}]}]).prompts
    shapes = [[hh], [HISTORY], trl_row, [as_conversation(HISTORY)]]
    weights = [adapter.predict_weights(s) for s in shapes]
    for w in weights[1:]:
        np.testing.assert_array_equal(w, weights[0])
    single = adapter.predict_weights(["Tomatoes. How often should I water them?"])
    if adapter.config.prompt_view == "last_user":  # the view ignores history: a plain question is the same prompt
        np.testing.assert_array_equal(single, weights[0])
    else:  # the history is read: a different input
        assert not np.array_equal(single, weights[0])


def test_context_view_keeps_the_final_user_turn_of_a_long_history(tiny_encoder_dir):
    from preforch.models.encoders import load_encoder

    long = [{"role": "user", "content": "word " * 2000}, {"role": "assistant", "content": "reply " * 500},
            {"role": "user", "content": "FINAL QUESTION about tomatoes"}]
    conv = as_conversation(long)
    for view, side in (("context", "left"), ("last_user", "right")):
        encoder = load_encoder("sentence", str(tiny_encoder_dir), 32, truncation_side=side)
        text = view_inputs([conv], view, encoder)[0]
        ids = encoder.tokenize([text])["input_ids"][0].tolist()
        kept = encoder.tokenizer.decode(ids, skip_special_tokens=True).lower()
        assert len(ids) == 32 or view == "last_user"
        assert "final question about tomatoes" in kept, (view, kept)
    assert view_messages(conv, "last_user") == [{"role": "user", "content": "FINAL QUESTION about tomatoes"}]


def test_the_saved_view_is_the_one_that_runs(adapter, tmp_path):
    adapter.save_pretrained(tmp_path / "a")
    loaded = PreferenceAdapter.from_pretrained(tmp_path / "a")
    assert loaded.config.prompt_view == adapter.config.prompt_view
    assert loaded.encoder.truncation_side == adapter.config.truncation_side
    np.testing.assert_allclose(loaded.predict_weights([HISTORY]), adapter.predict_weights([HISTORY]), atol=1e-6)
    inputs = loaded.encoder_inputs([as_conversation(HISTORY)])
    if loaded.config.prompt_view == "last_user":
        assert inputs == ["Tomatoes. How often should I water them?"]
    else:
        assert "garden" in inputs[0] and inputs[0].rstrip().endswith("How often should I water them?")
