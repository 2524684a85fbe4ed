"""Settings of `preforch serve`: what to load, how to answer, and the limits that protect the worker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from preforch.config import field
from preforch.errors import PreforchError
from preforch.infer.floor import FloorSettings
from preforch.models.paths import DEFAULT_DEVICE, DEVICE_CHOICES, check_device
from preforch.types import PolicyDType
from preforch.weighting import FallbackSettings

Strategy = Literal["sample", "best_of_n", "conditioned"]
LogLevel = Literal["critical", "error", "warning", "info", "debug"]


@dataclass
class ServeConfig(FloorSettings, FallbackSettings):
    """`preforch serve`: an HTTP service for prompt-aware weights, scores and chat completions. ``fallback``
    (:class:`~preforch.weighting.FallbackSettings`) is the server's; a request's preference.fallback overrides it."""

    host: str = field("127.0.0.1", help="address to bind; loopback by default (0.0.0.0 exposes the server)")
    port: int = field(8000, help="TCP port (0 = any free port)")
    adapter: str = field("", help="trained adapter folder (config.json, model.safetensors, normalizer.json)")
    scorers: list[dict] = field([{"type": "builtin"}],
                                help="reward scorer specs (as in `preforch score`); their objectives must be the "
                                     "adapter's; [] = no scoring (then /v1/score and best-of-N are off)")
    allow_scorer_mismatch: bool = field(False, help="serve scorers other than the ones the adapter was trained "
                                                    "with (its provenance.json) behind the same objective names; "
                                                    "logged. Off: such scorers are refused at start")
    policy: str | None = field("embedded:smollm2", help="causal LM folder for /v1/chat/completions, or "
                                                        "embedded:smollm2; null = no chat endpoint")
    model_name: str = field("preforch", help="model id reported by /v1/models and in completions")
    device: str = field(DEFAULT_DEVICE, help=f"torch device for the adapter, the scorers and the policy: {DEVICE_CHOICES}")
    dtype: PolicyDType = field("float32", help="policy weights dtype")
    trust_remote_code: bool = field(False, help="allow custom model code from the policy folder")
    threads: int | None = field(None, help="torch CPU threads (null = torch's default)")
    strategy: Strategy = field("best_of_n", help="default chat strategy: plain sampling, best-of-N candidates "
                                                 "ranked by R under the request's weights, or conditioned (desired-"
                                                 "score tags from the weights; needs a conditioned policy)")
    conditioning: str | None = field(None, help="conditioning.json of a policy trained by `preforch align "
                                                "conditioned` (enables strategy conditioned); null = the policy "
                                                "folder's conditioning.json when it has one")
    prefill_reuse: bool = field(True, help="a causal_lm adapter on the served policy reads w(x) from "
                                           "generation's prefill state instead of its own encoder pass")
    best_of: int = field(4, help="default N for best-of-N")
    default_max_tokens: int = field(64, help="new tokens per reply when the request gives no max_tokens")
    temperature: float = field(0.7, help="default sampling temperature (0 = greedy)")
    top_p: float = field(0.9, help="default nucleus sampling mass")
    chat_template: bool = field(True, help="format messages with the policy tokenizer's chat template")
    max_prompt_tokens: int = field(1024, help="policy prompt tokens kept (from the end) when generating")
    max_prompt_chars: int = field(8000, help="limit: characters of one prompt (or of all chat messages); "
                                             "longer requests get a 422")
    max_batch: int = field(64, help="limit: prompts (or pairs) per /v1/weights or /v1/score request")
    max_best_of: int = field(8, help="limit: N of best-of-N")
    max_tokens: int = field(256, help="limit: max_tokens / max_completion_tokens of a chat request")
    max_messages: int = field(64, help="limit: messages of one chat request or one prompt")
    max_body_bytes: int = field(1_000_000, help="limit: bytes of a request body; larger bodies get a 413")
    max_queue: int = field(256, help="requests waiting for one model at once; more get a 503 with Retry-After")
    header_timeout_s: float = field(10.0, help="seconds a connection has to send a request's headers (from "
                                               "opening, or from the previous response); slower ones get a 408 "
                                               "and are closed")
    body_timeout_s: float = field(30.0, help="seconds a request has to send its body once the headers are in; "
                                             "slower ones get a 408 and are closed")
    keep_alive_s: int = field(5, help="seconds an idle kept-alive connection stays open")
    batching: bool = field(True, help="gather concurrent requests into one model pass (false = one request per "
                                      "pass, the old behaviour; for comparisons)")
    batch_window_ms: float = field(2.0, help="how long a pass waits for more requests to join it, in ms")
    batch_max_items: int = field(256, help="prompts (or pairs) in one gathered encoder / scorer pass, at most")
    batch_max_chats: int = field(8, help="chat requests with the same sampling settings in one generation pass, "
                                         "at most (seeded and streamed requests run alone)")
    score_batch_size: int = field(64, help="responses per scorer batch")
    api_key_env: str | None = field("PREFORCH_API_KEY", help="environment variable holding the bearer key that "
                                                             "/v1 routes require; unset or empty = no key")
    api_key_file: str | None = field(None, help="file holding the bearer key (overrides api_key_env); the key "
                                                "itself is never a setting or a flag")
    cors_origins: list[str] = field([], help="browser origins allowed to call the API (CORS), e.g. "
                                             "[http://localhost:3000]; [] = none (same origin only)")
    allowed_hosts: list[str] = field([], help="extra Host header names accepted when bound to loopback "
                                              "(127.0.0.1, localhost and ::1 always are)")
    playground: bool = field(True, help="serve the playground page at /")
    access_log: bool = field(True, help="log one line per request (method, path, status; never bodies)")
    log_level: LogLevel = field("info", help="server log level")

    def __post_init__(self) -> None:
        if not self.adapter:
            raise PreforchError("serve: setting 'adapter' is required (a folder written by `preforch adapter train`)")
        check_device(self.device, "serve: device")
        try:
            self.weighting()
            self.floor_rule()
        except PreforchError as err:
            raise PreforchError(f"serve: {err}") from None
        positive = ("best_of", "default_max_tokens", "max_prompt_tokens", "max_prompt_chars", "max_batch",
                    "max_best_of", "max_tokens", "max_queue", "score_batch_size", "max_messages", "max_body_bytes",
                    "batch_max_items", "batch_max_chats")
        bad = [f"{name}={getattr(self, name)!r} (expected >= 1)" for name in positive if getattr(self, name) < 1]
        if not 0 <= self.port <= 65535:
            bad.append(f"port={self.port!r} (expected 0..65535)")
        if not 0.0 <= self.temperature <= 2.0:
            bad.append(f"temperature={self.temperature!r} (expected 0..2)")
        if not 0.0 < self.top_p <= 1.0:
            bad.append(f"top_p={self.top_p!r} (expected in (0, 1])")
        if not 0.0 <= self.batch_window_ms <= 1000.0:
            bad.append(f"batch_window_ms={self.batch_window_ms!r} (expected 0..1000)")
        if any(not isinstance(o, str) or o == "*" or not o.startswith(("http://", "https://")) for o in self.cors_origins):
            bad.append(f"cors_origins={self.cors_origins!r} (expected full origins like http://localhost:3000; "
                       "'*' is refused)")
        for name in ("header_timeout_s", "body_timeout_s", "keep_alive_s"):
            if not 0 < getattr(self, name) <= 3600:
                bad.append(f"{name}={getattr(self, name)!r} (expected in (0, 3600])")
        if self.threads is not None and self.threads < 1:
            bad.append(f"threads={self.threads!r} (expected >= 1 or null)")
        if bad:
            raise PreforchError(f"serve: invalid setting(s) {', '.join(bad)}")
        if self.best_of > self.max_best_of:
            raise PreforchError(f"serve: best_of={self.best_of} exceeds max_best_of={self.max_best_of}")
        if self.default_max_tokens > self.max_tokens:
            raise PreforchError(f"serve: default_max_tokens={self.default_max_tokens} exceeds "
                                f"max_tokens={self.max_tokens}")
        if self.strategy == "best_of_n" and not self.scorers:
            raise PreforchError("serve: strategy 'best_of_n' needs scorers; configure some or use strategy 'sample'")
        for i, spec in enumerate(self.scorers, 1):
            if not isinstance(spec, dict) or "type" not in spec:
                raise PreforchError(f"serve: scorer {i} is {spec!r}; expected a mapping with a 'type'")
