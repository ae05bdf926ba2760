"""The `google-genai` SDK against the Gemini API and Vertex AI (`vertexai=True` with fake
credentials): `generateContent`, `streamGenerateContent?alt=sse`, embeddings and `functionCall`
parts, compressed or not, and its rejection."""

import pytest
from google import genai
from google.genai import errors, types
from google.oauth2 import credentials as oauth2

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

VARIANTS = ["gemini", "vertex"]
MODELS = {"gemini": "gemini-2.5-flash", "vertex": "gemini-2.5-pro"}


def client(base_url, call, variant):
    options = types.HttpOptions(base_url=base_url, headers=call.headers)
    if variant == "vertex":
        return genai.Client(
            vertexai=True,
            project="test-project",
            location="us-central1",
            credentials=oauth2.Credentials(token="vertex-test-token"),
            http_options=options,
        )
    return genai.Client(api_key="gemini-test-key", http_options=options)


def config(tools):
    if not tools:
        return None
    declaration = types.FunctionDeclaration(name=TOOL_NAME, description="Weather", parameters_json_schema=TOOL_SCHEMA)
    return types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[declaration])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )


def assert_usage(record, usage, model=None):
    thoughts = usage.thoughts_token_count or 0
    assert_attributed(
        record,
        input=usage.prompt_token_count,
        # The record's output includes thinking tokens.
        output=usage.candidates_token_count + thoughts,
        cached=usage.cached_content_token_count,
        reasoning=thoughts or None,
        model=model,
    )


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("encoding,tools", CONTENT)
def test_generate_content(base_url, encoding, variant, tools):
    call = Call(f"genai-{variant}", encoding, tools=tools)
    c = client(base_url, call, variant)
    resp = c.models.generate_content(
        model=MODELS[variant], contents="What is the weather in Paris?", config=config(tools)
    )
    if tools:
        assert resp.function_calls[0].name == TOOL_NAME and resp.function_calls[0].args == TOOL_ARGUMENTS
    else:
        assert resp.text == "Hello from the mock model server."
    assert resp.candidates[0].finish_reason == types.FinishReason.STOP
    assert_usage(call.record(), resp.usage_metadata, model=resp.model_version)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("encoding,tools", CONTENT)
def test_stream_generate_content(base_url, encoding, variant, tools):
    call = Call(f"genai-{variant}-stream", encoding, tools=tools)
    c = client(base_url, call, variant)
    chunks = list(
        c.models.generate_content_stream(
            model=MODELS[variant], contents="What is the weather in Paris?", config=config(tools)
        )
    )
    last = chunks[-1]
    if tools:
        assert last.function_calls[0].name == TOOL_NAME and last.function_calls[0].args == TOOL_ARGUMENTS
    else:
        assert "".join(c.text or "" for c in chunks) == "Hello from the mock model server."
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    assert_usage(call.record(), last.usage_metadata, model=last.model_version)


@pytest.mark.parametrize("variant", VARIANTS)
def test_embed_content(base_url, encoding, variant):
    call = Call(f"genai-{variant}-embed", encoding)
    c = client(base_url, call, variant)
    resp = c.models.embed_content(model="gemini-embedding-001", contents="hello")
    assert len(resp.embeddings[0].values) == 8
    record = call.record()
    # Gemini reports no token usage for embeddings.
    assert record.get("status") == 200 and record.get("decision") == "attributed", repr(record)
    assert record.get("operation") == "embeddings"
    assert record.tokens("input_tokens") is None and record.tokens("output_tokens") is None


@pytest.mark.parametrize("variant", VARIANTS)
def test_rejection(base_url, variant):
    call = Call(f"genai-{variant}-reject", user=None)
    c = client(base_url, call, variant)
    with pytest.raises(errors.ClientError) as info:
        c.models.generate_content(model=MODELS[variant], contents="hi")
    exc = info.value
    assert exc.code == 403
    assert exc.status == "PERMISSION_DENIED"
    assert REJECTION_REASON in exc.message
    detail = exc.details["error"]["details"][0]
    assert detail["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert detail["reason"] == "ATTRIBUTION_REQUIRED" and detail["domain"] == "ai-attribution"
    assert detail["metadata"]["missing"] == "user"
    assert_rejected(call.record(), exc.response.headers, detail["metadata"]["correlation_id"])


@pytest.mark.parametrize("variant", VARIANTS)
def test_stream_closed_after_final_chunk_is_complete(base_url, variant):
    """The application stops at the chunk with `finishReason` and closes the stream while the server
    holds it open."""
    call = Call(f"genai-{variant}-linger", behavior=["linger-after-final=1500"])
    # Keep the client: the SDK closes its connections when the client goes away.
    c = client(base_url, call, variant)
    stream = c.models.generate_content_stream(model=MODELS[variant], contents="hi")
    for chunk in stream:
        if chunk.candidates and chunk.candidates[0].finish_reason:
            break
    stream.close()
    record = call.record()
    assert_usage(record, chunk.usage_metadata, model=chunk.model_version)
    assert record.get("response_end") == "final_event"
