"""boto3's `bedrock-runtime` client with fake static credentials and `endpoint_url`: Converse,
ConverseStream (AWS event stream framing) with `toolUse`, InvokeModel and its response stream
with an Anthropic body, and its rejection.

botocore asks for `accept-encoding: identity` and reads the body as it arrives, so a compressed
answer is only possible when the server forces it; the `gzip`/`deflate` cases check that the
filter reads such an answer (botocore itself cannot, see "Clients and SDKs" in README.md)."""

import json

import boto3
import botocore.config
import botocore.exceptions
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

MODEL = "us.amazon.nova-lite-v1:0"
CLAUDE = "anthropic.claude-3-5-haiku-20241022-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "What is the weather in Paris?"}]}]
TOOL_CONFIG = {"tools": [{"toolSpec": {"name": TOOL_NAME, "description": "Weather", "inputSchema": {"json": TOOL_SCHEMA}}}]}


def client(base_url, call):
    c = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=base_url,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="test-secret",
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}),
    )

    def add_headers(request, **_):
        for name, value in call.headers.items():
            request.headers[name] = value

    c.meta.events.register("before-sign.bedrock-runtime.*", add_headers)
    return c


def sdk_readable(encoding):
    """botocore never decodes a content coding: a forced one is for the filter only."""
    return encoding in ("identity", "negotiated")


def assert_converse_usage(record, usage):
    assert_attributed(
        record,
        input=usage["inputTokens"] + usage.get("cacheReadInputTokens", 0) + usage.get("cacheWriteInputTokens", 0),
        output=usage["outputTokens"],
        cached=usage.get("cacheReadInputTokens"),
    )


@pytest.mark.parametrize("encoding,tools", CONTENT)
def test_converse(base_url, encoding, tools):
    if not sdk_readable(encoding):
        pytest.skip("botocore does not decode a compressed answer (covered by test_wire.py)")
    call = Call("bedrock-converse", encoding, tools=tools)
    extra = {"toolConfig": TOOL_CONFIG} if tools else {}
    resp = client(base_url, call).converse(modelId=MODEL, messages=MESSAGES, **extra)
    content = resp["output"]["message"]["content"][0]
    if tools:
        assert resp["stopReason"] == "tool_use"
        assert content["toolUse"]["name"] == TOOL_NAME and content["toolUse"]["input"] == TOOL_ARGUMENTS
    else:
        assert content["text"] == "Hello from the mock model server."
    assert_converse_usage(call.record(), resp["usage"])


@pytest.mark.parametrize("encoding,tools", CONTENT)
def test_converse_stream(base_url, encoding, tools):
    if not sdk_readable(encoding):
        pytest.skip("botocore does not decode a compressed answer (covered by test_wire.py)")
    call = Call("bedrock-converse-stream", encoding, tools=tools)
    extra = {"toolConfig": TOOL_CONFIG} if tools else {}
    resp = client(base_url, call).converse_stream(modelId=MODEL, messages=MESSAGES, **extra)
    text, arguments, usage, stop = "", "", None, None
    for event in resp["stream"]:
        delta = event.get("contentBlockDelta", {}).get("delta", {})
        text += delta.get("text", "")
        arguments += delta.get("toolUse", {}).get("input", "")
        stop = event.get("messageStop", {}).get("stopReason", stop)
        usage = event.get("metadata", {}).get("usage", usage)
    if tools:
        assert stop == "tool_use" and json.loads(arguments) == TOOL_ARGUMENTS
    else:
        assert text == "Hello from the mock model server."
    assert_converse_usage(call.record(), usage)


def assert_invoke_usage(record, usage):
    read = usage.get("cache_read_input_tokens", 0)
    write = usage.get("cache_creation_input_tokens", 0)
    assert_attributed(record, input=usage["input_tokens"] + read + write, output=usage["output_tokens"], cached=read)


def test_invoke_model(base_url, encoding):
    if not sdk_readable(encoding):
        pytest.skip("botocore does not decode a compressed answer (covered by test_wire.py)")
    call = Call("bedrock-invoke", encoding)
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
    resp = client(base_url, call).invoke_model(modelId=CLAUDE, body=json.dumps(body))
    answer = json.loads(resp["body"].read())
    headers = resp["ResponseMetadata"]["HTTPHeaders"]
    assert int(headers["x-amzn-bedrock-input-token-count"]) == answer["usage"]["input_tokens"]
    assert_invoke_usage(call.record(), answer["usage"])


def test_invoke_model_with_response_stream(base_url, encoding):
    if not sdk_readable(encoding):
        pytest.skip("botocore does not decode a compressed answer (covered by test_wire.py)")
    call = Call("bedrock-invoke-stream", encoding)
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
    resp = client(base_url, call).invoke_model_with_response_stream(modelId=CLAUDE, body=json.dumps(body))
    usage = {}
    for event in resp["body"]:
        inner = json.loads(event["chunk"]["bytes"])
        if inner["type"] == "message_start":
            usage = dict(inner["message"]["usage"])
        if inner["type"] == "message_delta":
            usage["output_tokens"] = inner["usage"]["output_tokens"]
    assert_invoke_usage(call.record(), usage)


def test_rejection(base_url):
    call = Call("bedrock-reject", user=None)
    c = client(base_url, call)
    with pytest.raises(c.exceptions.AccessDeniedException) as info:
        c.converse(modelId=MODEL, messages=MESSAGES)
    exc = info.value
    assert isinstance(exc, botocore.exceptions.ClientError)
    assert exc.response["Error"]["Code"] == "AccessDeniedException"
    assert REJECTION_REASON in exc.response["Error"]["Message"]
    assert REJECTION_REASON in str(exc)
    assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # botocore keeps only the members its model knows (`message`): the correlation id reaches the
    # caller in the header.
    assert_rejected(call.record(), exc.response["ResponseMetadata"]["HTTPHeaders"])


def test_stream_closed_after_metadata_is_complete(base_url):
    """The application stops at the `metadata` event and closes while the server holds the stream
    open."""
    call = Call("bedrock-linger", behavior=["linger-after-final=1500"])
    resp = client(base_url, call).converse_stream(modelId=MODEL, messages=MESSAGES)
    stream = resp["stream"]
    usage = None
    for event in stream:
        if "metadata" in event:
            usage = event["metadata"]["usage"]
            break
    stream.close()
    record = call.record()
    assert_converse_usage(record, usage)
    assert record.get("response_end") == "final_event"
