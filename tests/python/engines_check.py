#!/usr/bin/env python3
"""Drive modelgate in front of real engines with the official OpenAI Python SDK.

Run by cmd/modelgate's TestRealEngines (llama.cpp's llama-server and
LiteLLM's proxy registered in Nacos):

    engines_check.py --base-url URL --chat MODEL [--chat MODEL ...] \\
        [--completions MODEL ...] [--embed MODEL ...]

For each chat model: a chat, a stream with include_usage, a stream without
(it must carry no usage chunk); for each completions model a completion; for
each embedding model an embedding of two inputs. Prints one JSON object on
the last line: per model, the usage the replies showed, summed, how many
streams showed none, and the usage of the stream with usage whose twin (the
same request without include_usage) showed none. Exits 1 at the first failed check.
"""

from __future__ import annotations

import argparse
import json
import sys

import openai


def fail(msg: str) -> None:
    print("FAIL " + msg, file=sys.stderr)
    sys.exit(1)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--base-url", required=True)
    p.add_argument("--chat", action="append", default=[])
    p.add_argument("--completions", action="append", default=[])
    p.add_argument("--embed", action="append", default=[])
    p.add_argument("--max-tokens", type=int, default=8)
    args = p.parse_args()

    client = openai.OpenAI(base_url=args.base_url, api_key="sk-test", max_retries=0, timeout=120)
    seen: dict[str, dict[str, int]] = {}

    def add(model: str, usage) -> None:
        s = seen.setdefault(model, {"prompt": 0, "completion": 0, "unseen": 0})
        if usage is None:
            s["unseen"] += 1
            return
        s["prompt"] += usage.prompt_tokens
        s["completion"] += usage.completion_tokens or 0

    for m in args.chat:
        r = client.chat.completions.create(
            model=m, max_tokens=args.max_tokens,
            messages=[{"role": "user", "content": "hello there, what is the cache"}])
        if r.object != "chat.completion" or len(r.choices) != 1 or r.usage is None:
            fail(f"{m} chat: {r!r}")
        if r.usage.prompt_tokens <= 0 or r.usage.completion_tokens <= 0:
            fail(f"{m} chat usage {r.usage!r}")
        add(m, r.usage)
        print(f"ok   {m} chat: {r.usage.prompt_tokens}+{r.usage.completion_tokens} tokens")

        for include in (True, False):
            kw = {"stream_options": {"include_usage": True}} if include else {}
            stream = client.chat.completions.create(
                model=m, max_tokens=args.max_tokens, stream=True,
                messages=[{"role": "user", "content": "stream the answer please"}], **kw)
            chunks, usage = 0, None
            for ch in stream:
                chunks += 1
                if getattr(ch, "usage", None) is not None:
                    usage = ch.usage
            if chunks < 2:
                fail(f"{m} stream include_usage={include}: {chunks} chunks")
            if include and usage is None:
                fail(f"{m} stream: asked for usage, got none")
            if not include and usage is not None:
                fail(f"{m} stream: a usage chunk reached a client that did not ask for it")
            add(m, usage)
            if include:
                # The twin of the stream without usage: same request.
                seen[m]["twin_prompt"] = usage.prompt_tokens
                seen[m]["twin_completion"] = usage.completion_tokens or 0
            print(f"ok   {m} stream include_usage={include}: {chunks} chunks")

    for m in args.completions:
        r = client.completions.create(model=m, max_tokens=args.max_tokens, prompt="the model gate")
        if r.object != "text_completion" or len(r.choices) != 1 or r.usage is None:
            fail(f"{m} completion: {r!r}")
        add(m, r.usage)
        print(f"ok   {m} completion: {r.usage.prompt_tokens}+{r.usage.completion_tokens} tokens")

    for m in args.embed:
        r = client.embeddings.create(model=m, input=["hello world", "the cache server"])
        if len(r.data) != 2 or not r.data[0].embedding or r.usage is None or r.usage.prompt_tokens <= 0:
            fail(f"{m} embeddings: {r!r}"[:500])
        s = seen.setdefault(m, {"prompt": 0, "completion": 0, "unseen": 0})
        s["prompt"] += r.usage.prompt_tokens
        print(f"ok   {m} embeddings: {len(r.data)} x {len(r.data[0].embedding)}, {r.usage.prompt_tokens} tokens")

    print(json.dumps(seen))


if __name__ == "__main__":
    main()
