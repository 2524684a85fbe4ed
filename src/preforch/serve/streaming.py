"""Streamed chat completions: server-sent events in the OpenAI ``chat.completion.chunk`` format, ending with
``data: [DONE]``.

Plain and conditioned sampling stream real tokens as the policy makes them (a transformers ``TextStreamer``
on the policy lane feeds an asyncio queue). Best-of-N streams the chosen reply once the candidates are scored.
The chunk that carries ``finish_reason`` also carries the ``preference`` extension; with
``stream_options.include_usage`` a last chunk with no choices carries the usage. Stop strings are honoured
across chunk borders (text that could begin a stop string is held back), and a client that goes away stops
the generation.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from transformers import TextStreamer

from preforch.conversation import Conversation
from preforch.infer.prefill import prefill_matches, prompt_token_count
from preforch.models.generation import cancel_criteria, decode_batch, format_prompts
from preforch.serve import schemas as s
from preforch.serve.batching import ServerBusy
from preforch.serve.chat import ChatPlan, complete, condition, preference_info, prefill_layer_for
from preforch.serve.errors import ServeError, log_internal
from preforch.serve.preference import apply_stop, resolve_request

_END = object()


@dataclass
class StreamResult:
    text: str  # the whole reply, stripped, before stop strings
    prompt_tokens: int
    state: object | None


def sse(payload: dict | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


def chunk(base: dict, delta: dict | None = None, finish: str | None = None, preference=None, usage=None,
          choices: bool = True) -> bytes:
    body = dict(base, choices=[{"index": 0, "delta": delta or {}, "finish_reason": finish, "logprobs": None}]
                if choices else [])
    if preference is not None:
        body["preference"] = preference.model_dump(mode="json")
    if usage is not None:
        body["usage"] = usage.model_dump(mode="json")
    return sse(body)


def stream_pass(engine, plan: ChatPlan, conversation: Conversation, layer: int | None, push,
                cancel: threading.Event) -> StreamResult:
    """One streamed generation on the policy lane; ``push(text)`` gets each decoded piece, then ``_END``.
    The same decoding step as :func:`preforch.models.generation.generate_with_config` on a one-prompt batch
    (:func:`~preforch.models.generation.decode_batch`), so a seeded request streams the reply it would return whole."""
    class Pieces(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            if text:
                push(text)

    c = engine.config
    model, tokenizer = engine.policy
    try:
        texts, templated = format_prompts(tokenizer, [conversation], c.chat_template)
        result = decode_batch(model, tokenizer, texts, plan.generation(c, 1, 1), add_special_tokens=not templated, layer=layer,
                              stopping_criteria=cancel_criteria([cancel.is_set]),
                              streamer=Pieces(tokenizer, skip_prompt=True, skip_special_tokens=True))
        text = result.texts[0][0]
        prompt_tokens = prompt_token_count(tokenizer, conversation, c.chat_template)
        state = None
        if layer is not None and prefill_matches(engine.adapter, conversation, prompt_tokens, c.max_prompt_tokens):
            state = result.prompt_states[0]  # [D]
        return StreamResult(text, prompt_tokens, state)
    finally:
        push(_END)


class StopWatch:
    """Emits streamed text without leading/trailing whitespace (as the whole reply is stripped) and without
    anything from the first stop string on; text that could start a stop string waits for the next piece."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = [x for x in stops if x]
        self.hold = max((len(x) for x in self.stops), default=1) - 1
        self.buffer, self.sent, self.stopped = "", 0, False

    def feed(self, piece: str) -> str:
        self.buffer = (self.buffer + piece) if self.buffer else piece.lstrip()
        cuts = [self.buffer.find(x) for x in self.stops if x in self.buffer]
        if cuts:
            self.stopped = True
            return self._emit(min(cuts))
        return self._emit(min(len(self.buffer) - self.hold, len(self.buffer.rstrip())))

    def finish(self) -> str:
        return "" if self.stopped else self._emit(len(self.buffer.rstrip()))

    def _emit(self, upto: int) -> str:
        if upto <= self.sent:
            return ""
        out, self.sent = self.buffer[self.sent:upto], upto
        return out


