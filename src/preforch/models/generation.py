"""Loading a causal-LM policy and sampling replies from it: chat template, left padding, seeded,
length-sorted batches, only the new tokens decoded, results in input order. Shape: [N][G] texts."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer, StoppingCriteria, StoppingCriteriaList

from preforch.conversation import as_conversations
from preforch.errors import PreforchError
from preforch.models.batching import length_sorted_batches
from preforch.models.generation_config import GenerationConfig
from preforch.models.paths import model_load_error, resolve_device
from preforch.models.policy import resolve_policy_path
from preforch.types import PolicyDType

log = logging.getLogger(__name__)


class LoadedPolicy(NamedTuple):
    """A causal LM and its tokenizer (unpacks as ``model, tokenizer = load_policy(...)``)."""

    model: Any
    tokenizer: Any


def _torch_dtype(dtype: PolicyDType):
    table = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "auto": "auto"}
    if dtype not in table:
        raise PreforchError(f"dtype {dtype!r}: expected one of {list(table)}")
    return table[dtype]


def load_policy(path_or_embedded: str | None = None, dtype: PolicyDType = "float32", device: str = "cpu",
                trust_remote_code: bool = False) -> LoadedPolicy:
    """Load a policy: ``None`` / ``embedded:smollm2`` (converted on first use), a local folder, or a hub name.

    Weights load from safetensors only. A hub name is looked up only when the user configured one; with
    ``HF_HUB_OFFLINE=1`` only the local hub cache is consulted.
    """
    name = resolve_policy_path(path_or_embedded)
    local = Path(name).is_dir()
    if not local and (name.startswith((".", "/", "~")) or name.count("/") > 1):  # a path, not "org/model"
        raise PreforchError(f"{name}: policy folder not found")
    if local and not any(Path(name).glob("*.safetensors")):
        raise PreforchError(f"{name}: no *.safetensors weights in the policy folder (pickle weights are refused)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(name, local_files_only=local, use_safetensors=True,
                                                     dtype=_torch_dtype(dtype),
                                                     trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError) as err:
        raise model_load_error(err, name, "policy folder") from None
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedPolicy(model.to(resolve_device(device, "policy device")).eval(), tokenizer)


def format_prompts(tokenizer, prompts, chat_template: bool = True) -> tuple[list[str], bool]:
    """Prompts as the model sees them, and whether the chat template was applied.

    ``prompts``: conversations (or plain texts, HH texts, message lists, parsed into conversations). With
    ``chat_template`` and a tokenizer that has one, each conversation goes through the template with the
    assistant's generation prompt; without a template its canonical text is used.
    """
    conversations = as_conversations(prompts)
    if chat_template and getattr(tokenizer, "chat_template", None):
        texts = [tokenizer.apply_chat_template(c.to_messages(), tokenize=False, add_generation_prompt=True)
                 for c in conversations]
        return texts, True
    if chat_template:
        log.warning("the tokenizer has no chat template; prompts are used as plain text")
    return [c.text() for c in conversations], False


@contextlib.contextmanager
def _padding(tokenizer, side: str, truncation_side: str):
    old = (tokenizer.padding_side, tokenizer.truncation_side)
    tokenizer.padding_side, tokenizer.truncation_side = side, truncation_side
    try:
        yield
    finally:
        tokenizer.padding_side, tokenizer.truncation_side = old


def generate(model, tokenizer, prompts: list, max_new_tokens: int = 64, num_return_sequences: int = 1,
             do_sample: bool = True, temperature: float = 0.7, top_p: float = 0.9, seed: int = 0,
             batch_size: int = 8, chat_template: bool = True, progress: bool = False) -> list[list[str]]:
    """Sample ``num_return_sequences`` replies per prompt. Shape: [N][G] texts, in input order."""
    config = GenerationConfig(max_new_tokens=max_new_tokens, num_return_sequences=num_return_sequences,
                              do_sample=do_sample, temperature=temperature, top_p=top_p, seed=seed,
                              batch_size=batch_size, chat_template=chat_template)
    return generate_with_config(model, tokenizer, prompts, config, progress=progress)


#: One flag per prompt: ``cancelled[i]()`` true stops prompt i's rows at the next decoding step.
Cancelled = Sequence[Callable[[], bool]]


def generate_with_config(model, tokenizer, prompts: list, config: GenerationConfig, progress: bool = False,
                         cancelled: Cancelled | None = None) -> list[list[str]]:
    """:func:`generate` with a :class:`GenerationConfig`. Shape: [N][G] texts, in input order. A prompt whose
    ``cancelled`` flag turns true stops growing at the next decoding step (its texts are then cut short)."""
    return _generate(model, tokenizer, prompts, config, progress, layer=None, cancelled=cancelled).texts


@dataclass
class GenerationWithStates:
    """Replies and the hidden state of each prompt's last token from the prefill step.

    Shapes: texts [N][G]; prompt_states [N, D] (float32, CPU), in input order.
    """

    texts: list[list[str]]
    prompt_states: Any


def generate_with_prompt_states(model, tokenizer, prompts: list, config: GenerationConfig, layer: int = -1,
                                progress: bool = False, cancelled: Cancelled | None = None) -> GenerationWithStates:
    """:func:`generate_with_config`, also returning the prompt's last-token hidden state of ``layer``.

    The state comes from the prompt forward pass (prefill) that generation makes anyway, so a
    ``causal_lm`` preference adapter on the same policy costs only its MLP. It
    equals :meth:`preforch.models.encoders.CausalLMEncoder.encode` with the same chat formatting and
    truncation length: there the batch is right-padded and the last real token is picked; here it is
    left-padded, so the last position is every row's last real token, and generate's position ids skip
    the padding, so both see the same positions.
    """
    return _generate(model, tokenizer, prompts, config, progress, layer=layer, cancelled=cancelled)


def cancel_criteria(flags: Cancelled, repeat: int = 1):
    """A transformers stopping criterion that ends row j of a batch once ``flags[j // repeat]()`` is true (rows
    repeat each prompt ``repeat`` times, as ``num_return_sequences`` lays them out). generate() checks it after
    every decoding step and stops when every row has ended, so work nobody waits for ends within one step."""
    class Flags(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            done = [bool(flag()) for flag in flags for _ in range(repeat)]  # [B * G]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([Flags()])


def _generate(model, tokenizer, prompts: list, config: GenerationConfig, progress: bool,
              layer: int | None, cancelled: Cancelled | None = None) -> GenerationWithStates:
    """Sample replies; with ``layer`` set, keep that layer's last-prompt-token state of the prefill step."""
    if isinstance(prompts, str):
        raise PreforchError("generate: prompts must be a list (of conversations or texts), got a single string")
    if not prompts:
        return GenerationWithStates([], torch.empty(0, int(model.config.hidden_size)) if layer is not None else None)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    texts, templated = format_prompts(tokenizer, prompts, config.chat_template)
    # The template already holds the special tokens the model expects; plain text gets the tokenizer's own.
    add_special = not templated
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=add_special)["input_ids"]]
    batches = length_sorted_batches(lengths, config.batch_size)
    g = config.num_return_sequences
    out: list[list[str]] = [[] for _ in prompts]
    states = torch.empty(len(prompts), int(model.config.hidden_size)) if layer is not None else None  # [N, D]
    for b, idx in enumerate(tqdm(batches, desc="generate", disable=not progress, unit="batch")):
        stops = None if cancelled is None else cancel_criteria([cancelled[i] for i in idx], g)
        result = decode_batch(model, tokenizer, [texts[i] for i in idx], config, b, add_special, layer=layer,
                              stopping_criteria=stops)
        for j, i in enumerate(idx):
            out[i] = result.texts[j]
        if layer is not None:
            states[idx] = result.prompt_states  # [B, D]
    return GenerationWithStates(out, states)


