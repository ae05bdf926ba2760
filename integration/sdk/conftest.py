"""Shared fixtures for the real-client suite: where Envoy listens, how to tag a call, and how to
find and read the call's access-log record.

The suite is started by `integration/tests/sdk.rs`, which sets:

* `AI_ATTRIBUTION_BASE_URL`: Envoy's listener (`http://127.0.0.1:PORT`), with the filter in front
  of the local model server;
* `AI_ATTRIBUTION_ACCESS_LOG`: Envoy's JSON access log (one line per call, `Bootstrap::log_format`).
"""

import json
import os
import uuid

import access_log
import pytest

BASE_URL = os.environ.get("AI_ATTRIBUTION_BASE_URL", "")
ACCESS_LOG = os.environ.get("AI_ATTRIBUTION_ACCESS_LOG", "")

# How the model server encodes its answers in a test:
# * identity: never compressed (`encoding=identity`), whatever the client accepts;
# * negotiated: compressed if the SDK's own `accept-encoding` asks for gzip or deflate;
# * gzip / deflate: compressed whatever the request said (as some providers do).
ENCODINGS = ["identity", "negotiated", "gzip", "deflate"]

# (encoding, tools) for the tests that make a model answer: plain text in every encoding, and a
# tool call uncompressed and the way the SDK negotiates it.
CONTENT = [pytest.param(e, False, id=f"{e}-text") for e in ENCODINGS] + [
    pytest.param(e, True, id=f"{e}-tools") for e in ("identity", "negotiated")
]

# The message every rejection carries (the plugin config in integration/tests/sdk.rs).
REJECTION_REASON = "missing user"
CORRELATION_HEADER = "x-ai-correlation-id"

# The tool every tool test offers, and the arguments the model server always calls it with.
TOOL_NAME = "get_weather"
TOOL_ARGUMENTS = {"city": "Paris"}
TOOL_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}

# The record's keys with their names in the structured record (`record.value`), used when a flat
# key is absent from the line.
STRUCTURED = {
    "decision": "ai_attribution.decision",
    "usage_status": "ai_attribution.usage_status",
    "usage_reason": "ai_attribution.usage_reason",
    "response_end": "ai_attribution.response_end",
    "cost_usd": "ai_attribution.cost_usd",
    "provider": "gen_ai.provider.name",
    "operation": "gen_ai.operation.name",
    "request_model": "gen_ai.request.model",
    "response_model": "gen_ai.response.model",
    "input_tokens": "gen_ai.usage.input_tokens",
    "output_tokens": "gen_ai.usage.output_tokens",
    "cached_input_tokens": "gen_ai.usage.cache_read.input_tokens",
    "reasoning_tokens": "gen_ai.usage.reasoning.output_tokens",
    "user": "user.id",
    "requested_tools": "ai_attribution.requested_tools",
}


def pytest_configure(config):
    if not BASE_URL or not ACCESS_LOG:
        raise pytest.UsageError(
            "this suite runs through Envoy: start it with `make test-sdk` "
            "(cargo test -p integration --test sdk), which sets AI_ATTRIBUTION_BASE_URL and "
            "AI_ATTRIBUTION_ACCESS_LOG"
        )


class Record(access_log.Record):
    """One access-log line."""

    STRUCTURED = STRUCTURED

    def tokens(self, key):
        value = self.get(key)
        return None if value is None else int(float(value))

    def __repr__(self):
        keys = ["status", "flags", "details", "provider", "decision", "usage_status", "usage_reason",
                "response_end", "input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens",
                "response_model", "cost_usd"]
        return json.dumps({k: self.get(k) for k in keys})


def read_record(request_id, timeout=10.0, settle=None):
    """The access-log line of the call sent with `x-request-id: request_id` (see
    `access_log.read_record`)."""
    return access_log.read_record(ACCESS_LOG, request_id, Record, timeout, settle)


class Call:
    """The headers that tag one model call: its request id, its identity and the model server's
    behaviour switches."""

    def __init__(self, tag, encoding="identity", user="alice", behavior=(), tools=None):
        self.request_id = f"sdk-{tag}-{uuid.uuid4().hex[:12]}"
        # Whether the answer asks for the test tool (None: not checked).
        self.tools = tools
        self.headers = {"x-request-id": self.request_id, "x-business-unit": "research"}
        if user is not None:
            self.headers["x-user-id"] = user
        switches = list(behavior)
        if encoding != "negotiated":
            switches.append(f"encoding={encoding}")
        if switches:
            self.headers["x-mock-behavior"] = ",".join(switches)

    def record(self, **kw):
        record = read_record(self.request_id, **kw)
        if self.tools is not None:
            # The record names the tool the model asked for, and only then.
            assert record.get("requested_tools") == (TOOL_NAME if self.tools else None), record
        return record


@pytest.fixture
def base_url():
    return BASE_URL


@pytest.fixture(params=ENCODINGS)
def encoding(request):
    return request.param


def assert_attributed(record, *, input, output=None, cached=None, reasoning=None, model=None):
    """The record of a call that went through and whose usage the filter read."""
    want = {
        "status": 200,
        "decision": "attributed",
        "usage_status": "reported",
        "input_tokens": input,
        "output_tokens": output,
        "cached_input_tokens": cached,
        "reasoning_tokens": reasoning,
    }
    got = {
        "status": record.get("status"),
        "decision": record.get("decision"),
        "usage_status": record.get("usage_status"),
        "input_tokens": record.tokens("input_tokens"),
        "output_tokens": record.tokens("output_tokens"),
        "cached_input_tokens": record.tokens("cached_input_tokens"),
        "reasoning_tokens": record.tokens("reasoning_tokens"),
    }
    if model is not None:
        want["response_model"] = model
        got["response_model"] = record.get("response_model")
    assert got == want, f"{record.get('path')}: {record!r}"
    assert record.get("user") == "alice"


def assert_rejected(record, exc_headers, body_correlation_id=None):
    """The record of a rejected call, and the correlation id the client was given: in the
    `x-ai-correlation-id` header, in the record, and in the body where the SDK keeps it."""
    assert record.get("status") == 403, repr(record)
    assert record.get("decision") == "rejected", repr(record)
    header = exc_headers.get(CORRELATION_HEADER)
    assert header, f"no {CORRELATION_HEADER} header"
    assert record.line.get("correlation_id") == header
    if body_correlation_id is not None:
        assert body_correlation_id == header
