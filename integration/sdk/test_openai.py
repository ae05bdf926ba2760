"""The `openai` SDK: chat completions, the Responses API and embeddings, with `OpenAI` and
`AzureOpenAI`, JSON and streamed, with tool calls, compressed or not, and its rejections."""

import json

import openai
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
CHAT_TOOLS = [{"type": "function", "function": {"name": TOOL_NAME, "description": "Weather", "parameters": TOOL_SCHEMA}}]
RESPONSES_TOOLS = [{"type": "function", "name": TOOL_NAME, "description": "Weather", "parameters": TOOL_SCHEMA}]


def client(base_url, call, azure=False):
    if azure:
        return openai.AzureOpenAI(
            azure_endpoint=base_url,
            api_key="azure-test-key",
            api_version="2024-10-21",
            default_headers=call.headers,
            max_retries=0,
        )
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="sk-test", default_headers=call.headers, max_retries=0)


def assert_chat_usage(record, usage, model=None):
    assert_attributed(
        record,
        input=usage.prompt_tokens,
        output=usage.completion_tokens,
        cached=usage.prompt_tokens_details.cached_tokens,
        reasoning=usage.completion_tokens_details.reasoning_tokens,
        model=model,
    )
    # gpt-4o is priced at 2.5 / 10 / 1.25 USD per million input / output / cached input tokens.
    if model and model.startswith("gpt-4o"):
        cached = usage.prompt_tokens_details.cached_tokens
        want = ((usage.prompt_tokens - cached) * 2.5 + cached * 1.25 + usage.completion_tokens * 10.0) / 1e6
        assert float(record.get("cost_usd")) == pytest.approx(want)


@pytest.mark.parametrize("azure", [False, True], ids=["openai", "azure"])
@pytest.mark.parametrize("encoding,tools", CONTENT)
def test_chat_json(base_url, encoding, azure, tools):
    call = Call("openai-chat", encoding, tools=tools)
    model = "gpt4o-prod" if azure else "gpt-4o"
    extra = {"tools": CHAT_TOOLS} if tools else {}
    resp = client(base_url, call, azure).chat.completions.create(model=model, messages=MESSAGES, **extra)
    message = resp.choices[0].message
    if tools:
        assert resp.choices[0].finish_reason == "tool_calls"
        assert message.tool_calls[0].function.name == TOOL_NAME
        assert json.loads(message.tool_calls[0].function.arguments) == TOOL_ARGUMENTS
    else:
        assert message.content == "Hello from the mock model server."
    assert_chat_usage(call.record(), resp.usage, model=resp.model)


@pytest.mark.parametrize("azure", [False, True], ids=["openai", "azure"])
@pytest.mark.parametrize("encoding,tools", CONTENT)
def test_chat_stream(base_url, encoding, azure, tools):
    call = Call("openai-chat-stream", encoding, tools=tools)
    model = "gpt4o-prod" if azure else "gpt-4o"
    extra = {"tools": CHAT_TOOLS} if tools else {}
    stream = client(base_url, call, azure).chat.completions.create(
        model=model, messages=MESSAGES, stream=True, stream_options={"include_usage": True}, **extra
    )
    text, arguments, usage, finish = "", "", None, None
    with stream:
        for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                text += choice.delta.content or ""
                for tc in choice.delta.tool_calls or []:
                    arguments += tc.function.arguments or ""
                finish = choice.finish_reason or finish
    if tools:
        assert finish == "tool_calls"
        assert json.loads(arguments) == TOOL_ARGUMENTS
    else:
        assert text == "Hello from the mock model server."
    assert usage is not None
    assert_chat_usage(call.record(), usage, model=model)


@pytest.mark.parametrize("encoding,tools", CONTENT)
def test_responses_json(base_url, encoding, tools):
    call = Call("openai-responses", encoding, tools=tools)
    extra = {"tools": RESPONSES_TOOLS} if tools else {}
    resp = client(base_url, call).responses.create(model="gpt-4o", input="What is the weather in Paris?", **extra)
    if tools:
        item = resp.output[0]
        assert item.type == "function_call" and item.name == TOOL_NAME
        assert json.loads(item.arguments) == TOOL_ARGUMENTS
    else:
        assert resp.output_text == "Hello from the mock model server."
    u = resp.usage
    assert_attributed(
        call.record(),
        input=u.input_tokens,
        output=u.output_tokens,
        cached=u.input_tokens_details.cached_tokens,
        reasoning=u.output_tokens_details.reasoning_tokens,
        model=resp.model,
    )


@pytest.mark.parametrize("encoding,tools", CONTENT)
def test_responses_stream(base_url, encoding, tools):
    call = Call("openai-responses-stream", encoding, tools=tools)
    extra = {"tools": RESPONSES_TOOLS} if tools else {}
    with client(base_url, call).responses.stream(model="gpt-4o", input="Weather in Paris?", **extra) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    if tools:
        assert final.output[0].type == "function_call"
        assert json.loads(final.output[0].arguments) == TOOL_ARGUMENTS
    else:
        assert final.output_text == "Hello from the mock model server."
    u = final.usage
    assert_attributed(
        call.record(),
        input=u.input_tokens,
        output=u.output_tokens,
        cached=u.input_tokens_details.cached_tokens,
        reasoning=u.output_tokens_details.reasoning_tokens,
        model=final.model,
    )


@pytest.mark.parametrize("azure", [False, True], ids=["openai", "azure"])
def test_embeddings(base_url, encoding, azure):
    call = Call("openai-embeddings", encoding)
    model = "embed-prod" if azure else "text-embedding-3-small"
    resp = client(base_url, call, azure).embeddings.create(model=model, input=["first", "second"])
    assert len(resp.data) == 2 and len(resp.data[0].embedding) == 8
    assert_attributed(call.record(), input=resp.usage.prompt_tokens, model=resp.model)


@pytest.mark.parametrize("azure", [False, True], ids=["openai", "azure"])
def test_rejection(base_url, azure):
    call = Call("openai-reject", user=None)
    with pytest.raises(openai.PermissionDeniedError) as info:
        client(base_url, call, azure).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    exc = info.value
    assert exc.status_code == 403
    assert REJECTION_REASON in exc.message
    assert exc.code == "unattributed_model_call" and exc.type == "attribution_required"
    assert exc.body["missing"] == ["user"]
    assert_rejected(call.record(), exc.response.headers, exc.body["correlation_id"])


def test_stream_closed_after_done_is_complete(base_url):
    """The SDK stops reading at `data: [DONE]` and closes the connection while the server still
    holds the response open (`linger-after-final`): the record must still count the usage."""
    call = Call("openai-linger", behavior=["linger-after-final=1500"])
    stream = client(base_url, call).chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    usage = None
    for chunk in stream:
        usage = chunk.usage or usage
    stream.close()
    assert_chat_usage(call.record(), usage, model="gpt-4o")
    assert call.record().get("response_end") == "final_event"


def test_responses_stream_closed_after_completed_is_complete(base_url):
    call = Call("openai-responses-linger", behavior=["linger-after-final=1500"])
    stream = client(base_url, call).responses.create(model="gpt-4o", input="hi", stream=True)
    usage = None
    for event in stream:
        if event.type == "response.completed":
            usage = event.response.usage
            break
    stream.close()
    record = call.record()
    assert_attributed(
        record,
        input=usage.input_tokens,
        output=usage.output_tokens,
        cached=usage.input_tokens_details.cached_tokens,
        reasoning=usage.output_tokens_details.reasoning_tokens,
        model="gpt-4o",
    )
    assert record.get("response_end") == "final_event"
