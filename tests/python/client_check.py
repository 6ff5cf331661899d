#!/usr/bin/env python3
"""Drive a running modelgate with the official OpenAI Python SDK.

Run by cmd/modelgate's TestPythonSDKAgainstRealNacos against mock model
servers registered in Nacos; it can also be pointed at any modelgate:

    .cache/pyenv/bin/python tests/python/client_check.py \\
        --base-url http://127.0.0.1:8080/v1 --chat-model chat --embed-model embed

Prints one line per check ("ok   NAME: detail") and stops at the first
failure ("FAIL NAME: why") with exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import traceback
from typing import Any, Callable

import openai


class CheckFailed(Exception):
    pass


def expect(cond: bool, message: str) -> None:
    if not cond:
        raise CheckFailed(message)


def usage_of(chunk: Any) -> Any:
    """The chunk's usage object, or None when it has none (absent or null)."""
    return getattr(chunk, "usage", None)


class Checks:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.client = openai.OpenAI(
            base_url=args.base_url,
            api_key="sk-test",
            max_retries=0,
            timeout=args.timeout,
        )

    # --- chat -------------------------------------------------------------

    def chat(self) -> str:
        r = self.client.chat.completions.create(
            model=self.args.chat_model,
            messages=[{"role": "user", "content": "hello there"}],
        )
        expect(r.object == "chat.completion", f"object is {r.object!r}, want 'chat.completion'")
        expect(len(r.choices) == 1, f"{len(r.choices)} choices, want 1")
        content = r.choices[0].message.content
        expect(bool(content), f"empty message content: {r.choices[0].message!r}")
        expect(r.choices[0].finish_reason is not None, "no finish_reason")
        expect(r.usage is not None, "no usage in a non-stream reply")
        expect(r.usage.total_tokens > 0, f"usage.total_tokens is {r.usage.total_tokens}, want > 0")
        expect(
            r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens,
            f"usage does not add up: {r.usage!r}",
        )
        return f"{content!r}, usage.total_tokens={r.usage.total_tokens}"

    def _chat_stream(self, **extra: Any) -> list[Any]:
        stream = self.client.chat.completions.create(
            model=self.args.chat_model,
            messages=[{"role": "user", "content": "hello there"}],
            stream=True,
            **extra,
        )
        with stream:
            return list(stream)

    def _check_content_chunks(self, chunks: list[Any]) -> str:
        """Checks the choice chunks of a chat stream; returns the text."""
        with_choices = [c for c in chunks if c.choices]
        expect(with_choices, f"no chunk with choices among {len(chunks)} chunks")
        for c in chunks:
            expect(c.object == "chat.completion.chunk", f"chunk object is {c.object!r}")
        text = "".join(c.choices[0].delta.content or "" for c in with_choices)
        expect(text != "", "the concatenated delta content is empty")
        pieces = sum(1 for c in with_choices if c.choices[0].delta.content)
        if self.args.stream_chunks:
            expect(
                pieces == self.args.stream_chunks,
                f"{pieces} chunks carried content, want {self.args.stream_chunks} (events merged or lost?)",
            )
        finish = with_choices[-1].choices[0].finish_reason
        expect(finish is not None, "the stream ended without a chunk carrying finish_reason")
        return text

    def chat_stream(self) -> str:
        chunks = self._chat_stream()
        text = self._check_content_chunks(chunks)
        leaked = [i for i, c in enumerate(chunks) if usage_of(c) is not None]
        expect(
            not leaked,
            f"chunk(s) {leaked} of {len(chunks)} carry usage although the client did not ask "
            f"for it (no stream_options): {usage_of(chunks[leaked[0]]) if leaked else ''!r}",
        )
        usage_only = [i for i, c in enumerate(chunks) if not c.choices]
        expect(not usage_only, f"chunk(s) {usage_only} have no choices (a usage-only chunk leaked?)")
        return f"{len(chunks)} chunks, {text!r}, no usage chunk"

    def chat_stream_usage(self) -> str:
        chunks = self._chat_stream(stream_options={"include_usage": True})
        self._check_content_chunks(chunks)
        with_usage = [i for i, c in enumerate(chunks) if usage_of(c) is not None]
        expect(with_usage, f"none of {len(chunks)} chunks carries usage with include_usage=True")
        expect(
            with_usage == [len(chunks) - 1],
            f"usage is on chunk(s) {with_usage}, want only on the last one ({len(chunks) - 1})",
        )
        last = chunks[-1]
        expect(last.choices == [], f"the usage chunk has choices {last.choices!r}, want []")
        expect(last.usage.total_tokens > 0, f"usage.total_tokens is {last.usage.total_tokens}, want > 0")
        return f"{len(chunks)} chunks, final usage.total_tokens={last.usage.total_tokens}"

    def chat_stream_raw(self) -> str:
        """The wire form, through the SDK's raw streaming response: the SDK
        itself stops quietly at the end of the body, [DONE] or not."""
        with self.client.chat.completions.with_streaming_response.create(
            model=self.args.chat_model,
            messages=[{"role": "user", "content": "hello there"}],
            stream=True,
        ) as resp:
            expect(resp.status_code == 200, f"status {resp.status_code}")
            ctype = resp.headers.get("content-type", "")
            expect(ctype.startswith("text/event-stream"), f"content-type {ctype!r}")
            data = [line[len("data:"):].strip() for line in resp.iter_lines() if line.startswith("data:")]
        expect(data, "no data events")
        expect(data[-1] == "[DONE]", f"the last event is {data[-1]!r}, want [DONE]")
        expect(data.count("[DONE]") == 1, f"[DONE] appears {data.count('[DONE]')} times")
        return f"{len(data)} data events, ends with [DONE]"

    def chat_stream_async(self) -> str:
        async def run() -> str:
            client = openai.AsyncOpenAI(
                base_url=self.args.base_url, api_key="sk-test", max_retries=0, timeout=self.args.timeout
            )
            async with client:
                stream = await client.chat.completions.create(
                    model=self.args.chat_model,
                    messages=[{"role": "user", "content": "hello there"}],
                    stream=True,
                    stream_options={"include_usage": True},
                )
                chunks = [c async for c in stream]
            self._check_content_chunks(chunks)
            expect(chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0,
                   f"no usage on the last chunk: {chunks[-1]!r}")
            return f"{len(chunks)} chunks"

        return asyncio.run(run())

    # --- legacy completions -----------------------------------------------

    def completion(self) -> str:
        r = self.client.completions.create(model=self.args.chat_model, prompt="say something")
        expect(r.object == "text_completion", f"object is {r.object!r}")
        expect(len(r.choices) == 1, f"{len(r.choices)} choices, want 1")
        expect(bool(r.choices[0].text), "empty completion text")
        expect(r.usage is not None and r.usage.total_tokens > 0, f"usage {r.usage!r}, want total_tokens > 0")
        return f"{r.choices[0].text!r}, usage.total_tokens={r.usage.total_tokens}"

    def completion_stream(self) -> str:
        stream = self.client.completions.create(model=self.args.chat_model, prompt="say something", stream=True)
        with stream:
            chunks = list(stream)
        with_choices = [c for c in chunks if c.choices]
        expect(with_choices, f"no chunk with choices among {len(chunks)} chunks")
        text = "".join(c.choices[0].text for c in with_choices)
        expect(text != "", "the concatenated text is empty")
        expect(with_choices[-1].choices[0].finish_reason is not None, "no chunk carried finish_reason")
        leaked = [i for i, c in enumerate(chunks) if usage_of(c) is not None or not c.choices]
        expect(not leaked, f"chunk(s) {leaked} carry usage / no choices although the client did not ask for usage")
        return f"{len(chunks)} chunks, {text!r}"

    def completion_stream_usage(self) -> str:
        stream = self.client.completions.create(
            model=self.args.chat_model, prompt="say something", stream=True,
            stream_options={"include_usage": True},
        )
        with stream:
            chunks = list(stream)
        expect(chunks, "no chunks")
        last = chunks[-1]
        expect(last.usage is not None and last.usage.total_tokens > 0,
               f"the last chunk has no usage with total_tokens > 0: {last!r}")
        return f"{len(chunks)} chunks, final usage.total_tokens={last.usage.total_tokens}"

    # --- embeddings ---------------------------------------------------------

    def _embeddings(self, detail: str, **kw: Any) -> str:
        r = self.client.embeddings.create(model=self.args.embed_model, **kw)
        inputs = kw["input"] if isinstance(kw["input"], list) else [kw["input"]]
        expect(len(r.data) == len(inputs), f"{len(r.data)} embeddings for {len(inputs)} inputs")
        for i, e in enumerate(r.data):
            expect(e.index == i, f"embedding {i} has index {e.index}")
            expect(
                len(e.embedding) == self.args.embed_dim,
                f"embedding {i} has length {len(e.embedding)}, want {self.args.embed_dim}",
            )
            expect(all(isinstance(x, float) for x in e.embedding), f"embedding {i} is not floats: {e.embedding!r}")
        return f"{len(r.data)} x {len(r.data[0].embedding)} floats ({detail})"

    def embeddings(self) -> str:
        # The SDK asks for base64 when no encoding_format is given and decodes it.
        return self._embeddings("SDK default, base64 on the wire", input="hello world")

    def embeddings_float(self) -> str:
        return self._embeddings("encoding_format=float, batch of 2", input=["hello", "world"], encoding_format="float")

    # --- models and errors ----------------------------------------------------

    def models(self) -> str:
        ids = [m.id for m in self.client.models.list()]
        for want in (self.args.chat_model, self.args.embed_model):
            expect(want in ids, f"{want!r} not in models.list(): {ids}")
        return f"{ids}"

    def model_retrieve(self) -> str:
        m = self.client.models.retrieve(self.args.chat_model)
        expect(m.id == self.args.chat_model, f"models.retrieve id {m.id!r}, want {self.args.chat_model!r}")
        expect(m.object == "model", f"object {m.object!r}, want 'model'")
        try:
            self.client.models.retrieve("no-such-model-xyz")
        except openai.NotFoundError as e:
            expect(e.code == "model_not_found", f"error code {e.code!r}, want 'model_not_found'")
            return f"{m.id} owned by {m.owned_by}; unknown: NotFoundError {e.code}"
        raise CheckFailed("models.retrieve of an unknown model succeeded")

    def unknown_model(self) -> str:
        try:
            self.client.chat.completions.create(
                model="no-such-model-xyz", messages=[{"role": "user", "content": "hi"}]
            )
        except openai.NotFoundError as e:
            expect(e.status_code == 404, f"status {e.status_code}, want 404")
            expect(e.code == "model_not_found", f"error code {e.code!r}, want 'model_not_found'")
            expect(bool(e.message), "empty error message")
            return f"NotFoundError 404 {e.code}: {e.message}"
        except openai.APIStatusError as e:
            raise CheckFailed(f"{type(e).__name__} status {e.status_code}, want NotFoundError 404: {e.body!r}")
        raise CheckFailed("the request for an unknown model succeeded")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base-url", required=True, help="modelgate's API base, e.g. http://127.0.0.1:8080/v1")
    p.add_argument("--chat-model", default="chat", help="route name for chat and completions")
    p.add_argument("--embed-model", default="embed", help="route name for embeddings")
    p.add_argument("--embed-dim", type=int, default=8, help="expected embedding length")
    p.add_argument("--stream-chunks", type=int, default=0,
                   help="expected number of content-carrying stream chunks (0: do not check)")
    p.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, seconds")
    args = p.parse_args()

    print(f"openai {openai.__version__}, python {sys.version.split()[0]}, base url {args.base_url}", flush=True)
    c = Checks(args)
    checks: list[tuple[str, Callable[[], str]]] = [
        ("chat", c.chat),
        ("chat stream, no stream_options: no usage chunk", c.chat_stream),
        ("chat stream, include_usage: final usage chunk", c.chat_stream_usage),
        ("chat stream on the wire: ends with [DONE]", c.chat_stream_raw),
        ("chat stream, AsyncOpenAI", c.chat_stream_async),
        ("completion", c.completion),
        ("completion stream, no stream_options: no usage chunk", c.completion_stream),
        ("completion stream, include_usage: final usage chunk", c.completion_stream_usage),
        ("embeddings", c.embeddings),
        ("embeddings, float", c.embeddings_float),
        ("models.list", c.models),
        ("models.retrieve, and of an unknown model: NotFoundError", c.model_retrieve),
        ("unknown model: NotFoundError", c.unknown_model),
    ]
    for name, fn in checks:
        try:
            detail = fn()
        except CheckFailed as e:
            print(f"FAIL {name}: {e}", flush=True)
            return 1
        except Exception as e:  # an SDK error is a failure of this check too
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
            traceback.print_exc(file=sys.stdout)
            return 1
        print(f"ok   {name}: {detail}", flush=True)
    print(f"all {len(checks)} checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
