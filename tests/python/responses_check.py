#!/usr/bin/env python3
"""Drive modelgate's /v1/responses and /v1/models/{id} with the official OpenAI Python SDK.

Run by cmd/modelgate's TestResponsesRealEngine (llama.cpp's llama-server
registered in Nacos) and TestResponsesPythonSDKMock (the mock):

    responses_check.py --base-url URL --model MODEL [--model MODEL ...]

For each model: client.models.retrieve, client.responses.create without and
with stream=True (the stream's events must include output text deltas and
end with response.completed carrying usage), and a retrieve of an unknown
model (404). Prints one JSON object on the last line: per model, the
input and output tokens the replies showed, summed, and the stream's deltas
and event types. Exits 1 at the first failed check.
"""

from __future__ import annotations

import argparse
import json

import openai

from engines_check import fail


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--base-url", required=True)
    p.add_argument("--model", action="append", default=[])
    p.add_argument("--max-output-tokens", type=int, default=8)
    args = p.parse_args()

    client = openai.OpenAI(base_url=args.base_url, api_key="sk-test", max_retries=0, timeout=120)
    seen: dict[str, dict] = {}

    for m in args.model:
        got = client.models.retrieve(m)
        if got.id != m or got.object != "model":
            fail(f"models.retrieve({m}): {got!r}")
        print(f"ok   models.retrieve({m})")

        s = seen.setdefault(m, {"input": 0, "output": 0})
        r = client.responses.create(model=m, input="hello there, what is the cache",
                                    max_output_tokens=args.max_output_tokens)
        if r.object != "response" or r.status not in ("completed", "incomplete") or r.usage is None:
            fail(f"{m} responses.create: {r!r}"[:800])
        if r.usage.input_tokens <= 0 or r.usage.output_tokens <= 0 or not r.output_text:
            fail(f"{m} responses.create usage {r.usage!r}, text {r.output_text!r}")
        s["input"] += r.usage.input_tokens
        s["output"] += r.usage.output_tokens
        print(f"ok   {m} responses.create: {r.usage.input_tokens}+{r.usage.output_tokens} tokens")

        stream = client.responses.create(model=m, input=[{"role": "user", "content": "stream the answer please"}],
                                         max_output_tokens=args.max_output_tokens, stream=True)
        types, deltas, text, completed = [], 0, "", None
        for ev in stream:
            types.append(ev.type)
            if ev.type == "response.output_text.delta":
                deltas += 1
                text += ev.delta
            elif ev.type == "response.completed":
                completed = ev.response
        if deltas == 0 or completed is None or types[-1] != "response.completed":
            fail(f"{m} stream: {deltas} deltas, events {types}")
        if completed.usage is None or completed.usage.output_tokens <= 0 or completed.output_text != text:
            fail(f"{m} stream: completed {completed!r}"[:800])
        s["input"] += completed.usage.input_tokens
        s["output"] += completed.usage.output_tokens
        s["deltas"] = deltas
        s["types"] = sorted(set(types))
        print(f"ok   {m} responses stream: {deltas} deltas, "
              f"{completed.usage.input_tokens}+{completed.usage.output_tokens} tokens")

    try:
        client.models.retrieve("no-such-model")
        fail("models.retrieve of an unknown model succeeded")
    except openai.NotFoundError as e:
        if e.status_code != 404:
            fail(f"unknown model: {e!r}")
    print("ok   models.retrieve(no-such-model): 404")

    print(json.dumps(seen))


if __name__ == "__main__":
    main()
