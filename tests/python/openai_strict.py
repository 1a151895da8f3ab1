"""Drives a running facio gateway with the official `openai` client in strict mode.

Usage: python3 openai_strict.py BASE_URL SESSION_KEY
Prints one JSON object with what the client parsed; exits non-zero if the client
rejected any response or chunk.
"""

import json
import sys

import openai


def main() -> None:
    base_url, session = sys.argv[1], sys.argv[2]
    client = openai.OpenAI(
        base_url=base_url,
        api_key="unused",
        max_retries=0,
        _strict_response_validation=True,
    )
    models = client.models.list()
    completion = client.chat.completions.create(
        model="facio",
        messages=[{"role": "user", "content": "first question"}],
        user=session,
    )
    chunks = []
    usage = None
    stream = client.chat.completions.create(
        model="facio",
        messages=[{"role": "user", "content": "second question"}],
        user=session,
        stream=True,
        stream_options={"include_usage": True},
    )
    finish = None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage.total_tokens
        for choice in chunk.choices:
            if choice.delta.content:
                chunks.append(choice.delta.content)
            if choice.finish_reason:
                finish = choice.finish_reason
    error = None
    try:
        client.chat.completions.create(model="facio", messages=[{"role": "system", "content": "no user"}])
    except openai.BadRequestError as e:
        error = {"status": e.status_code, "param": e.body.get("param") if isinstance(e.body, dict) else None}
    print(
        json.dumps(
            {
                "models": [m.id for m in models.data],
                "content": completion.choices[0].message.content,
                "finish": completion.choices[0].finish_reason,
                "total_tokens": completion.usage.total_tokens,
                "streamed": "".join(chunks),
                "stream_finish": finish,
                "stream_usage": usage,
                "bad_request": error,
            }
        )
    )


if __name__ == "__main__":
    main()
