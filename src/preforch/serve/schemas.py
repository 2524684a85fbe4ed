"""Typed request and response bodies. The chat models follow the OpenAI Chat Completions API; preforch's
additions are the request fields ``preference``, ``strategy``, ``best_of`` and ``return_candidates`` and the
response field ``preference``, which the official client carries through ``extra_body`` and ``model_extra``.

Every text field refuses unpaired surrogates (valid JSON, invalid Unicode: tokenizers cannot encode them) and
every number field refuses NaN and ±Infinity, so such input ends in a 422 naming the field.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, FiniteFloat

Mode = Literal["auto", "adapter", "fixed", "blend"]
Strategy = Literal["sample", "best_of_n", "conditioned"]
#: At most this many stop strings, as in the OpenAI API.
MAX_STOP = 4


def _valid_unicode(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"text has an unpaired surrogate at position {err.start} (not valid Unicode)") from None
    return value


#: A string that is valid Unicode (JSON's \ud800 escapes decode to unpaired surrogates).
Text = Annotated[str, AfterValidator(_valid_unicode)]
Weights = list[FiniteFloat] | dict[Text, FiniteFloat]
CONFIDENCE_HELP = ("the adapter's confidence in w(x), 1 − its calibrated fallback share (null: the adapter was "
                   "saved without uncertainty)")
LAMBDA_HELP = "λ(x), the share of the fallback's default weights in the weights used (0 when the fallback is off)"


class Preference(BaseModel):
    """How a request's objective weights are chosen.

    - ``adapter`` (default when no weights are given; ``auto`` is an alias): the adapter's w(x) for the prompt.
    - ``fixed`` (default when weights are given): the user's weights, normalised to sum 1.
    - ``blend`` (default when weights and ``blend`` are given): λ·w_user + (1−λ)·w(x).

    ``weights`` is a list in objective order, or a mapping objective → weight (missing objectives count 0).
    """

    model_config = ConfigDict(extra="forbid")

    weights: Weights | None = Field(
        None, description="user weights: one per objective (in /health's order) or {objective: weight}")
    blend: FiniteFloat | None = Field(None, ge=0.0, le=1.0, description="λ in λ·w_user + (1−λ)·w(x)")
    mode: Mode | None = Field(None, description="adapter (alias auto) | fixed | blend; inferred from the other "
                                                "fields when absent")
    fallback: Literal["off", "on", "uniform"] | Weights | None = Field(
        None, description="the calibrated fallback (1−λ(x))·w(x) + λ(x)·w_default for this request: off | on "
                          "(w_default: your weights in mode blend, else the adapter's training-mean weights) | "
                          "uniform | default weights; absent = the server's setting 'fallback'")


class PromptMessage(BaseModel):
    """One turn of a prompt conversation."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "developer", "user", "assistant"]
    content: Text


#: A prompt: plain text (one user turn) or a conversation ending with a user turn.
Prompt = Text | list[PromptMessage]


class WeightsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompts: list[Prompt] = Field(..., min_length=1, description="prompts to weigh: texts, or message lists ending "
                                                                 "with a user turn")
    preference: Preference | None = Field(None, description="optional user weights to combine with w(x)")


