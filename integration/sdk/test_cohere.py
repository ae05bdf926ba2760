"""The `cohere` SDK (`ClientV2`): `/v2/chat` as JSON and SSE with tool calls, `/v2/embed`,
compressed or not, and its rejection."""

import json

import cohere
import pytest
from cohere.errors import ForbiddenError

from conftest import (
    REJECTION_REASON,
    TOOL_ARGUMENTS,
    TOOL_NAME,
    TOOL_SCHEMA,
    CONTENT,
    Call,
    assert_attributed,
    assert_rejected,
)

MODEL = "command-a-03-2025"
MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOLS = [{"type": "function", "function": {"name": TOOL_NAME, "description": "Weather", "parameters": TOOL_SCHEMA}}]


def client(base_url):
    return cohere.ClientV2(api_key="co-test-key", base_url=base_url)


def options(call):
    return {"additional_headers": call.headers, "max_retries": 0}


def assert_usage(record, usage):
    # The record counts the model's tokens (`usage.tokens`), not the billed units.
    assert_attributed(record, input=int(usage.tokens.input_tokens), output=int(usage.tokens.output_tokens))


@pytest.mark.parametrize("encoding,tools", CONTENT)
def test_chat_json(base_url, encoding, tools):
    call = Call("cohere-chat", encoding, tools=tools)
    extra = {"tools": TOOLS} if tools else {}
    resp = client(base_url).chat(model=MODEL, messages=MESSAGES, request_options=options(call), **extra)
    if tools:
        assert resp.finish_reason == "TOOL_CALL"
        fn = resp.message.tool_calls[0].function
        assert fn.name == TOOL_NAME and json.loads(fn.arguments) == TOOL_ARGUMENTS
    else:
        assert resp.message.content[0].text == "Hello from the mock model server."
    assert_usage(call.record(), resp.usage)


@pytest.mark.parametrize("encoding,tools", CONTENT)
def test_chat_stream(base_url, encoding, tools):
    call = Call("cohere-chat-stream", encoding, tools=tools)
    extra = {"tools": TOOLS} if tools else {}
    text, arguments, end = "", "", None
    for event in client(base_url).chat_stream(model=MODEL, messages=MESSAGES, request_options=options(call), **extra):
        if event.type == "content-delta":
            text += event.delta.message.content.text
        if event.type == "tool-call-delta":
            arguments += event.delta.message.tool_calls.function.arguments
        if event.type == "message-end":
            end = event
    if tools:
        assert end.delta.finish_reason == "TOOL_CALL" and json.loads(arguments) == TOOL_ARGUMENTS
    else:
        assert text == "Hello from the mock model server."
    assert_usage(call.record(), end.delta.usage)


def test_embed(base_url, encoding):
    call = Call("cohere-embed", encoding)
    resp = client(base_url).embed(
        model="embed-v4.0",
        texts=["hello"],
        input_type="search_document",
        embedding_types=["float"],
        request_options=options(call),
    )
    assert len(resp.embeddings.float_[0]) == 8
    assert_attributed(call.record(), input=int(resp.meta.billed_units.input_tokens))


def test_rejection(base_url):
    call = Call("cohere-reject", user=None)
    with pytest.raises(ForbiddenError) as info:
        client(base_url).chat(model=MODEL, messages=MESSAGES, request_options=options(call))
    exc = info.value
    assert exc.status_code == 403
    assert REJECTION_REASON in str(exc)
    assert str(exc.body.get("message")).startswith("This model call cannot be attributed"), exc.body
    assert exc.body.get("missing") == ["user"]
    assert_rejected(call.record(), exc.headers, exc.body["correlation_id"])


def test_stream_closed_after_message_end_is_complete(base_url):
    """The application stops at `message-end` and closes while the server holds the stream open."""
    call = Call("cohere-linger", behavior=["linger-after-final=1500"])
    stream = client(base_url).chat_stream(model=MODEL, messages=MESSAGES, request_options=options(call))
    for event in stream:
        if event.type == "message-end":
            break
    stream.close()
    record = call.record()
    assert_usage(record, event.delta.usage)
    assert record.get("response_end") == "final_event"
