"""Streaming (issue 13): server-sent events in the OpenAI chunk format, read by the official client, sync and
async; real token streaming for sampling, the chosen reply for best-of-N, the extension in the last chunk."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest

MESSAGES = [{"role": "user", "content": "tell me about the sea"}]


@pytest.fixture(scope="module")
def oai(live_server):
    return openai.OpenAI(base_url=f"{live_server}/v1", api_key="unused", max_retries=0, timeout=60)


def collect(stream) -> tuple[str, list]:
    chunks = list(stream)
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices), chunks


def test_sync_client_streams_sampled_tokens_equal_to_the_whole_reply(oai):
    settings = {"model": "tiny", "messages": MESSAGES, "max_tokens": 12, "seed": 4, "temperature": 0.9,
                "extra_body": {"strategy": "sample"}}
    whole = oai.chat.completions.create(**settings)
    text, chunks = collect(oai.chat.completions.create(stream=True, stream_options={"include_usage": True},
                                                       **settings))
    assert text == whole.choices[0].message.content  # same seed: the stream is the same reply
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) > 1  # token by token, not one piece at the end
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    last_choice = [c for c in chunks if c.choices][-1]
    assert last_choice.choices[0].finish_reason == whole.choices[0].finish_reason
    info = last_choice.model_extra["preference"]
    assert info["strategy"] == "sample" and info["weights"] == pytest.approx(whole.model_extra["preference"]["weights"])
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens


def test_async_client_streams_best_of_n_with_the_extension_last(live_server):
    async def run():
        client = openai.AsyncOpenAI(base_url=f"{live_server}/v1", api_key="unused", max_retries=0, timeout=60)
        stream = await client.chat.completions.create(
            model="tiny", messages=MESSAGES, max_tokens=6, seed=1, stream=True,
            extra_body={"strategy": "best_of_n", "best_of": 3, "preference": {"weights": {"concise": 1}}})
        chunks = [c async for c in stream]
        whole = await client.chat.completions.create(
            model="tiny", messages=MESSAGES, max_tokens=6, seed=1,
            extra_body={"strategy": "best_of_n", "best_of": 3, "preference": {"weights": {"concise": 1}}})
        await client.close()
        return chunks, whole

    chunks, whole = asyncio.run(run())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    info = chunks[-1].model_extra["preference"]
    assert info["strategy"] == "best_of_n" and info["best_of"] == 3 and info["mode"] == "fixed"
    assert info["reward"] == max(info["candidate_rewards"]) == whole.model_extra["preference"]["reward"]
    assert all("preference" not in (c.model_extra or {}) for c in chunks[:-1])


def test_raw_events_end_with_done(live_server):
    body = {"model": "m", "messages": MESSAGES, "max_tokens": 4, "stream": True, "strategy": "sample"}
    with httpx.stream("POST", f"{live_server}/v1/chat/completions", json=body, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    for line in lines[:-1]:
        assert json.loads(line.removeprefix("data: "))["object"] == "chat.completion.chunk"


def test_stream_honours_stop_strings_across_chunks(oai):
    settings = {"model": "tiny", "messages": MESSAGES, "max_tokens": 12, "seed": 5, "temperature": 0,
                "extra_body": {"strategy": "sample"}}
    whole = oai.chat.completions.create(**settings).choices[0].message.content
    words = whole.split()
    stop = words[len(words) // 2][:3] if len(words) > 1 else whole[1:3]
    expected = oai.chat.completions.create(stop=[stop], **settings)
    text, chunks = collect(oai.chat.completions.create(stop=[stop], stream=True, **settings))
    assert text == expected.choices[0].message.content == whole[: whole.find(stop)]
    assert [c for c in chunks if c.choices][-1].choices[0].finish_reason == "stop"


def test_stream_refusals_are_ordinary_errors(oai):
    with pytest.raises(openai.UnprocessableEntityError) as err:
        oai.chat.completions.create(model="tiny", messages=MESSAGES, stream=True, max_tokens=999)
    assert "max_tokens" in str(err.value)


def test_stop_watch_holds_back_a_possible_stop_prefix():
    from preforch.serve.streaming import StopWatch

    watch = StopWatch(("END",))
    assert watch.feed("  hello E") == "hello"  # leading space dropped; " E" could start "END"
    assert watch.feed("N") == " "
    assert watch.feed("D and more") == "" and watch.stopped
    plain = StopWatch(())
    assert plain.feed(" a b ") + plain.feed(" c  ") + plain.finish() == "a b  c"
