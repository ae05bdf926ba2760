"""What the filter does on the wire, checked with a plain HTTP client (no SDK) so every byte is
known: the coding it asks the upstream for, answers in codings it can and cannot read, and how
each kind of answer ended (`response_end`)."""

import http.client
import json
import urllib.parse
import zlib

import pytest

from conftest import BASE_URL, Call

MSGS = [{"role": "user", "content": "hi"}]
CONVERSE = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
INVOKE = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64, "messages": MSGS}
GEMINI = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}

# name: (JSON path, JSON body, stream path, stream body, (input, output) tokens the record counts)
FAMILIES = {
    "openai-chat": (
        "/v1/chat/completions", {"model": "gpt-4o", "messages": MSGS},
        "/v1/chat/completions",
        {"model": "gpt-4o", "messages": MSGS, "stream": True, "stream_options": {"include_usage": True}},
        (27, 12),
    ),
    "openai-responses": (
        "/v1/responses", {"model": "gpt-4o", "input": "hi"},
        "/v1/responses", {"model": "gpt-4o", "input": "hi", "stream": True},
        (31, 17),
    ),
    "anthropic": (
        "/v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": MSGS},
        "/v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": MSGS, "stream": True},
        (175, 14),
    ),
    "gemini": (
        "/v1beta/models/gemini-2.5-flash:generateContent", GEMINI,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", GEMINI,
        (21, 14),
    ),
    "bedrock-converse": (
        "/model/us.amazon.nova-lite-v1%3A0/converse", CONVERSE,
        "/model/us.amazon.nova-lite-v1%3A0/converse-stream", CONVERSE,
        (31, 13),
    ),
    "bedrock-invoke": (
        "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/invoke", INVOKE,
        "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/invoke-with-response-stream", INVOKE,
        (28, 16),
    ),
    "ollama": (
        "/api/chat", {"model": "llama3.2", "messages": MSGS, "stream": False},
        "/api/chat", {"model": "llama3.2", "messages": MSGS},
        (26, 18),
    ),
    "cohere": (
        "/v2/chat", {"model": "command-a-03-2025", "messages": MSGS},
        "/v2/chat", {"model": "command-a-03-2025", "messages": MSGS, "stream": True},
        (22, 10),
    ),
}
SHAPES = ["json", "stream"]


def send(path, body, call, accept_encoding="gzip, deflate, br, zstd"):
    """POSTs through Envoy and reads the whole answer, undecoded."""
    url = urllib.parse.urlsplit(BASE_URL)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    headers = dict(call.headers)
    headers["content-type"] = "application/json"
    if accept_encoding is not None:
        headers["accept-encoding"] = accept_encoding
    conn.request("POST", path, body=json.dumps(body), headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, data


def request(family, shape):
    json_path, json_body, stream_path, stream_body, tokens = FAMILIES[family]
    return (json_path, json_body, tokens) if shape == "json" else (stream_path, stream_body, tokens)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_upstream_is_asked_for_identity(family, shape):
    """The SDKs ask for gzip (some for br and zstd too); the filter asks the upstream for an
    uncompressed answer, and the counts come out of it."""
    path, body, (input_tokens, output_tokens) = request(family, shape)
    call = Call(f"wire-ae-{family}", encoding="negotiated")
    resp, _ = send(path, body, call)
    assert resp.status == 200
    assert resp.getheader("x-mock-accept-encoding") == "identity"
    assert resp.getheader("content-encoding") is None
    record = call.record()
    assert record.get("usage_status") == "reported", repr(record)
    assert (record.tokens("input_tokens"), record.tokens("output_tokens")) == (input_tokens, output_tokens)


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_compressed_answer_is_read(family, shape, coding):
    """An upstream that compresses anyway: the filter decodes gzip and deflate to count, and the
    client still gets an answer it can read (compressed as the upstream sent it, or not)."""
    path, body, (input_tokens, output_tokens) = request(family, shape)
    call = Call(f"wire-{coding}-{family}", encoding=coding)
    resp, data = send(path, body, call)
    assert resp.status == 200
    sent = resp.getheader("content-encoding")
    assert sent in (None, coding)
    if sent is not None:
        # gzip (wbits 16+15) or zlib (15), as the model server writes them.
        data = zlib.decompressobj(31 if sent == "gzip" else 15).decompress(data)
    assert b"Hello" in data or b"bytes" in data, data[:200]
    record = call.record()
    assert record.get("usage_status") == "reported", repr(record)
    assert (record.tokens("input_tokens"), record.tokens("output_tokens")) == (input_tokens, output_tokens)


@pytest.mark.parametrize("coding", ["br", "zstd"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("family", ["openai-chat", "anthropic", "gemini", "bedrock-converse"])
def test_unreadable_coding_is_missing_with_a_reason(family, shape, coding):
    """A coding the filter cannot read: the call goes through untouched, and the record says the
    usage is missing and why."""
    path, body, _ = request(family, shape)
    call = Call(f"wire-{coding}-{family}", encoding=coding)
    resp, data = send(path, body, call)
    assert resp.status == 200
    assert resp.getheader("content-encoding") == coding
    assert data, "empty answer"
    record = call.record()
    assert record.get("decision") == "attributed", repr(record)
    assert record.get("usage_status") == "missing", repr(record)
    assert record.tokens("input_tokens") is None and record.tokens("output_tokens") is None
    assert coding in (record.get("usage_reason") or ""), repr(record)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_response_end_names_how_the_answer_ended(family, shape):
    path, body, _ = request(family, shape)
    call = Call(f"wire-end-{family}")
    resp, _ = send(path, body, call, accept_encoding=None)
    assert resp.status == 200
    record = call.record()
    assert record.get("usage_status") == "reported", repr(record)
    assert record.get("response_end") == ("end_of_stream" if shape == "json" else "final_event"), repr(record)


@pytest.mark.parametrize("family", FAMILIES)
def test_stream_cut_before_its_final_event_is_cut_short(family):
    path, body, _ = request(family, "stream")
    call = Call(f"wire-cut-{family}", behavior=["reset-mid-stream"])
    try:
        send(path, body, call, accept_encoding=None)
    except (http.client.HTTPException, OSError):
        pass  # the upstream reset shows up as a truncated answer
    record = call.record(settle=lambda r: r.get("usage_status") is not None)
    assert record.get("usage_status") == "partial", repr(record)
    assert record.get("response_end") == "cut_short", repr(record)
