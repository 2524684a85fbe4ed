"""Typed request and response bodies. The chat models follow the OpenAI Chat Completions API; preforch's
additions are the request fields ``preference``, ``strategy`` and ``best_of`` and the response field
``preference``, which the official client carries through ``extra_body`` and ``model_extra``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Mode = Literal["auto", "adapter", "fixed", "blend"]
Strategy = Literal["sample", "best_of_n"]


class Preference(BaseModel):
    """How a request's objective weights are chosen.

    - ``adapter`` (default when no weights are given; ``auto`` is an alias): the adapter's w(x) for the prompt.
    - ``fixed`` (default when weights are given): the user's weights, normalised to sum 1.
    - ``blend`` (default when weights and ``blend`` are given): λ·w_user + (1−λ)·w(x).

    ``weights`` is a list in objective order, or a mapping objective → weight (missing objectives count 0).
    """

    model_config = ConfigDict(extra="forbid")

    weights: list[float] | dict[str, float] | None = Field(
        None, description="user weights: one per objective (in /health's order) or {objective: weight}")
    blend: float | None = Field(None, ge=0.0, le=1.0, description="λ in λ·w_user + (1−λ)·w(x)")
    mode: Mode | None = Field(None, description="adapter (alias auto) | fixed | blend; inferred from the other "
                                                "fields when absent")


class PromptMessage(BaseModel):
    """One turn of a prompt conversation."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "developer", "user", "assistant"]
    content: str


#: A prompt: plain text (one user turn) or a conversation ending with a user turn.
Prompt = str | list[PromptMessage]


class WeightsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompts: list[Prompt] = Field(..., min_length=1, description="prompts to weigh: texts, or message lists ending "
                                                                 "with a user turn")
    preference: Preference | None = Field(None, description="optional user weights to combine with w(x)")


class PromptWeights(BaseModel):
    weights: dict[str, float] = Field(..., description="the weights used: objective → weight, summing to 1")
    inferred: dict[str, float] = Field(..., description="the adapter's w(x)")


ResolvedMode = Literal["adapter", "fixed", "blend"]


class WeightsResponse(BaseModel):
    objectives: list[str]
    mode: ResolvedMode
    data: list[PromptWeights]


class ScorePair(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: Prompt
    response: str


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pairs: list[ScorePair] = Field(..., min_length=1, description="(prompt, response) pairs to score")
    preference: Preference | None = Field(None, description="weights for R (default: the adapter's w(x))")


class PairScore(BaseModel):
    raw: dict[str, float] = Field(..., description="raw scores, objective → score")
    normalized: dict[str, float] = Field(..., description="scores after the adapter's normaliser")
    weights: dict[str, float] = Field(..., description="weights used for R")
    reward: float = Field(..., description="R = Σ_k w_k · normalized_k")


class ScoreResponse(BaseModel):
    objectives: list[str]
    mode: ResolvedMode
    data: list[PairScore]


class HealthResponse(BaseModel):
    status: Literal["ready", "loading"]
    adapter: str | None
    objectives: list[str]
    scorers: list[str] = Field(..., description="identity of each loaded scorer")
    policy: str | None
    model: str
    strategy: Strategy
    best_of: int
    limits: dict[str, int]


# ---- OpenAI Chat Completions ------------------------------------------------------------------------------


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class ChatCompletionRequest(BaseModel):
    """The Chat Completions fields preforch honours; other standard fields are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(..., description="any id; the reply names the served model")
    messages: list[ChatMessage] = Field(..., min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1, description="takes precedence over max_tokens")
    temperature: float | None = Field(None, ge=0.0, le=2.0, description="0 = greedy")
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    n: int | None = Field(None, ge=1, description="choices; only 1 is supported")
    seed: int | None = Field(None, description="same seed, same request → same reply")
    stop: str | list[str] | None = Field(None, description="cut the reply before the first stop string")
    stream: bool | None = Field(None, description="streaming is not supported (422)")
    user: str | None = None
    preference: Preference | None = Field(None, description="preforch extension: how weights are chosen")
    strategy: Strategy | None = Field(None, description="preforch extension: sample | best_of_n")
    best_of: int | None = Field(None, ge=1, description="preforch extension: N candidates for best_of_n")


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: str | None = None


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]
    logprobs: None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class PreferenceInfo(BaseModel):
    """preforch's extension of a chat completion: the weights used and, for best-of-N, the chosen reply's scores."""

    objectives: list[str]
    mode: ResolvedMode
    weights: dict[str, float] = Field(..., description="weights used to rank candidates")
    inferred: dict[str, float] = Field(..., description="the adapter's w(x) for the conversation")
    blend: float | None = None
    strategy: Strategy
    best_of: int = Field(..., description="candidates generated (1 for sample)")
    chosen: int = Field(0, description="index of the returned candidate")
    scores: dict[str, float] | None = Field(None, description="best_of_n: normalised scores of the reply")
    raw_scores: dict[str, float] | None = Field(None, description="best_of_n: raw scores of the reply")
    reward: float | None = Field(None, description="best_of_n: R of the reply")
    candidate_rewards: list[float] | None = Field(None, description="best_of_n: R of every candidate")


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    system_fingerprint: str | None = None
    preference: PreferenceInfo


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "preforch"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
