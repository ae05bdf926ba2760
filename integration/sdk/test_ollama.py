"""The `ollama` SDK: `/api/chat` as JSON and as an NDJSON stream, `tool_calls`, `/api/embed`,
compressed or not, and its rejection."""

import ollama
import pytest

from conftest import (
    REJECTION_REASON,
    TOOL_ARGUMENTS,
    TOOL_NAME,
    TOOL_SCHEMA,
    CONTENT,
    Call,
    assert_attributed,
)

MODEL = "llama3.2"
MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOLS = [{"type": "function", "function": {"name": TOOL_NAME, "description": "Weather", "parameters": TOOL_SCHEMA}}]


def client(base_url, call):
    return ollama.Client(host=base_url, headers=call.headers)


@pytest.mark.parametrize("encoding,tools", CONTENT)
def test_chat_json(base_url, encoding, tools):
    call = Call("ollama-chat", encoding, tools=tools)
    extra = {"tools": TOOLS} if tools else {}
    resp = client(base_url, call).chat(model=MODEL, messages=MESSAGES, stream=False, **extra)
    if tools:
        fn = resp.message.tool_calls[0].function
        assert fn.name == TOOL_NAME and dict(fn.arguments) == TOOL_ARGUMENTS
    else:
        assert resp.message.content == "Hello from the mock model server."
    assert resp.done
    assert_attributed(call.record(), input=resp.prompt_eval_count, output=resp.eval_count, model=resp.model)


@pytest.mark.parametrize("encoding,tools", CONTENT)
def test_chat_stream(base_url, encoding, tools):
    call = Call("ollama-chat-stream", encoding, tools=tools)
    extra = {"tools": TOOLS} if tools else {}
    parts = list(client(base_url, call).chat(model=MODEL, messages=MESSAGES, stream=True, **extra))
    last = parts[-1]
    assert last.done
    if tools:
        calls = [tc for p in parts for tc in (p.message.tool_calls or [])]
        assert calls[0].function.name == TOOL_NAME and dict(calls[0].function.arguments) == TOOL_ARGUMENTS
    else:
        assert "".join(p.message.content or "" for p in parts) == "Hello from the mock model server."
    assert_attributed(call.record(), input=last.prompt_eval_count, output=last.eval_count, model=last.model)


def test_embed(base_url, encoding):
    call = Call("ollama-embed", encoding)
    resp = client(base_url, call).embed(model=MODEL, input="hello")
    assert len(resp.embeddings[0]) == 8
    assert_attributed(call.record(), input=resp.prompt_eval_count, model=resp.model)


def test_rejection(base_url):
    call = Call("ollama-reject", user=None)
    with pytest.raises(ollama.ResponseError) as info:
        client(base_url, call).chat(model=MODEL, messages=MESSAGES, stream=False)
    exc = info.value
    assert exc.status_code == 403
    # Ollama's error is a plain string, which the SDK shows as the exception's message.
    assert isinstance(exc.error, str), repr(exc.error)
    assert exc.error.startswith("This model call cannot be attributed")
    assert REJECTION_REASON in str(exc)
    # The SDK keeps only `error` and no headers: the correlation id is in the body and the access
    # log, not in anything the exception carries.
    record = call.record()
    assert record.get("status") == 403 and record.get("decision") == "rejected", repr(record)
    assert record.line.get("correlation_id")


def test_stream_closed_after_done_is_complete(base_url):
    """The application stops at the line with `done: true` and closes while the server holds the
    stream open."""
    call = Call("ollama-linger", behavior=["linger-after-final=1500"])
    stream = client(base_url, call).chat(model=MODEL, messages=MESSAGES, stream=True)
    for part in stream:
        if part.done:
            break
    stream.close()
    record = call.record()
    assert_attributed(record, input=part.prompt_eval_count, output=part.eval_count, model=part.model)
    assert record.get("response_end") == "final_event"
