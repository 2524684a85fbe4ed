"""The models behind the server, loaded once, and the work of each endpoint. No web framework here: the
FastAPI layer (``serve/app.py``) only maps requests to these methods and errors to status codes.

Every model call runs under one lock, so concurrent requests queue (at most ``max_queue`` wait; more are
refused as busy) and the tokenizers and models are never used from two threads at once.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Iterator

import numpy as np

from preforch.conversation import Conversation, as_conversation
from preforch.errors import PreforchError
from preforch.serve import schemas as s
from preforch.serve.config import ServeConfig
from preforch.serve.preference import (
    RequestError,
    apply_stop,
    as_named,
    check_preference,
    objective_order,
    resolve_request,
)
from preforch.weighting import scalarize

log = logging.getLogger(__name__)


class ServerBusy(Exception):
    """More requests are waiting than ``max_queue`` allows."""


class Unavailable(Exception):
    """The endpoint needs a model this server was started without."""


class ServeEngine:
    """Adapter (required), scorer (optional, needed for /v1/score and best-of-N), policy (optional, for chat)."""

    def __init__(self, config: ServeConfig, adapter, scorer=None, policy=None, policy_name: str | None = None) -> None:
        self.config = config
        self.adapter = adapter
        self.objectives = list(adapter.objectives)
        self.scorer = scorer
        self._columns = objective_order(list(scorer.objectives), self.objectives) if scorer is not None else None
        self.policy = policy
        self.policy_name = policy_name if policy is not None else None
        self.created = int(time.time())
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._waiting = 0

    @classmethod
    def load(cls, config: ServeConfig) -> ServeEngine:
        """Load the adapter (and its encoder), the scorers and the policy named by ``config``."""
        import torch

        from preforch.adapter import PreferenceAdapter
        from preforch.rewards.multi import MultiScorer
        from preforch.rewards.pipeline import build_scorers

        if config.threads is not None:
            torch.set_num_threads(config.threads)
        start = time.perf_counter()
        adapter = PreferenceAdapter.from_pretrained(config.adapter, device=config.device)
        _ = adapter.encoder  # load the prompt encoder now, not on the first request
        scorer = None
        if config.scorers:
            scorer = MultiScorer(build_scorers(config.scorers, device=config.device, source="serve scorers"),
                                 batch_size=config.score_batch_size)
        policy, policy_name = None, None
        if config.policy:
            from preforch.models.generation import load_policy
            from preforch.models.paths import resolve_policy_path

            policy_name = config.policy
            resolved = resolve_policy_path(config.policy)
            if resolved != config.policy:
                policy_name = f"{config.policy} ({resolved})"
            policy = load_policy(resolved, dtype=config.dtype, device=config.device,
                                 trust_remote_code=config.trust_remote_code)
        log.info("models loaded in %.1f s: adapter %s, objectives %s, policy %s", time.perf_counter() - start,
                 config.adapter, adapter.objectives, policy_name)
        return cls(config, adapter, scorer, policy, policy_name)

    # ---- shared -----------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the model lock; refuse when ``max_queue`` requests already wait or run."""
        with self._count_lock:
            if self._waiting >= self.config.max_queue:
                raise ServerBusy(f"{self._waiting} requests are queued (max_queue {self.config.max_queue})")
            self._waiting += 1
        try:
            with self._lock:
                yield
        finally:
            with self._count_lock:
                self._waiting -= 1

    def limits(self) -> dict[str, int]:
        c = self.config
        return {"max_prompt_chars": c.max_prompt_chars, "max_batch": c.max_batch, "max_best_of": c.max_best_of,
                "max_tokens": c.max_tokens, "max_queue": c.max_queue}

    def health(self) -> s.HealthResponse:
        return s.HealthResponse(
            status="ready", adapter=self.config.adapter, objectives=self.objectives,
            scorers=[sc.identity() for sc in self.scorer.scorers] if self.scorer is not None else [],
            policy=self.policy_name, model=self.config.model_name, strategy=self.config.strategy,
            best_of=self.config.best_of, limits=self.limits())

    def _check_texts(self, texts: list[str], loc: tuple[str | int, ...], suffix: tuple[str, ...] = ()) -> None:
        if len(texts) > self.config.max_batch:
            raise RequestError(loc, f"{len(texts)} items exceed max_batch {self.config.max_batch}")
        for i, text in enumerate(texts):
            if len(text) > self.config.max_prompt_chars:
                raise RequestError((*loc, i, *suffix), f"{len(text)} characters exceed max_prompt_chars "
                                                        f"{self.config.max_prompt_chars}")

    def _conversations(self, prompts: list, loc: tuple[str | int, ...],
                       suffix: tuple[str, ...] = ()) -> list[Conversation]:
        """Request prompts (texts or message lists) as checked conversations; errors name the item."""
        if len(prompts) > self.config.max_batch:
            raise RequestError(loc, f"{len(prompts)} items exceed max_batch {self.config.max_batch}")
        out = []
        for i, prompt in enumerate(prompts):
            value = prompt if isinstance(prompt, str) else [m.model_dump() for m in prompt]
            try:
                conversation = as_conversation(value, "prompt")
            except PreforchError as err:
                raise RequestError((*loc, i, *suffix), str(err)) from None
            out.append(conversation)
        self._check_texts([c.text() for c in out], loc, suffix)
        return out

    def _raw_scores(self, prompts: list[Conversation], responses: list[str]) -> np.ndarray:
        """Raw scores in the adapter's objective order. Shape: [N, K]."""
        if self.scorer is None:
            raise Unavailable("no scorers are loaded (setting 'scorers' is empty)")
        return self.scorer.score(prompts, responses)[:, self._columns]  # [N, K]

    # ---- /v1/weights and /v1/score ----------------------------------------------------------------------

    def weights(self, req: s.WeightsRequest) -> s.WeightsResponse:
        prompts = self._conversations(req.prompts, ("body", "prompts"))
        check_preference(req.preference, self.objectives)
        with self.exclusive():
            inferred = self.adapter.predict_weights(prompts)  # [N, K]
        used = resolve_request(req.preference, self.objectives, inferred)
        data = [s.PromptWeights(weights=as_named(w, self.objectives), inferred=as_named(i, self.objectives))
                for w, i in zip(used.weights, inferred)]
        return s.WeightsResponse(objectives=self.objectives, mode=used.mode, data=data)

    def score(self, req: s.ScoreRequest) -> s.ScoreResponse:
        prompts = self._conversations([p.prompt for p in req.pairs], ("body", "pairs"), ("prompt",))
        responses = [p.response for p in req.pairs]
        self._check_texts(responses, ("body", "pairs"), ("response",))
        check_preference(req.preference, self.objectives)
        if self.scorer is None:
            raise Unavailable("no scorers are loaded (setting 'scorers' is empty)")
        with self.exclusive():
            inferred = self.adapter.predict_weights(prompts)  # [N, K]
            raw = self._raw_scores(prompts, responses)  # [N, K]
        norm = self.adapter.normalizer.transform(raw)  # [N, K]
        used = resolve_request(req.preference, self.objectives, inferred)
        reward = scalarize(used.weights, norm)  # [N]
        data = [s.PairScore(raw=as_named(r, self.objectives), normalized=as_named(n, self.objectives),
                            weights=as_named(w, self.objectives), reward=float(v))
                for r, n, w, v in zip(raw, norm, used.weights, reward)]
        return s.ScoreResponse(objectives=self.objectives, mode=used.mode, data=data)

    # ---- /v1/chat/completions ---------------------------------------------------------------------------

    def chat(self, req: s.ChatCompletionRequest) -> s.ChatCompletionResponse:
        from preforch.models.generation import GenerationConfig, generate_with_config

        if self.policy is None:
            raise Unavailable("no policy is loaded (setting 'policy' is null)")
        plan = self._chat_plan(req)
        conversation = self._chat_conversation(req.messages)
        model, tokenizer = self.policy
        gen = GenerationConfig(max_new_tokens=plan["max_new"], num_return_sequences=plan["n"],
                               do_sample=plan["temperature"] > 0, temperature=plan["temperature"] or 1.0,
                               top_p=plan["top_p"], seed=plan["seed"], batch_size=1,
                               chat_template=self.config.chat_template, max_prompt_length=self.config.max_prompt_tokens)
        with self.exclusive():
            inferred = self.adapter.predict_weights([conversation])  # [1, K]
            used = resolve_request(req.preference, self.objectives, inferred)
            replies = generate_with_config(model, tokenizer, [conversation], gen)[0]
            candidates = [apply_stop(c, req.stop) for c in replies]
            texts = [c for c, _ in candidates]
            raw = self._raw_scores([conversation] * len(texts), texts) if plan["strategy"] == "best_of_n" else None
            prompt_tokens = _prompt_tokens(tokenizer, conversation, self.config.chat_template)
            # generate() returns text only: count by re-encoding, capped at the limit it generated under.
            reply_tokens = [min(len(tokenizer(t, add_special_tokens=False)["input_ids"]), plan["max_new"])
                            for t in texts]
        info = s.PreferenceInfo(objectives=self.objectives, mode=used.mode, weights=as_named(used.weights[0],
                                self.objectives), inferred=as_named(inferred[0], self.objectives),
                                blend=used.blend, strategy=plan["strategy"], best_of=plan["n"])
        chosen = 0
        if raw is not None:
            from preforch.align.best_of_n import rank_candidates

            norm, rewards, best = rank_candidates(raw[None], used.weights, self.adapter.normalizer)  # [1, G, K]
            chosen = int(best[0])  # ties go to the first candidate
            info.chosen, info.reward = chosen, float(rewards[0, chosen])
            info.scores = as_named(norm[0, chosen], self.objectives)
            info.raw_scores = as_named(raw[chosen], self.objectives)
            info.candidate_rewards = [float(r) for r in rewards[0]]
        text, stopped = candidates[chosen]
        done = "length" if not stopped and reply_tokens[chosen] >= plan["max_new"] else "stop"
        return s.ChatCompletionResponse(
            id=f"chatcmpl-{uuid.uuid4().hex}", created=int(time.time()), model=self.config.model_name,
            choices=[s.Choice(index=0, message=s.AssistantMessage(content=text), finish_reason=done)],
            usage=s.Usage(prompt_tokens=prompt_tokens, completion_tokens=reply_tokens[chosen],
                          total_tokens=prompt_tokens + reply_tokens[chosen]),
            system_fingerprint=f"preforch-{plan['strategy']}", preference=info)

    def _chat_plan(self, req: s.ChatCompletionRequest) -> dict:
        """Checked sampling settings of a chat request; every refusal names its field."""
        c = self.config
        if req.stream:
            raise RequestError(("body", "stream"), "streaming is not supported; send stream=false")
        if req.n is not None and req.n != 1:
            raise RequestError(("body", "n"), f"only n=1 is supported, got {req.n}")
        for name in ("max_completion_tokens", "max_tokens"):
            value = getattr(req, name)
            if value is not None and value > c.max_tokens:
                raise RequestError(("body", name), f"{value} exceeds the server's max_tokens {c.max_tokens}")
        max_new = req.max_completion_tokens or req.max_tokens or c.default_max_tokens
        strategy = req.strategy or ("best_of_n" if (req.best_of or 1) > 1 else c.strategy)
        if strategy == "sample" and (req.best_of or 1) > 1:
            raise RequestError(("body", "best_of"), f"best_of={req.best_of} needs strategy 'best_of_n'")
        n = (req.best_of or c.best_of) if strategy == "best_of_n" else 1
        if n > c.max_best_of:
            raise RequestError(("body", "best_of"), f"{n} exceeds the server's max_best_of {c.max_best_of}")
        if strategy == "best_of_n" and self.scorer is None:
            raise RequestError(("body", "strategy"), "best_of_n needs scorers and this server has none")
        temperature = c.temperature if req.temperature is None else req.temperature
        if temperature == 0 and n > 1:
            raise RequestError(("body", "temperature"), f"temperature 0 (greedy) gives {n} identical candidates; "
                                                        "use temperature > 0 for best_of_n")
        total = sum(len(m.text()) for m in req.messages)
        if total > c.max_prompt_chars:
            raise RequestError(("body", "messages"), f"{total} characters exceed max_prompt_chars "
                                                     f"{c.max_prompt_chars}")
        if not any(m.role == "user" for m in req.messages):
            raise RequestError(("body", "messages"), "at least one message must have role 'user'")
        check_preference(req.preference, self.objectives)
        seed = secrets.randbelow(2**31) if req.seed is None else req.seed % 2**31
        return {"max_new": max_new, "strategy": strategy, "n": n, "temperature": temperature,
                "top_p": c.top_p if req.top_p is None else req.top_p, "seed": seed}

    def _chat_conversation(self, messages: list[s.ChatMessage]) -> Conversation:
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
        from preforch.models.generation import format_prompts

        try:
            format_prompts(self.policy[1], [conversation], self.config.chat_template)
        except Exception as err:  # noqa: BLE001 - a template may refuse some role orders (e.g. two system turns)
            raise RequestError(("body", "messages"), f"the chat template refused these messages: "
                                                     f"{type(err).__name__}") from None
        return conversation


def _prompt_tokens(tokenizer, prompt: Conversation, chat_template: bool) -> int:
    """Prompt tokens as the generation helper encodes them (before its max_prompt_tokens cut)."""
    from preforch.models.generation import format_prompts

    texts, templated = format_prompts(tokenizer, [prompt], chat_template)
    return len(tokenizer(texts[0], add_special_tokens=not templated)["input_ids"])
