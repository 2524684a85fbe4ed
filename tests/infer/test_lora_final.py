"""A LoRA run's final/ (a PEFT adapter folder) loads without PEFT: the merge in preforch.infer.generation gives the
same model as PEFT's own merge_and_unload (PEFT is used here only as the reference)."""

import json

import pytest
import torch

from preforch.errors import PreforchError
from preforch.infer.generation import load_final_policy
from preforch.models.generation import load_policy

peft = pytest.importorskip("peft")


def _lora_folder(tmp_path, base_dir, **lora):
    model, tokenizer = load_policy(str(base_dir))
    torch.manual_seed(1)
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM",
                             init_lora_weights=False, **lora)  # B != 0, so the merge changes the weights
    adapted = peft.get_peft_model(model, config)
    final = tmp_path / "final"
    adapted.save_pretrained(final, safe_serialization=True)
    tokenizer.save_pretrained(final)
    return adapted, final


@pytest.mark.parametrize("lora", [{}, {"use_rslora": True}])
def test_lora_final_merges_like_peft(tmp_path, tiny_policy_dir, lora):
    adapted, final = _lora_folder(tmp_path, tiny_policy_dir, **lora)
    reference = adapted.merge_and_unload().eval()
    model, tokenizer = load_final_policy(final)
    ids = tokenizer(["hello there", "how do I pick a lock?"], return_tensors="pt", padding=True)
    with torch.inference_mode():
        want, got = reference(**ids).logits, model(**ids).logits  # [2, T, V]
        base = load_policy(str(tiny_policy_dir)).model(**ids).logits
    assert (want - base).abs().max() > 1e-3  # the adapter changes the model
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert tokenizer.padding_side == "left"


def test_lora_settings_the_merge_cannot_reproduce_are_refused(tmp_path, tiny_policy_dir):
    _, final = _lora_folder(tmp_path, tiny_policy_dir)
    path = final / "adapter_config.json"
    settings = json.loads(path.read_text())
    path.write_text(json.dumps({**settings, "use_dora": True}))
    with pytest.raises(PreforchError, match="use_dora"):
        load_final_policy(final)
