"""The models behind the server, loaded once, and the work of /v1/weights and /v1/score. No web framework
here: the FastAPI layer (``serve/app.py``) maps requests to these methods and errors to status codes.

Models live on two lanes (:mod:`preforch.serve.batching`), each a worker thread: the *encoder* lane owns the
adapter (and its encoder) and the scorers, the *policy* lane owns the policy. Concurrent requests are gathered
into one pass per lane, and the two lanes run side by side (w(x) is computed while a reply is generated).
Chat completions are in :mod:`preforch.serve.chat`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from pathlib import Path

import numpy as np
import torch

from preforch.adapter import PreferenceAdapter
from preforch.conversation import Conversation, as_conversation
from preforch.errors import PreforchError
from preforch.infer.conditioning import CONDITIONING_NAME, Conditioning
from preforch.infer.generation import load_final_policy
from preforch.infer.prefill import prefill_layer
from preforch.models.generation import load_policy
from preforch.models.policy import resolve_policy_path
from preforch.provenance import check_scorers
from preforch.rewards.multi import MultiScorer
from preforch.rewards.registry import build_scorers
from preforch.serve import schemas as s
from preforch.serve.batching import Lane, ServerBusy
from preforch.serve.config import ServeConfig
from preforch.serve.errors import ServeError
from preforch.serve.preference import (
    RequestError,
    as_named,
    check_preference,
    resolve_request,
)
from preforch.weighting import WeightPrediction, objective_order, scalarize

log = logging.getLogger(__name__)


def unavailable(what: str) -> ServeError:
    """503 for an endpoint that needs a model this server was started without (not 'busy': retrying won't help)."""
    return ServeError(503, what, "unavailable", "model_not_loaded")


class ServeEngine:
    """Adapter (required), scorer (optional: /v1/score and best-of-N), policy (optional: chat), conditioning
    (optional: strategy conditioned)."""

    def __init__(self, config: ServeConfig, adapter, scorer=None, policy=None, policy_name: str | None = None,
                 conditioning=None) -> None:
        self.config = config
        self.adapter = adapter
        self.objectives = list(adapter.objectives)
        self.scorer = scorer
        self._columns = None if scorer is None else objective_order(
            scorer.objectives, self.objectives, f"the scorers give objectives {list(scorer.objectives)}, the adapter "
            f"weighs {self.objectives}; configure scorers with the adapter's objectives")
        self.policy = policy
        self.policy_name = policy_name if policy is not None else None
        self.conditioning = conditioning if policy is not None else None
        self.created = int(time.time())
        window = config.batch_window_ms / 1000.0
        self.encoder_lane = Lane("encoder", window, config.batch_max_items, config.max_queue, config.batching)
        self.policy_lane = (Lane("policy", window, config.batch_max_chats, config.max_queue, config.batching)
                            if policy is not None else None)
        self.prefill_layer = None
        if policy is not None and config.prefill_reuse:
            self.prefill_layer = prefill_layer(adapter, policy[0], policy[1], config.chat_template)

    @classmethod
    def load(cls, config: ServeConfig) -> ServeEngine:
        """Load the adapter (and its encoder), the scorers, the policy and its conditioning named by ``config``."""
        if config.threads is not None:
            torch.set_num_threads(config.threads)
        start = time.perf_counter()
        adapter = PreferenceAdapter.from_pretrained(config.adapter, device=config.device)
        scorer = None
        if config.scorers:
            scorers = build_scorers(config.scorers, device=config.device, source="serve scorers")
            check_scorers(config.adapter, config.scorers, scorers, "serve", config.allow_scorer_mismatch)
            scorer = MultiScorer(scorers, batch_size=config.score_batch_size)
        policy, policy_name, conditioning = None, None, None
        if config.policy:
            policy, policy_name, conditioning = _load_policy(config, adapter.objectives)
        elif config.strategy == "conditioned":
            raise PreforchError("serve: strategy 'conditioned' needs a conditioned policy (setting 'policy')")
        # one call each, so weights loaded on first use (the sentence encoder's) load before the port opens
        warm = as_conversation("warm up")
        adapter.predict_weights([warm])
        if scorer is not None:
            scorer.score([warm], ["ok"])
        log.info("models loaded in %.1f s: adapter %s, objectives %s, policy %s", time.perf_counter() - start,
                 config.adapter, adapter.objectives, policy_name)
        return cls(config, adapter, scorer, policy, policy_name, conditioning)

    def close(self) -> None:
        self.encoder_lane.close()
        if self.policy_lane is not None:
            self.policy_lane.close()

    # ---- shared -----------------------------------------------------------------------------------------

    def strategies(self) -> list[str]:
        out = ["sample"] if self.policy is not None else []
        if self.policy is not None and self.scorer is not None:
            out.append("best_of_n")
        if self.conditioning is not None:
            out.append("conditioned")
        return out

    def limits(self) -> dict[str, int]:
        c = self.config
        return {"max_prompt_chars": c.max_prompt_chars, "max_batch": c.max_batch, "max_best_of": c.max_best_of,
                "max_tokens": c.max_tokens, "max_queue": c.max_queue, "max_messages": c.max_messages,
                "max_body_bytes": c.max_body_bytes}

    def health(self, auth: bool = False) -> s.HealthResponse:
        return s.HealthResponse(
            status="ready", adapter=self.config.adapter, objectives=self.objectives,
            scorers=[sc.identity() for sc in self.scorer.scorers] if self.scorer is not None else [],
            policy=self.policy_name, model=self.config.model_name, strategy=self.config.strategy,
            strategies=self.strategies(), best_of=self.config.best_of, limits=self.limits(), auth=auth,
            batching={lane.name: dataclasses.asdict(lane.stats) for lane in (self.encoder_lane, self.policy_lane)
                      if lane is not None})

    def check_texts(self, texts: list[str], loc: tuple[str | int, ...], suffix: tuple[str, ...] = ()) -> None:
        if len(texts) > self.config.max_batch:
            raise RequestError(loc, f"{len(texts)} items exceed max_batch {self.config.max_batch}")
        for i, text in enumerate(texts):
            if len(text) > self.config.max_prompt_chars:
                raise RequestError((*loc, i, *suffix), f"{len(text)} characters exceed max_prompt_chars "
                                                        f"{self.config.max_prompt_chars}")

    def conversations(self, prompts: list, loc: tuple[str | int, ...],
                      suffix: tuple[str, ...] = ()) -> list[Conversation]:
        """Request prompts (texts or message lists) as checked conversations; errors name the item."""
        if len(prompts) > self.config.max_batch:
            raise RequestError(loc, f"{len(prompts)} items exceed max_batch {self.config.max_batch}")
        out = []
        for i, prompt in enumerate(prompts):
            if not isinstance(prompt, str) and len(prompt) > self.config.max_messages:
                raise RequestError((*loc, i, *suffix), f"{len(prompt)} messages exceed max_messages "
                                                        f"{self.config.max_messages}")
            value = prompt if isinstance(prompt, str) else [m.model_dump() for m in prompt]
            try:
                conversation = as_conversation(value, "prompt")
            except PreforchError as err:
                raise RequestError((*loc, i, *suffix), str(err)) from None
            out.append(conversation)
        self.check_texts([c.text() for c in out], loc, suffix)
        return out

    async def on_lane(self, lane: Lane | None, key, handler, items: list) -> list:
        """Submit a job to a lane and await its results (cancelled with the request)."""
        if lane is None:
            raise unavailable("no policy is loaded (setting 'policy' is null)")
        try:
            future = lane.submit(key, handler, items)
        except ServerBusy as err:
            raise ServeError(503, f"server busy: {err}", "server_busy", "queue_full",
                             headers={"Retry-After": "1"}) from None
        return await asyncio.wrap_future(future)

    # ---- encoder-lane passes (run on the lane's thread) ---------------------------------------------------

    def _weights_pass(self, conversations: list[Conversation]) -> list[tuple]:
        return _rows(self.adapter.predict(conversations))  # N × (w [K], confidence)

    def _mlp_pass(self, states: list) -> list[tuple]:
        return _rows(self.adapter.predict_from_embeddings_with_confidence(torch.stack(states)))  # MLP only

    def _score_pass(self, pairs: list[tuple[Conversation, str]]) -> list[np.ndarray]:
        raw = self.scorer.score([p for p, _ in pairs], [r for _, r in pairs])  # [N, K]
        return list(np.asarray(raw, dtype=np.float64)[:, self._columns])

    async def infer(self, conversations: list[Conversation]) -> WeightPrediction:
        """The adapter's w(x) [N, K] and confidence [N], gathered with other requests' prompts."""
        rows = await self.on_lane(self.encoder_lane, "weights", self._weights_pass, conversations)
        return _prediction(rows, self.adapter.default_weights)

    async def infer_from_states(self, states: list) -> WeightPrediction:
        """w(x) and confidence from prefill states: the adapter's MLP only. Shape: [N, D] → [N, K], [N]."""
        rows = await self.on_lane(self.encoder_lane, "mlp", self._mlp_pass, states)
        return _prediction(rows, self.adapter.default_weights)

    async def raw_scores(self, prompts: list[Conversation], responses: list[str]) -> np.ndarray:
        """Raw scores in the adapter's objective order, gathered with other requests' pairs. Shape: [N, K]."""
        if self.scorer is None:
            raise unavailable("no scorers are loaded (setting 'scorers' is empty)")
        rows = await self.on_lane(self.encoder_lane, "score", self._score_pass, list(zip(prompts, responses)))
        return np.stack(rows)

    # ---- /v1/weights and /v1/score ----------------------------------------------------------------------

    async def weights(self, req: s.WeightsRequest) -> s.WeightsResponse:
        prompts = self.conversations(req.prompts, ("body", "prompts"))
        check_preference(req.preference, self.objectives)
        inferred = await self.infer(prompts)  # [N, K] and [N]
        used = resolve_request(req.preference, self.objectives, inferred, fallback=self.config.fallback)
        data = [s.PromptWeights(weights=as_named(w, self.objectives), inferred=as_named(i, self.objectives),
                                confidence=_at(used.confidence, j), fallback_share=_at(used.fallback, j) or 0.0)
                for j, (w, i) in enumerate(zip(used.weights, inferred.weights))]
        return s.WeightsResponse(objectives=self.objectives, mode=used.mode, data=data)

    async def score(self, req: s.ScoreRequest) -> s.ScoreResponse:
        prompts = self.conversations([p.prompt for p in req.pairs], ("body", "pairs"), ("prompt",))
        responses = [p.response for p in req.pairs]
        self.check_texts(responses, ("body", "pairs"), ("response",))
        check_preference(req.preference, self.objectives)
        if self.scorer is None:
            raise unavailable("no scorers are loaded (setting 'scorers' is empty)")
        inferred, raw = await asyncio.gather(self.infer(prompts), self.raw_scores(prompts, responses))  # [N, K]
        norm = self.adapter.normalizer.transform(raw)  # [N, K]
        used = resolve_request(req.preference, self.objectives, inferred, fallback=self.config.fallback)
        reward = scalarize(used.weights, norm)  # [N]
        data = [s.PairScore(raw=as_named(r, self.objectives), normalized=as_named(n, self.objectives),
                            weights=as_named(w, self.objectives), reward=float(v))
                for r, n, w, v in zip(raw, norm, used.weights, reward)]
        return s.ScoreResponse(objectives=self.objectives, mode=used.mode, data=data)


def _rows(prediction: WeightPrediction) -> list[tuple]:
    """One (w [K], confidence or None) per prompt, so a gathered pass can hand each request its own rows."""
    conf = prediction.confidence
    return [(w, None if conf is None else float(conf[i])) for i, w in enumerate(prediction.weights)]


def _prediction(rows: list[tuple], default) -> WeightPrediction:
    """Rows of :func:`_rows` back into one prediction. Shapes: [N, K], [N] (None: no uncertainty saved)."""
    conf = None if rows[0][1] is None else np.array([c for _, c in rows], dtype=np.float64)
    return WeightPrediction(np.stack([w for w, _ in rows]), conf, default)


def _at(values, i: int) -> float | None:
    return None if values is None else float(values[i])


def _load_policy(config: ServeConfig, objectives: list[str]):
    """(policy, its name, its conditioning or None). A conditioning's objectives must be the adapter's, by name."""
    resolved = resolve_policy_path(config.policy)
    name = config.policy if resolved == config.policy else f"{config.policy} ({resolved})"
    folder = Path(resolved)
    if (folder / "adapter_config.json").is_file():  # a LoRA run's final/: merged onto its base model

        policy = load_final_policy(folder)
    else:
        policy = load_policy(resolved, dtype=config.dtype, device=config.device,
                             trust_remote_code=config.trust_remote_code)
    conditioning = None

    path = Path(config.conditioning) if config.conditioning else folder / CONDITIONING_NAME
    if config.conditioning or path.is_file():
        conditioning = Conditioning.load(path)
        objective_order(conditioning.objectives, objectives, f"serve: the conditioning tags of {path} name objectives "
                        f"{conditioning.objectives}, the adapter weighs {objectives}; the same names are needed")
    if config.strategy == "conditioned" and conditioning is None:
        raise PreforchError(f"serve: strategy 'conditioned' needs a conditioned policy: no {CONDITIONING_NAME} in "
                            f"{folder} (set 'conditioning' or train one with `preforch align conditioned`)")
    return policy, name, conditioning
