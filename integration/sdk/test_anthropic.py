"""The `anthropic` SDK: `Anthropic` (Messages API), `AnthropicVertex` (`:rawPredict` and
`:streamRawPredict`) and `AnthropicBedrock` (InvokeModel and its response stream), JSON and
streamed, with `tool_use`, compressed or not, and their rejections."""

import anthropic
import pytest

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

MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOLS = [{"name": TOOL_NAME, "description": "Weather", "input_schema": TOOL_SCHEMA}]
VARIANTS = ["anthropic", "vertex", "bedrock"]
MODELS = {
    "anthropic": "claude-sonnet-4-5",
    "vertex": "claude-sonnet-4-5@20250929",
    "bedrock": "anthropic.claude-3-5-haiku-20241022-v1:0",
}


def client(base_url, call, variant):
    common = {"default_headers": call.headers, "max_retries": 0}
    if variant == "vertex":
        return anthropic.AnthropicVertex(
            region="us-east5", project_id="test-project", access_token="vertex-test-token",
            base_url=f"{base_url}/v1", **common
        )
    if variant == "bedrock":
        return anthropic.AnthropicBedrock(
            aws_region="us-east-1", aws_access_key="AKIDEXAMPLE", aws_secret_key="test-secret",
            base_url=base_url, **common
        )
    return anthropic.Anthropic(base_url=base_url, api_key="sk-ant-test", **common)


def assert_usage(record, usage, model=None):
    # The record's input counts every input token: cache reads and writes included.
    cache_read = usage.cache_read_input_tokens or 0
    cache_write = usage.cache_creation_input_tokens or 0
    assert_attributed(
        record,
        input=usage.input_tokens + cache_read + cache_write,
        output=usage.output_tokens,
        cached=cache_read,
        model=model,
    )


def check_content(message, tools):
    if tools:
        assert message.stop_reason == "tool_use"
        block = message.content[0]
        assert block.type == "tool_use" and block.name == TOOL_NAME and block.input == TOOL_ARGUMENTS
    else:
        assert message.content[0].text == "Hello from the mock model server."


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("encoding,tools", CONTENT)
def test_messages_json(base_url, encoding, variant, tools):
    call = Call(f"anthropic-{variant}", encoding, tools=tools)
    extra = {"tools": TOOLS} if tools else {}
    message = client(base_url, call, variant).messages.create(
        model=MODELS[variant], max_tokens=64, messages=MESSAGES, **extra
    )
    check_content(message, tools)
    assert_usage(call.record(), message.usage, model=message.model if variant == "anthropic" else None)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("encoding,tools", CONTENT)
def test_messages_stream(base_url, encoding, variant, tools):
    call = Call(f"anthropic-{variant}-stream", encoding, tools=tools)
    extra = {"tools": TOOLS} if tools else {}
    with client(base_url, call, variant).messages.stream(
        model=MODELS[variant], max_tokens=64, messages=MESSAGES, **extra
    ) as stream:
        kinds = [event.type for event in stream]
        message = stream.get_final_message()
    assert kinds[-1] == "message_stop"
    check_content(message, tools)
    assert_usage(call.record(), message.usage, model=message.model if variant == "anthropic" else None)


@pytest.mark.parametrize("variant", VARIANTS)
def test_rejection(base_url, variant):
    call = Call(f"anthropic-{variant}-reject", user=None)
    with pytest.raises(anthropic.PermissionDeniedError) as info:
        client(base_url, call, variant).messages.create(model=MODELS[variant], max_tokens=64, messages=MESSAGES)
    exc = info.value
    assert exc.status_code == 403
    assert REJECTION_REASON in exc.message
    if variant == "bedrock":
        # A Bedrock path answers in Bedrock's shape, which this SDK shows as the raw body.
        body = exc.body
        assert exc.response.headers.get("x-amzn-errortype") == "AccessDeniedException"
    else:
        assert exc.body.get("type") == "error", exc.body
        body = exc.body["error"]
        assert body.get("type") == "permission_error", exc.body
    assert str(body.get("message")).startswith("This model call cannot be attributed"), exc.body
    assert body.get("missing") == ["user"]
    assert_rejected(call.record(), exc.response.headers, body["correlation_id"])


@pytest.mark.parametrize("variant", VARIANTS)
def test_stream_closed_after_message_stop_is_complete(base_url, variant):
    """The application stops at `message_stop` and closes while the server holds the stream open."""
    call = Call(f"anthropic-{variant}-linger", behavior=["linger-after-final=1500"])
    stream = client(base_url, call, variant).messages.create(
        model=MODELS[variant], max_tokens=64, messages=MESSAGES, stream=True
    )
    usage = {}
    for event in stream:
        if event.type == "message_start":
            usage = event.message.usage
        if event.type == "message_delta":
            usage.output_tokens = event.usage.output_tokens
        if event.type == "message_stop":
            break
    stream.close()
    record = call.record()
    assert_usage(record, usage)
    assert record.get("response_end") == "final_event"