async def stream_chat(engine, req: s.ChatCompletionRequest, plan: ChatPlan,
                      conversation: Conversation) -> AsyncIterator[bytes]:
    """Start the work (errors before this returns become ordinary HTTP errors) and return the event stream."""
    base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": engine.config.model_name, "system_fingerprint": f"preforch-{plan.strategy}"}
    if plan.strategy == "best_of_n":
        done = await complete(engine, req, plan, conversation)
        return _whole(base, done, plan)
    conditioned, weights_task, layer = None, None, None
    if plan.strategy == "conditioned":  # the tags need the weights first
        used = resolve_request(req.preference, engine.objectives, await engine.infer([conversation]),
                               fallback=engine.config.fallback)
        tagged, targets = condition(engine, conversation, used.weights[0])
        conditioned = (used, targets)
    else:
        layer = prefill_layer_for(engine, conversation)
        if layer is None:
            weights_task = asyncio.ensure_future(engine.infer([conversation]))
    loop, queue, cancel = asyncio.get_running_loop(), asyncio.Queue(), plan.cancel

    def push(item) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, item)

    try:
        prompt = tagged if conditioned else conversation
        future = engine.policy_lane.call(lambda: stream_pass(engine, plan, prompt, layer, push, cancel))
    except ServerBusy as err:
        if weights_task is not None:
            weights_task.cancel()
        raise ServeError(503, f"server busy: {err}", "server_busy", "queue_full", headers={"Retry-After": "1"}) from None
    return _tokens(engine, req, plan, base, queue, future, cancel, weights_task, conversation, conditioned)


async def _whole(base: dict, done: s.ChatCompletionResponse, plan: ChatPlan) -> AsyncIterator[bytes]:
    choice = done.choices[0]
    yield chunk(base, {"role": "assistant", "content": ""})
    if choice.message.content:
        yield chunk(base, {"content": choice.message.content})
    yield chunk(base, {}, choice.finish_reason, preference=done.preference)
    if plan.include_usage:
        yield chunk(base, usage=done.usage, choices=False)
    yield sse("[DONE]")


async def _tokens(engine, req, plan: ChatPlan, base: dict, queue: asyncio.Queue, future, cancel: threading.Event,
                  weights_task, conversation: Conversation, conditioned) -> AsyncIterator[bytes]:
    watch = StopWatch(plan.stop)
    try:
        yield chunk(base, {"role": "assistant", "content": ""})
        while True:
            piece = await queue.get()
            if piece is _END:
                break
            if watch.stopped:
                continue
            text = watch.feed(piece)
            if watch.stopped:
                cancel.set()  # the rest would be cut anyway
            if text:
                yield chunk(base, {"content": text})
        tail = watch.finish()
        if tail:
            yield chunk(base, {"content": tail})
        result: StreamResult = (await asyncio.wrap_future(future))[0]
        used, targets, source = *(conditioned or (None, None)), "encoder"
        if used is None:
            if weights_task is not None:
                inferred = await weights_task
            elif result.state is not None:
                inferred, source = await engine.infer_from_states([result.state]), "prefill"
            else:  # the prompt was too long for the prefill state to stand in
                inferred = await engine.infer([conversation])
            used = resolve_request(req.preference, engine.objectives, inferred, fallback=engine.config.fallback)
        text, stopped = apply_stop(result.text, list(plan.stop))
        count = await _count_tokens(engine, text, plan.max_new)
        finish = "length" if not stopped and count >= plan.max_new else "stop"
        info = preference_info(engine, plan, used, source, targets)
        yield chunk(base, {}, finish, preference=info)
        if plan.include_usage:
            yield chunk(base, usage=s.Usage(prompt_tokens=result.prompt_tokens, completion_tokens=count,
                                            total_tokens=result.prompt_tokens + count), choices=False)
        yield sse("[DONE]")
    except asyncio.CancelledError:
        raise
    except Exception as err:  # noqa: BLE001 - the status line is sent: report in-band, as OpenAI does
        log_internal(err, "/v1/chat/completions stream")
        kind = type(err).__name__
        yield sse({"error": {"message": f"internal error ({kind})", "type": "server_error", "param": None,
                             "code": None}})
    finally:
        cancel.set()
        future.cancel()
        if weights_task is not None and not weights_task.done():
            weights_task.cancel()


async def _count_tokens(engine, text: str, cap: int) -> int:
    """Reply tokens as the whole-reply path counts them (re-encoded on the policy lane, capped)."""
    tokenizer = engine.policy[1]
    rows = await engine.on_lane(engine.policy_lane, object(), lambda items: [
        min(len(tokenizer(t, add_special_tokens=False)["input_ids"]), cap) for t in items], [text])
    return rows[0]