class PromptWeights(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    weights: dict[str, float] = Field(..., description="the weights used: objective → weight, summing to 1")
    inferred: dict[str, float] = Field(..., description="the adapter's w(x)")
    confidence: float | None = Field(None, description=CONFIDENCE_HELP)
    fallback_share: float = Field(0.0, alias="lambda", description=LAMBDA_HELP)


ResolvedMode = Literal["adapter", "fixed", "blend"]


class WeightsResponse(BaseModel):
    objectives: list[str]
    mode: ResolvedMode
    data: list[PromptWeights]


class ScorePair(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: Prompt
    response: Text


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
    strategies: list[Strategy] = Field(..., description="strategies this server can run")
    best_of: int
    limits: dict[str, int]
    auth: bool = Field(..., description="whether /v1 routes need a bearer token")
    batching: dict[str, dict[str, int]] = Field(..., description="per lane (encoder, policy): model passes run, "
                                                               "requests and items served, the largest pass")


# ---- OpenAI Chat Completions ------------------------------------------------------------------------------


class TextPart(BaseModel):
    type: Literal["text"]
    text: Text


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Text | list[TextPart] | None = None
    name: Text | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = Field(False, description="send a last chunk with the usage and no choices")


class ChatCompletionRequest(BaseModel):
    """The Chat Completions fields preforch honours; other standard fields are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")

    model: Text = Field(..., description="any id; the reply names the served model")
    messages: list[ChatMessage] = Field(..., min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1, description="takes precedence over max_tokens")
    temperature: FiniteFloat | None = Field(None, ge=0.0, le=2.0, description="0 = greedy")
    top_p: FiniteFloat | None = Field(None, gt=0.0, le=1.0)
    n: int | None = Field(None, ge=1, description="choices; only 1 is supported")
    seed: int | None = Field(None, description="same seed, same request → same reply (a seeded request is "
                                               "generated alone, never in a batch)")
    stop: Text | Annotated[list[Text], Field(max_length=MAX_STOP)] | None = Field(None, description=f"cut the reply before the first stop string (at most "
                                                             f"{MAX_STOP})")
    stream: bool | None = Field(None, description="server-sent events in the OpenAI chunk format, ending in [DONE]")
    stream_options: StreamOptions | None = None
    user: Text | None = None
    preference: Preference | None = Field(None, description="preforch extension: how weights are chosen")
    strategy: Strategy | None = Field(None, description="preforch extension: sample | best_of_n | conditioned")
    best_of: int | None = Field(None, ge=1, description="preforch extension: N candidates for best_of_n")
    return_candidates: bool = Field(False, description="preforch extension: best_of_n also returns every "
                                                       "candidate with its scores in preference.candidates")

    def stop_list(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])


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


class Candidate(BaseModel):
    """One best-of-N candidate (with ``return_candidates``)."""

    content: str
    reward: float
    scores: dict[str, float] = Field(..., description="normalised scores")
    raw_scores: dict[str, float]


class PreferenceInfo(BaseModel):
    """preforch's extension of a chat completion: the weights used and, for best-of-N, the chosen reply's scores."""

    model_config = ConfigDict(populate_by_name=True)

    objectives: list[str]
    mode: ResolvedMode
    weights: dict[str, float] = Field(..., description="weights used to rank candidates (or to condition)")
    inferred: dict[str, float] = Field(..., description="the adapter's w(x) for the conversation")
    confidence: float | None = Field(None, description=CONFIDENCE_HELP)
    fallback_share: float = Field(0.0, alias="lambda", description=LAMBDA_HELP)
    inferred_from: Literal["encoder", "prefill"] = Field(
        "encoder", description="where w(x) came from: the adapter's own encoder pass, or the policy's prefill "
                               "state (a causal_lm adapter on the served policy)")
    blend: float | None = None
    strategy: Strategy
    best_of: int = Field(..., description="candidates generated (1 for sample and conditioned)")
    chosen: int = Field(0, description="index of the returned candidate")
    scores: dict[str, float] | None = Field(None, description="best_of_n: normalised scores of the reply")
    raw_scores: dict[str, float] | None = Field(None, description="best_of_n: raw scores of the reply")
    reward: float | None = Field(None, description="best_of_n: R of the reply")
    candidate_rewards: list[float] | None = Field(None, description="best_of_n: R of every candidate")
    candidates: list[Candidate] | None = Field(None, description="best_of_n with return_candidates: every "
                                                                 "candidate")
    targets: dict[str, float] | None = Field(None, description="conditioned: the desired scores put in the tags")
    floored: bool | None = Field(None, description="best_of_n with the server's floor on: true when no candidate "
                                                   "cleared the floor and the floor's reply was served instead")


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


# ---- streaming (chat.completion.chunk) --------------------------------------------------------------------


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: Literal["stop", "length"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    system_fingerprint: str | None = None
    usage: Usage | None = None
    preference: PreferenceInfo | None = Field(None, description="in the chunk that carries the finish_reason")
