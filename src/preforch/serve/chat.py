"""Chat completions: the checked plan of a request, generation passes on the policy lane, and the three
strategies (plain sampling, best-of-N ranked by R under the request's weights, reward-conditioned sampling).

Generation requests with the same sampling settings are gathered into one batched pass; a seeded request runs
alone, so the same seed and request give the same reply. w(x) comes from the adapter's encoder pass on the
encoder lane, run while the reply is generated, or, for a ``causal_lm`` adapter on the served policy, from
generation's prefill state (:mod:`preforch.infer.prefill`).
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from preforch.adapter.views import view_messages
from preforch.conversation import Conversation, as_conversation
from preforch.errors import PreforchError
from preforch.infer.best_of_n import rank_with_floor
from preforch.infer.conditioning import desired_scores, tag_prompt, tag_weights
from preforch.infer.prefill import prefill_matches, prompt_token_count
from preforch.models.generation import (
    GenerationConfig,
    format_prompts,
    generate_with_config,
    generate_with_prompt_states,
)
from preforch.serve import schemas as s
from preforch.serve.preference import RequestError, apply_stop, as_named, check_preference, resolve_request
from preforch.weighting import ResolvedWeights


@dataclass(frozen=True)
class ChatPlan:
    """A request's checked settings, and its cancel flag (set when its client goes away: its generation stops at
    the next decoding step)."""

    strategy: str
    n: int
    max_new: int
    temperature: float
    top_p: float
    seed: int | None
    stop: tuple[str, ...]
    stream: bool
    include_usage: bool
    return_candidates: bool
    cancel: threading.Event = field(default_factory=threading.Event, compare=False, repr=False)

    def generation_key(self, layer: int | None):
        """Requests with equal keys may share a generation pass; a seeded request shares with none."""
        if self.seed is not None:
            return object()
        return ("generate", self.max_new, self.n, self.temperature, self.top_p, layer)

    def generation(self, config, n: int, batch_size: int) -> GenerationConfig:
        """The sampling settings of one generation pass (``config``: the server's); an unseeded plan draws a seed
        per pass. Temperature 0 = greedy."""
        return GenerationConfig(max_new_tokens=self.max_new, num_return_sequences=n, do_sample=self.temperature > 0,
                                temperature=self.temperature or 1.0, top_p=self.top_p,
                                seed=secrets.randbelow(2**31) if self.seed is None else self.seed,
                                batch_size=batch_size, chat_template=config.chat_template,
                                max_prompt_length=config.max_prompt_tokens)


@dataclass
class Generated:
    """One conversation's generation: replies (stop strings applied), token counts, prefill state."""

    texts: list[str]
    stopped: list[bool]
    prompt_tokens: int
    reply_tokens: list[int]
    state: object | None  # [D] tensor when the prefill state stands in for the adapter's encoder


def plan_chat(req: s.ChatCompletionRequest, engine) -> ChatPlan:
    """Checked sampling settings of a chat request; every refusal names its field."""
    c = engine.config
    if req.n is not None and req.n != 1:
        raise RequestError(("body", "n"), f"only n=1 is supported, got {req.n}")
    if len(req.messages) > c.max_messages:
        raise RequestError(("body", "messages"), f"{len(req.messages)} messages exceed max_messages {c.max_messages}")
    for name in ("max_completion_tokens", "max_tokens"):
        value = getattr(req, name)
        if value is not None and value > c.max_tokens:
            raise RequestError(("body", name), f"{value} exceeds the server's max_tokens {c.max_tokens}")
    max_new = req.max_completion_tokens or req.max_tokens or c.default_max_tokens
    strategy = req.strategy or ("best_of_n" if (req.best_of or 1) > 1 else c.strategy)
    if strategy != "best_of_n" and (req.best_of or 1) > 1:
        raise RequestError(("body", "best_of"), f"best_of={req.best_of} needs strategy 'best_of_n'")
    n = (req.best_of or c.best_of) if strategy == "best_of_n" else 1
    if n > c.max_best_of:
        raise RequestError(("body", "best_of"), f"{n} exceeds the server's max_best_of {c.max_best_of}")
    if strategy not in engine.strategies():
        need = {"best_of_n": "scorers", "conditioned": "a conditioned policy (conditioning.json)"}.get(strategy, "")
        raise RequestError(("body", "strategy"), f"{strategy} needs {need} and this server has none; it runs "
                                                 f"{engine.strategies()}")
    temperature = c.temperature if req.temperature is None else req.temperature
    if temperature == 0 and n > 1:
        raise RequestError(("body", "temperature"), f"temperature 0 (greedy) gives {n} identical candidates; "
                                                    "use temperature > 0 for best_of_n")
    total = sum(len(m.text()) for m in req.messages)
    if total > c.max_prompt_chars:
        raise RequestError(("body", "messages"), f"{total} characters exceed max_prompt_chars {c.max_prompt_chars}")
    if not any(m.role == "user" for m in req.messages):
        raise RequestError(("body", "messages"), "at least one message must have role 'user'")
    if req.return_candidates and strategy != "best_of_n":
        raise RequestError(("body", "return_candidates"), "return_candidates applies to strategy best_of_n")
    check_preference(req.preference, engine.objectives)
    return ChatPlan(strategy=strategy, n=n, max_new=max_new, temperature=float(temperature),
                    top_p=float(c.top_p if req.top_p is None else req.top_p),
                    seed=None if req.seed is None else req.seed % 2**31, stop=tuple(req.stop_list()),
                    stream=bool(req.stream), include_usage=bool(req.stream_options and
                                                                 req.stream_options.include_usage),
                    return_candidates=req.return_candidates)


def chat_conversation(messages: list[s.ChatMessage], engine) -> Conversation:
    """The request's messages as one conversation: what the policy continues, the adapter weighs and the
    scorers judge the reply against."""
    turns = []
    for i, m in enumerate(messages):
        if m.role == "tool":
            raise RequestError(("body", "messages", i, "role"), "tool messages are not supported")
        turns.append({"role": m.role, "content": m.text()})
    try:
        conversation = as_conversation(turns, "messages")
    except PreforchError as err:
        raise RequestError(("body", "messages"), f"{err} (the last message must be the user's)") from None

    try:  # rendering only (no tokenizer state): safe beside the policy lane
        format_prompts(engine.policy[1], [conversation], engine.config.chat_template)
    except Exception as err:  # noqa: BLE001 - a template may refuse some role orders (e.g. two system turns)
        raise RequestError(("body", "messages"), f"the chat template refused these messages: "
                                                 f"{type(err).__name__}") from None
    return conversation


# ---- the generation pass (runs on the policy lane) ------------------------------------------------------


def generation_pass(engine, plan: ChatPlan, layer: int | None,
                    items: list[tuple[Conversation, tuple, threading.Event]]) -> list:
    """Generate for every gathered conversation in one batch. Items: (conversation, stop strings, the request's
    cancel flag); a cancelled request's rows stop at the next decoding step, the others go on."""
    c = engine.config
    model, tokenizer = engine.policy
    conversations = [conv for conv, _, _ in items]
    cancelled = [flag.is_set for _, _, flag in items]
    gen = plan.generation(c, plan.n, len(items))
    states = None
    if layer is not None:
        out = generate_with_prompt_states(model, tokenizer, conversations, gen, layer=layer, cancelled=cancelled)
        replies, states = out.texts, out.prompt_states  # [N][G], [N, D]
    else:
        replies = generate_with_config(model, tokenizer, conversations, gen, cancelled=cancelled)  # [N][G]
    results = []
    for i, (conv, stop, _) in enumerate(items):
        cut = [apply_stop(text, list(stop)) for text in replies[i]]
        prompt_tokens = prompt_token_count(tokenizer, conv, c.chat_template)
        # generate() returns text only: count by re-encoding, capped at the limit it generated under.
        counts = [min(len(tokenizer(t, add_special_tokens=False)["input_ids"]), plan.max_new) for t, _ in cut]
        state = None
        if states is not None and prefill_matches(engine.adapter, conv, prompt_tokens, c.max_prompt_tokens):
            state = states[i]
        results.append(Generated([t for t, _ in cut], [b for _, b in cut], prompt_tokens, counts, state))
    return results


async def generate(engine, plan: ChatPlan, conversation: Conversation, layer: int | None) -> Generated:
    rows = await engine.on_lane(engine.policy_lane, plan.generation_key(layer),
                                lambda items: generation_pass(engine, plan, layer, items),
                                [(conversation, plan.stop, plan.cancel)])
    return rows[0]


def prefill_layer_for(engine, conversation: Conversation) -> int | None:
    """The prefill layer to capture for this conversation, or None when the adapter's own pass is needed."""
    if engine.prefill_layer is None:
        return None

    if view_messages(conversation, engine.adapter.config.prompt_view) != conversation.to_messages():
        return None  # e.g. prompt_view last_user with earlier turns: the encoder reads less than the prefill
    return engine.prefill_layer


async def weights_and_replies(engine, plan: ChatPlan, conversation: Conversation,
                              preference) -> tuple[ResolvedWeights, str, Generated, Conversation, dict | None]:
    """(weights used, where w(x) came from, the generation, the conversation generated from, tag targets)."""
    if plan.strategy == "conditioned":
        inferred = await engine.infer([conversation])  # [1, K]: the tags need the weights first
        used = resolve_request(preference, engine.objectives, inferred, fallback=engine.config.fallback)
        tagged, targets = condition(engine, conversation, used.weights[0])
        return used, "encoder", await generate(engine, plan, tagged, None), tagged, targets
    layer = prefill_layer_for(engine, conversation)
    if layer is None:
        inferred, gen = await asyncio.gather(engine.infer([conversation]), generate(engine, plan, conversation, None))
        source = "encoder"
    else:
        gen = await generate(engine, plan, conversation, layer)
        source = "prefill" if gen.state is not None else "encoder"
        inferred = (await engine.infer_from_states([gen.state]) if gen.state is not None
                    else await engine.infer([conversation]))
    used = resolve_request(preference, engine.objectives, inferred, fallback=engine.config.fallback)
    return used, source, gen, conversation, None


def condition(engine, conversation: Conversation, weights: np.ndarray) -> tuple[Conversation, dict]:
    """The conversation with desired-score tags from ``weights`` [K] (adapter order), and the targets by name."""
    cond = engine.conditioning
    # the tags may list the objectives in another order: matched by name, never by position
    ordered = tag_weights(np.asarray(weights)[None], engine.objectives, cond)  # [1, K] in the tags' order
    targets = desired_scores(ordered, cond)[0]  # [K]
    return (tag_prompt(conversation, cond.objectives, targets, cond.decimals),
            {name: round(float(v), cond.decimals) for name, v in zip(cond.objectives, targets)})


def preference_info(engine, plan: ChatPlan, used: ResolvedWeights, source: str, targets) -> s.PreferenceInfo:
    return s.PreferenceInfo(objectives=engine.objectives, mode=used.mode, weights=as_named(used.weights[0],
                            engine.objectives), inferred=as_named(used.inferred[0], engine.objectives),
                            inferred_from=source, blend=used.blend, strategy=plan.strategy, best_of=plan.n,
                            targets=targets, confidence=None if used.confidence is None else float(used.confidence[0]),
                            fallback_share=0.0 if used.fallback is None else float(used.fallback[0]))


async def rank(engine, plan: ChatPlan, conversation: Conversation, gen: Generated, used: ResolvedWeights,
               info: s.PreferenceInfo) -> int:
    """Score the candidates, fill the best-of-N fields of ``info``; returns the chosen index."""
    floor = engine.config.floor_rule()
    texts = floor.with_reply(gen.texts)
    scored = await engine.raw_scores([conversation] * len(texts), texts)  # [G(+1), K]
    raw, norm, rewards, best, floored = rank_with_floor(scored[None], used.weights, engine.adapter.normalizer, floor)
    if floored is not None:
        info.floored = bool(floored[0])
    raw = raw[0]  # [G, K]
    chosen = int(best[0])  # ties go to the first candidate
    names = engine.objectives
    info.chosen, info.reward = chosen, float(rewards[0, chosen])
    info.scores, info.raw_scores = as_named(norm[0, chosen], names), as_named(raw[chosen], names)
    info.candidate_rewards = [float(r) for r in rewards[0]]
    if plan.return_candidates:
        info.candidates = [s.Candidate(content=t, reward=float(rewards[0, j]), scores=as_named(norm[0, j], names),
                                       raw_scores=as_named(raw[j], names)) for j, t in enumerate(gen.texts)]
    return chosen


async def complete(engine, req: s.ChatCompletionRequest, plan: ChatPlan,
                   conversation: Conversation) -> s.ChatCompletionResponse:
    """A whole chat completion (also what a streamed best-of-N request sends once chosen)."""
    used, source, gen, _, targets = await weights_and_replies(engine, plan, conversation, req.preference)
    info = preference_info(engine, plan, used, source, targets)
    chosen = await rank(engine, plan, conversation, gen, used, info) if plan.strategy == "best_of_n" else 0
    text, stopped, tokens = gen.texts[chosen], gen.stopped[chosen], gen.reply_tokens[chosen]
    if info.floored:  # no candidate cleared the floor: the configured reply, counted as it is
        text, stopped = engine.config.floor_reply, True
        tokens = len(engine.policy[1](text, add_special_tokens=False)["input_ids"])
    done = "length" if not stopped and tokens >= plan.max_new else "stop"
    return s.ChatCompletionResponse(
        id=f"chatcmpl-{uuid.uuid4().hex}", created=int(time.time()), model=engine.config.model_name,
        choices=[s.Choice(index=0, message=s.AssistantMessage(content=text), finish_reason=done)],
        usage=s.Usage(prompt_tokens=gen.prompt_tokens, completion_tokens=tokens,
                      total_tokens=gen.prompt_tokens + tokens),
        system_fingerprint=f"preforch-{plan.strategy}", preference=info)