def decode_batch(model, tokenizer, texts: list[str], config: GenerationConfig, batch_index: int = 0,
                 add_special_tokens: bool = False, layer: int | None = None, stopping_criteria=None,
                 streamer=None) -> GenerationWithStates:
    """One batch of formatted prompts (:func:`format_prompts`) through ``model.generate``: the decoding step that
    :func:`generate_with_config` runs per batch and the server's streamed replies run for one prompt.

    Left-padded and cut to the last ``max_prompt_length`` prompt tokens, seeded with ``config.seed * 1_000_003 +
    batch_index`` (the global RNG is left as it was), ``num_return_sequences`` (G) replies per prompt, stripped.
    ``stopping_criteria`` and ``streamer`` go to ``model.generate``. Shapes: texts [B][G]; prompt_states [B, D]
    (float32, CPU), the last prompt token's state of ``layer`` from the prefill step, or None without ``layer``.
    """
    kwargs = _generation_kwargs(model, tokenizer, config)
    if layer is not None:
        # output_hidden_states keeps every step's states, but after the prefill each step holds one token
        # per layer ([B*G, 1, D]), a few KB: cheaper than a second prompt forward pass.
        kwargs.update(output_hidden_states=True, return_dict_in_generate=True)
    if stopping_criteria is not None:
        kwargs["stopping_criteria"] = stopping_criteria
    if streamer is not None:
        kwargs["streamer"] = streamer
    g = config.num_return_sequences
    device = next(model.parameters()).device
    with _padding(tokenizer, "left", "left"), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed * 1_000_003 + batch_index)
        batch = tokenizer(texts, padding=True, truncation=True, max_length=config.max_prompt_length,
                          add_special_tokens=add_special_tokens, return_tensors="pt").to(device)
        with torch.inference_mode():
            # Only ids and mask: some tokenizers add token_type_ids, which causal LMs refuse.
            result = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **kwargs)
    ids = result.sequences if layer is not None else result  # [B * G, T + new]
    states = None
    if layer is not None:
        prefill = result.hidden_states[0][layer]  # [B * G, T, D]; rows repeat each prompt G times
        states = prefill[::g, -1].float().cpu()  # [B, D]; left padding: the last column is real
    replies = tokenizer.batch_decode(ids[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)  # [B * G]
    return GenerationWithStates([[r.strip() for r in replies[j * g:(j + 1) * g]] for j in range(len(texts))], states)


def _generation_kwargs(model, tokenizer, config: GenerationConfig) -> dict:
    kwargs: dict = {"max_new_tokens": config.max_new_tokens, "num_return_sequences": config.num_return_sequences,
                    "do_sample": config.do_sample, "pad_token_id": tokenizer.pad_token_id}
    if config.do_sample:
        kwargs.update(temperature=config.temperature, top_p=config.top_p, top_k=0)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    if getattr(model.generation_config, "eos_token_id", None) is None and tokenizer.eos_token_id is not None:
        kwargs["eos_token_id"] = tokenizer.eos_token_id
    return kwargs
