"""Shared tooling for the MCP real-client suite: where Envoy listens, an HTTP client that tags and
keeps every request the official `mcp` SDK sends, raw requests for what the SDK cannot send, and
reading a request's access-log record.

The suite is started by `integration/tests/mcp.rs`, which sets:

* `AI_ATTRIBUTION_BASE_URL`: Envoy's listener (`http://127.0.0.1:PORT`, or `https://127.0.0.1:PORT`
  for the mTLS run), with the filter in front of the local model server and its MCP endpoint;
* `AI_ATTRIBUTION_ACCESS_LOG`: Envoy's JSON access log (one line per request);
* for the mTLS run, `AI_ATTRIBUTION_CA`, `AI_ATTRIBUTION_CLIENT_CERT`, `AI_ATTRIBUTION_CLIENT_KEY`
  and `AI_ATTRIBUTION_SPIFFE_ID` (the client certificate's SPIFFE ID).

Markers choose what a run covers (`-m`): `protocol` (the SDK against the server through Envoy,
whatever the filter records), `attribution` (what the filter records and rejects, with the plugin
config in `integration/tests/mcp.rs`), `mtls` (a SPIFFE caller over mTLS).
"""

import asyncio
import http.client
import json
import os
import ssl
import urllib.parse
import uuid
from contextlib import asynccontextmanager

import access_log
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

BASE_URL = os.environ.get("AI_ATTRIBUTION_BASE_URL", "")
ACCESS_LOG = os.environ.get("AI_ATTRIBUTION_ACCESS_LOG", "")
CA = os.environ.get("AI_ATTRIBUTION_CA")
CLIENT_CERT = os.environ.get("AI_ATTRIBUTION_CLIENT_CERT")
CLIENT_KEY = os.environ.get("AI_ATTRIBUTION_CLIENT_KEY")
SPIFFE_ID = os.environ.get("AI_ATTRIBUTION_SPIFFE_ID")
MCP_URL = BASE_URL + "/mcp"

# What the local MCP server offers (integration/src/model_server/mcp).
WEATHER_TOOL = "get_weather"
FAILING_TOOL = "failing_tool"
BROKEN_TOOL = "broken_tool"
README_URI = "file:///notes/readme.md"
CAFE_URI = "file:///notes/café.md"
GREETING_PROMPT = "greeting"
LEGACY_VERSIONS = ["2025-03-26", "2025-06-18", "2025-11-25"]
MODERN_VERSION = "2026-07-28"

# JSON-RPC codes.
CONNECTION_CLOSED = -32000
ATTRIBUTION_REQUIRED = -32001
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
HEADER_MISMATCH = -32020

CORRELATION_HEADER = "x-ai-correlation-id"
SERVICE_ACCOUNT = "weather-agent"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

# The record keys of a tool call, with their names in the structured record (`record.value`),
# read there when the flat key is absent from the line.
STRUCTURED = {
    "event": "ai_attribution.event",
    "decision": "ai_attribution.decision",
    "reason": "ai_attribution.reason",
    "correlation_id": "ai_attribution.correlation_id",
    "service_account": "ai_attribution.service_account",
    "session": "session.id",
    "user": "user.id",
    "mcp_method": "mcp.method.name",
    "mcp_session": "mcp.session.id",
    "mcp_protocol_version": "mcp.protocol.version",
    "jsonrpc_id": "jsonrpc.request.id",
    "tool": "gen_ai.tool.name",
    "prompt": "gen_ai.prompt.name",
    "resource_uri": "mcp.resource.uri",
    "operation": "gen_ai.operation.name",
    "error_type": "error.type",
    "rpc_status": "rpc.response.status_code",
    "mcp_header_mismatch": "ai_attribution.mcp_header_mismatch",
    "mcp_session_mismatch": "ai_attribution.mcp_session_mismatch",
    "trace_id": "ai_attribution.trace_id",
}


def pytest_configure(config):
    if not BASE_URL or not ACCESS_LOG:
        raise pytest.UsageError(
            "this suite runs through Envoy: start it with `make test-mcp` "
            "(cargo test -p integration --test mcp), which sets AI_ATTRIBUTION_BASE_URL and "
            "AI_ATTRIBUTION_ACCESS_LOG"
        )


def run(coro):
    """Runs a coroutine to completion (the tests are plain functions). A failure inside the SDK
    client's task group arrives wrapped in exception groups: the one exception inside is raised
    as it is, so the test shows its own assertion."""
    try:
        return asyncio.run(coro)
    except BaseExceptionGroup as group:
        leaves = []

        def walk(g):
            for e in g.exceptions:
                if isinstance(e, BaseExceptionGroup):
                    walk(e)
                else:
                    leaves.append(e)

        walk(group)
        if len(leaves) == 1:
            raise leaves[0] from None
        raise


def text(value):
    """A record value as the flat access-log line writes it: strings, `true`/`false`."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class Record(access_log.Record):
    """One access-log line, its values as the flat line writes them (the status as a number)."""

    STRUCTURED = STRUCTURED

    def get(self, key):
        value = self.raw(key)
        return text(value) if key != "status" else value

    def __repr__(self):
        keys = ["method", "path", "status", "flags", "details", *STRUCTURED]
        return json.dumps({k: self.get(k) for k in keys if self.get(k) not in (None, "")})


def read_record(request_id, timeout=10.0):
    """The access-log line of the request sent with `x-request-id: request_id` (see
    `access_log.read_record`)."""
    return access_log.read_record(ACCESS_LOG, request_id, Record, timeout)


def new_request_id(tag):
    return f"mcp-{tag}-{uuid.uuid4().hex[:12]}"


class Exchange:
    """One HTTP request a client sent, and the status and headers of its answer."""

    def __init__(self, request_id, request):
        self.request_id = request_id
        self.http_method = request.method
        self.headers = {k.lower(): v for k, v in request.headers.items()}
        self.body = None
        if request.method == "POST":
            try:
                self.body = json.loads(request.content)
            except ValueError:
                self.body = None
        self.status = None
        self.response_headers = {}

    @property
    def rpc_method(self):
        return self.body.get("method") if isinstance(self.body, dict) else None

    @property
    def rpc_id(self):
        return self.body.get("id") if isinstance(self.body, dict) else None

    @property
    def session(self):
        return self.headers.get("mcp-session-id")

    def record(self):
        return read_record(self.request_id)

    def __repr__(self):
        return f"{self.http_method} {self.rpc_method} id={self.rpc_id} -> {self.status}"


class Wire:
    """An httpx2 client for the SDK that gives every request its own `x-request-id` (to find its
    access-log line), keeps what was sent and answered, and may rewrite headers on the way out
    (`rewrite(request)`), to send what the SDK itself never would."""

    def __init__(self, tag, headers=None, rewrite=None):
        self.tag = tag
        self.headers = dict(headers or {})
        self.rewrite = rewrite
        self.exchanges = []

    async def _on_request(self, request):
        if self.rewrite is not None:
            self.rewrite(request)
        request_id = new_request_id(self.tag)
        request.headers["x-request-id"] = request_id
        self.exchanges.append(Exchange(request_id, request))

    async def _on_response(self, response):
        request_id = response.request.headers.get("x-request-id")
        for ex in self.exchanges:
            if ex.request_id == request_id:
                ex.status = response.status_code
                ex.response_headers = {k.lower(): v for k, v in response.headers.items()}

    def http_client(self):
        kwargs = {}
        if CLIENT_CERT:
            context = ssl.create_default_context(cafile=CA)
            context.load_cert_chain(CLIENT_CERT, CLIENT_KEY)
            kwargs["verify"] = context
        return httpx2.AsyncClient(
            headers=self.headers,
            timeout=httpx2.Timeout(30.0, read=60.0),
            event_hooks={"request": [self._on_request], "response": [self._on_response]},
            trust_env=False,
            **kwargs,
        )

    def find(self, rpc_method=None, http_method="POST"):
        """The exchanges of one JSON-RPC method (or every exchange of an HTTP method)."""
        return [
            ex
            for ex in self.exchanges
            if ex.http_method == http_method and (rpc_method is None or ex.rpc_method == rpc_method)
        ]

    def one(self, rpc_method):
        found = self.find(rpc_method)
        assert len(found) == 1, f"{rpc_method}: {self.exchanges}"
        return found[0]


@asynccontextmanager
async def connect(wire, mode="legacy", url=None):
    """An `mcp.Client` over Streamable HTTP through Envoy, with the wire's HTTP client.
    `mode`: `legacy` (initialize, a session), `auto` (server/discover first) or `2026-07-28`.
    The client cache is off, so every call reaches the server."""
    async with wire.http_client() as http:
        transport = streamable_http_client(url or MCP_URL, http_client=http)
        async with Client(transport, mode=mode, read_timeout_seconds=30, cache=None) as client:
            yield client


class Raw:
    """The answer to a raw request."""

    def __init__(self, request_id, status, headers, body, complete):
        self.request_id = request_id
        self.status = status
        self.headers = headers
        self.body = body
        self.complete = complete

    def json(self):
        return json.loads(self.body)

    def events(self):
        """The `data` of each SSE event."""
        out = []
        for block in self.body.decode("utf-8", "replace").replace("\r\n", "\n").split("\n\n"):
            data = [line[5:].lstrip() for line in block.split("\n") if line.startswith("data:")]
            if data:
                out.append("\n".join(data))
        return out

    def record(self):
        return read_record(self.request_id)

    def __repr__(self):
        return f"{self.status} {self.headers.get('content-type')} {self.body[:300]!r}"


def raw(method, body=None, headers=None, tag="raw", path="/mcp"):
    """Sends one request through Envoy with a plain HTTP client (every header as given) and reads
    the answer to its end, or to where the connection was cut."""
    url = urllib.parse.urlsplit(BASE_URL)
    if url.scheme == "https":
        context = ssl.create_default_context(cafile=CA)
        context.load_cert_chain(CLIENT_CERT, CLIENT_KEY)
        conn = http.client.HTTPSConnection(url.hostname, url.port, timeout=30, context=context)
    else:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    request_id = new_request_id(tag)
    all_headers = {"accept": "application/json, text/event-stream", "x-request-id": request_id}
    payload = None
    if body is not None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        all_headers["content-type"] = "application/json"
    all_headers.update(headers or {})
    conn.request(method, path, body=payload, headers=all_headers)
    resp = conn.getresponse()
    complete = True
    try:
        data = resp.read()
    except http.client.IncompleteRead as cut:
        data, complete = cut.partial, False
    conn.close()
    return Raw(request_id, resp.status, {k.lower(): v for k, v in resp.getheaders()}, data, complete)


def rpc(id, method, params=None):
    message = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def modern(id, method, params=None):
    """A 2026-07-28 request: the protocol version and client capabilities in `_meta`."""
    params = dict(params or {})
    params["_meta"] = {
        "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw-client", "version": "1.0"},
    }
    return rpc(id, method, params)


def modern_headers(method, name=None):
    headers = {"mcp-protocol-version": MODERN_VERSION, "mcp-method": method}
    if name is not None:
        headers["mcp-name"] = name
    return headers


def open_session(version="2025-11-25", headers=None):
    """Opens a session with raw requests (initialize, then notifications/initialized); returns the
    session id and the headers every later request of that session carries."""
    init = raw(
        "POST",
        rpc(0, "initialize", {"protocolVersion": version, "capabilities": {},
                              "clientInfo": {"name": "raw-client", "version": "1.0"}}),
        headers=headers,
        tag="init",
    )
    assert init.status == 200, init
    session = init.headers["mcp-session-id"]
    assert init.json()["result"]["protocolVersion"] == version
    session_headers = dict(headers or {})
    session_headers["mcp-session-id"] = session
    session_headers["mcp-protocol-version"] = version
    note = raw("POST", {"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session_headers)
    assert note.status == 202, note
    return session, session_headers
