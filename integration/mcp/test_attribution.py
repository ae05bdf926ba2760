"""What the filter records and rejects for MCP traffic, driven by the official `mcp` SDK (and raw
requests for what the SDK cannot send), with the plugin config of `integration/tests/mcp.rs`:
`service_account` from the mTLS peer or `x-service-account`, `session` from `mcp:session`,
`mcp.require` `[["service_account", "session"], ["service_account"]]` for `tools/call`,
`resources/read` and `prompts/get`, `header_mismatch: "record"`.

Every request to `/mcp` is one event (`event: tool_call`); the record is found by the request's
own `x-request-id`, which the suite's HTTP client sets on every request the SDK sends."""

import json

import pytest
from mcp.shared.exceptions import MCPError

from conftest import (
    ATTRIBUTION_REQUIRED,
    BROKEN_TOOL,
    CAFE_URI,
    CORRELATION_HEADER,
    FAILING_TOOL,
    GREETING_PROMPT,
    HEADER_MISMATCH,
    MODERN_VERSION,
    README_URI,
    SERVICE_ACCOUNT,
    TRACEPARENT,
    WEATHER_TOOL,
    Wire,
    connect,
    modern,
    modern_headers,
    open_session,
    raw,
    read_record,
    rpc,
    run,
)

pytestmark = pytest.mark.attribution

IDENTITY = {"x-service-account": SERVICE_ACCOUNT}
MODES = ["legacy", MODERN_VERSION]
REJECTION_START = "This tool call cannot be attributed: missing service_account."


def assert_record(record, **want):
    """Each `key=value` must hold (`None`: absent or empty)."""
    got = {k: record.get(k) for k in want}
    norm = {k: (None if v == "" else v) for k, v in got.items()}
    assert norm == want, f"{record!r}"


def assert_not_flagged(record):
    for key in ("mcp_header_mismatch", "mcp_session_mismatch"):
        assert record.get(key) in (None, "", "false"), f"{key}: {record!r}"


def assert_rejection_body(body, request_id, correlation_id):
    """The JSON-RPC error a rejection answers a request with."""
    assert body["jsonrpc"] == "2.0"
    assert body["id"] == request_id
    error = body["error"]
    assert error["code"] == ATTRIBUTION_REQUIRED
    assert error["message"].startswith(REJECTION_START), error["message"]
    assert error["data"]["missing"] == ["service_account"]
    assert error["data"]["correlation_id"] == correlation_id


# ---------------------------------------------------------------- the session generation


def test_session_flow_is_attributed():
    w = Wire("attr-session", IDENTITY)

    async def go():
        async with connect(w, mode="legacy") as client:
            await client.list_tools()
            await client.call_tool(WEATHER_TOOL, {"city": "Paris"})

    run(go())
    init = w.one("initialize")
    session = init.response_headers["mcp-session-id"]
    for ex in w.exchanges:
        if ex.status is None:
            continue  # a GET stream retry the client cancelled on close
        record = ex.record()
        assert_record(record, event="tool_call", decision="attributed", service_account=SERVICE_ACCOUNT)
        assert_not_flagged(record)
    assert_record(init.record(), mcp_method="initialize", jsonrpc_id=str(init.rpc_id))
    note = w.one("notifications/initialized").record()
    assert_record(note, mcp_method="notifications/initialized", jsonrpc_id=None, mcp_session=session)
    assert_record(w.one("tools/list").record(), mcp_method="tools/list", tool=None, session=session)
    call = w.one("tools/call")
    record = call.record()
    assert_record(
        record,
        mcp_method="tools/call",
        tool=WEATHER_TOOL,
        operation="execute_tool",
        session=session,
        mcp_session=session,
        mcp_protocol_version="2025-11-25",
        jsonrpc_id=str(call.rpc_id),
        error_type=None,
        rpc_status=None,
    )
    assert record.get("correlation_id") == call.response_headers[CORRELATION_HEADER]
    delete = w.find(http_method="DELETE")[0].record()
    assert_record(delete, event="tool_call", decision="attributed", mcp_session=session)


def test_session_call_without_a_service_account_is_rejected():
    w = Wire("attr-reject", {"x-user-id": "alice"})

    async def go():
        async with connect(w, mode="legacy") as client:
            tools = await client.list_tools()
            assert tools.tools, "tools/list is exempt: it passes"
            with pytest.raises(MCPError) as err:
                await client.call_tool(WEATHER_TOOL, {"city": "Paris"})
            return err.value

    err = run(go())
    call = w.one("tools/call")
    assert call.status == 403
    correlation_id = call.response_headers[CORRELATION_HEADER]
    # What the SDK shows its user: the JSON-RPC error of the rejection, as an MCPError.
    assert err.code == ATTRIBUTION_REQUIRED
    assert str(err).startswith(REJECTION_START), str(err)
    assert err.data["missing"] == ["service_account"]
    assert err.data["correlation_id"] == correlation_id
    assert call.response_headers["content-type"].startswith("application/json")
    record = call.record()
    assert_record(record, event="tool_call", decision="rejected", tool=WEATHER_TOOL, correlation_id=correlation_id)
    assert "service_account" in (record.get("reason") or ""), repr(record)
    for method in ("initialize", "notifications/initialized", "tools/list"):
        assert_record(w.one(method).record(), event="tool_call", decision="exempt")
    assert_record(w.find(http_method="DELETE")[0].record(), decision="exempt")


@pytest.mark.parametrize("shape", ["json", "sse"])
@pytest.mark.parametrize("mode", MODES)
def test_tool_errors_are_recorded(mode, shape):
    w = Wire("attr-errors", {**IDENTITY, "x-mock-behavior": shape})

    async def go():
        async with connect(w, mode=mode) as client:
            assert (await client.call_tool(FAILING_TOOL, {})).is_error
            with pytest.raises(MCPError):
                await client.call_tool(BROKEN_TOOL, {})
            with pytest.raises(MCPError):
                await client.call_tool("delete_everything", {})
            assert not (await client.call_tool(WEATHER_TOOL, {"city": "Oslo"})).is_error

    run(go())
    calls = w.find("tools/call")
    want = [
        (FAILING_TOOL, "tool_error", None),
        (BROKEN_TOOL, "-32603", "-32603"),
        ("delete_everything", "-32602", "-32602"),
        (WEATHER_TOOL, None, None),
    ]
    for call, (tool, error_type, rpc_status) in zip(calls, want, strict=True):
        assert_record(
            call.record(), decision="attributed", tool=tool, error_type=error_type, rpc_status=rpc_status
        )


def test_sse_answer_cut_short_is_recorded():
    state = {"cut": False}

    def cut(request):
        if state["cut"]:
            request.headers["x-mock-behavior"] = "sse-cut"

    w = Wire("attr-cut", IDENTITY, rewrite=cut)

    async def go():
        async with connect(w, mode="legacy") as client:
            state["cut"] = True
            with pytest.raises(MCPError):
                await client.call_tool(WEATHER_TOOL, {"city": "Kyiv"})
            state["cut"] = False

    run(go())
    record = w.one("tools/call").record()
    assert_record(record, event="tool_call", decision="attributed", tool=WEATHER_TOOL, rpc_status=None)
    assert record.get("error_type") != "tool_error", repr(record)


def test_get_and_delete_are_exempt_without_a_service_account():
    session, headers = open_session()
    get = raw("GET", headers={**headers, "accept": "text/event-stream"})
    assert get.status == 405
    assert_record(get.record(), event="tool_call", decision="exempt", mcp_session=session)
    delete = raw("DELETE", headers=headers)
    assert delete.status == 200
    assert_record(delete.record(), event="tool_call", decision="exempt", mcp_session=session)


def test_trace_id_from_traceparent():
    w = Wire("attr-trace", {**IDENTITY, "traceparent": TRACEPARENT})

    async def go():
        async with connect(w, mode=MODERN_VERSION) as client:
            await client.call_tool(WEATHER_TOOL, {"city": "Lima"})

    run(go())
    assert_record(w.one("tools/call").record(), trace_id="4bf92f3577b34da6a3ce929d0e0e4736")


# ---------------------------------------------------------------- stateless 2026-07-28


@pytest.mark.parametrize("mode", [MODERN_VERSION, "auto"])
def test_stateless_calls_are_attributed(mode):
    w = Wire("attr-stateless", IDENTITY)

    async def go():
        async with connect(w, mode=mode) as client:
            await client.list_tools()
            await client.call_tool(WEATHER_TOOL, {"city": "Lima"})
            await client.read_resource(README_URI)
            await client.read_resource(CAFE_URI)
            await client.get_prompt(GREETING_PROMPT, {"name": "Ada"})

    run(go())
    for ex in w.exchanges:
        record = ex.record()
        assert_record(
            record,
            event="tool_call",
            decision="attributed",
            service_account=SERVICE_ACCOUNT,
            mcp_method=ex.rpc_method,
            mcp_protocol_version=MODERN_VERSION,
            jsonrpc_id=str(ex.rpc_id),
            session=None,
            mcp_session=None,
        )
        assert_not_flagged(record)
    if mode == "auto":
        assert_record(w.exchanges[0].record(), mcp_method="server/discover")
    assert_record(w.one("tools/call").record(), tool=WEATHER_TOOL, operation="execute_tool")
    reads = w.find("resources/read")
    assert_record(reads[0].record(), resource_uri=README_URI)
    # The client sent the non-ASCII URI as a base64 Mcp-Name; the record has the URI itself.
    assert reads[1].headers["mcp-name"].startswith("=?base64?")
    assert_record(reads[1].record(), resource_uri=CAFE_URI)
    assert_record(w.one("prompts/get").record(), prompt=GREETING_PROMPT)


def test_stateless_call_without_a_service_account_is_rejected():
    w = Wire("attr-stateless-reject", {})

    async def go():
        async with connect(w, mode=MODERN_VERSION) as client:
            await client.list_tools()
            with pytest.raises(MCPError) as err:
                await client.call_tool(WEATHER_TOOL, {"city": "Lima"})
            return err.value

    err = run(go())
    call = w.one("tools/call")
    assert call.status == 403
    assert err.code == ATTRIBUTION_REQUIRED
    assert str(err).startswith(REJECTION_START)
    assert err.data["correlation_id"] == call.response_headers[CORRELATION_HEADER]
    assert_record(call.record(), decision="rejected", tool=WEATHER_TOOL, mcp_protocol_version=MODERN_VERSION)
    assert_record(w.one("tools/list").record(), decision="exempt")

    # The raw answer: a JSON-RPC error response echoing the request's id.
    body = modern("call-9", "tools/call", {"name": WEATHER_TOOL, "arguments": {"city": "Lima"}})
    resp = raw("POST", body, headers=modern_headers("tools/call", WEATHER_TOOL))
    assert resp.status == 403, resp
    assert resp.headers["content-type"].startswith("application/json")
    assert_rejection_body(resp.json(), "call-9", resp.headers[CORRELATION_HEADER])
    assert_record(resp.record(), decision="rejected", jsonrpc_id="call-9", correlation_id=resp.headers[CORRELATION_HEADER])


def test_a_user_alone_does_not_attribute_a_tool_call():
    """`require` (model calls) accepts a user; `mcp.require` wants a service account."""
    body = modern(3, "prompts/get", {"name": GREETING_PROMPT})
    resp = raw("POST", body, headers={"x-user-id": "alice", **modern_headers("prompts/get", GREETING_PROMPT)})
    assert resp.status == 403, resp
    assert_rejection_body(resp.json(), 3, resp.headers[CORRELATION_HEADER])
    assert_record(resp.record(), decision="rejected", prompt=GREETING_PROMPT, user="alice")


def test_model_calls_are_still_model_calls():
    resp = raw(
        "POST",
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-user-id": "alice"},
        path="/v1/chat/completions",
    )
    assert resp.status == 200, resp
    assert_record(resp.record(), event="model_call", decision="attributed", user="alice", mcp_method=None)


# ---------------------------------------------------------------- what the SDK cannot send


def test_session_header_forged_by_another_caller():
    owner = Wire("attr-owner", {"x-service-account": "agent-a"})
    held = {}

    async def go():
        async with connect(owner, mode="legacy") as client:
            await client.call_tool(WEATHER_TOOL, {"city": "Paris"})
            held["session"] = owner.one("initialize").response_headers["mcp-session-id"]
            # While the session is open, another caller sends a tool call under it.
            forged = raw(
                "POST",
                rpc(99, "tools/call", {"name": WEATHER_TOOL, "arguments": {"city": "Paris"}}),
                headers={
                    "x-service-account": "agent-b",
                    "mcp-session-id": held["session"],
                    "mcp-protocol-version": "2025-11-25",
                },
                tag="forged",
            )
            held["forged"] = forged

    run(go())
    session = held["session"]
    own = owner.one("tools/call").record()
    assert_record(own, service_account="agent-a", session=session, decision="attributed")
    assert_not_flagged(own)
    forged = held["forged"]
    assert forged.status == 200, "recorded, not rejected"
    assert_record(
        forged.record(),
        event="tool_call",
        service_account="agent-b",
        session=session,
        mcp_session=session,
        mcp_session_mismatch="true",
    )


@pytest.mark.parametrize("forge", ["name", "method"])
def test_mirrored_header_mismatch_is_recorded(forge):
    body = modern(5, "tools/call", {"name": WEATHER_TOOL, "arguments": {"city": "Rome"}})
    headers = modern_headers("tools/call", WEATHER_TOOL)
    if forge == "name":
        headers["mcp-name"] = "read_calendar"
    else:
        headers["mcp-method"] = "tools/list"
    resp = raw("POST", body, headers={**IDENTITY, **headers})
    # `header_mismatch: "record"`: the filter passes it on, and the server refuses it.
    assert resp.status == 400, resp
    assert resp.json()["error"]["code"] == HEADER_MISMATCH
    assert_record(
        resp.record(),
        event="tool_call",
        decision="attributed",
        mcp_method="tools/call",
        tool=WEATHER_TOOL,
        mcp_header_mismatch="true",
        error_type=str(HEADER_MISMATCH),
        rpc_status=str(HEADER_MISMATCH),
    )
    matching = raw("POST", body, headers={**IDENTITY, **modern_headers("tools/call", WEATHER_TOOL)})
    assert matching.status == 200
    assert matching.record().get("mcp_header_mismatch") in (None, "", "false")


def test_mismatch_through_the_sdk_is_recorded_on_each_attempt():
    def forge(request):
        if request.headers.get("mcp-method") == "tools/call":
            request.headers["mcp-name"] = "read_calendar"

    w = Wire("attr-sdk-mismatch", IDENTITY, rewrite=forge)

    async def go():
        async with connect(w, mode=MODERN_VERSION) as client:
            with pytest.raises(MCPError):
                await client.call_tool(WEATHER_TOOL, {"city": "Rome"})

    run(go())
    for call in w.find("tools/call"):
        assert_record(call.record(), tool=WEATHER_TOOL, mcp_header_mismatch="true", rpc_status="-32020")


def test_batch_is_one_event():
    session, headers = open_session("2025-03-26", headers=IDENTITY)
    batch = [
        rpc(1, "tools/call", {"name": WEATHER_TOOL, "arguments": {"city": "Oslo"}}),
        {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": "t", "progress": 1}},
        rpc(2, "tools/call", {"name": FAILING_TOOL, "arguments": {}}),
    ]
    resp = raw("POST", batch, headers=headers)
    assert resp.status == 200, resp
    assert [a["id"] for a in resp.json()] == [1, 2]
    assert_record(resp.record(), event="tool_call", decision="attributed", session=session)


def test_batch_rejection_answers_each_request():
    session, headers = open_session("2025-03-26")
    batch = [
        rpc(1, "tools/call", {"name": WEATHER_TOOL, "arguments": {"city": "Oslo"}}),
        {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": "t", "progress": 1}},
        rpc("two", "resources/read", {"uri": README_URI}),
    ]
    resp = raw("POST", batch, headers=headers)
    assert resp.status == 403, resp
    assert resp.headers["content-type"].startswith("application/json")
    correlation_id = resp.headers[CORRELATION_HEADER]
    errors = resp.json()
    assert isinstance(errors, list), errors
    assert [e["id"] for e in errors] == [1, "two"], "one error per request that has an id"
    for e in errors:
        assert_rejection_body(e, e["id"], correlation_id)
    assert_record(resp.record(), event="tool_call", decision="rejected", correlation_id=correlation_id)
    # A batch of exempt methods passes.
    exempt = raw("POST", [rpc(3, "tools/list", {}), rpc(4, "ping")], headers=headers)
    assert exempt.status == 200, exempt
    assert_record(exempt.record(), decision="exempt")


def test_oversized_body_with_the_name_first():
    """The filter needs only the first fields: a 2 MiB argument after them passes whole."""
    notes = "x" * (2 << 20)
    body = rpc(11, "tools/call", {"name": WEATHER_TOOL, "arguments": {"city": "Paris", "notes": notes}})
    _, headers = open_session(headers=IDENTITY)
    resp = raw("POST", body, headers=headers)
    assert resp.status == 200, resp
    assert resp.json()["result"]["isError"] is False
    assert_record(resp.record(), event="tool_call", decision="attributed", tool=WEATHER_TOOL, jsonrpc_id="11")


def test_oversized_body_with_the_name_last():
    """`params.name` after 2 MiB: past any bound the filter holds a body for. Whatever it
    decides, it records the event, and never with a tool name it did not read."""
    notes = "x" * (2 << 20)
    text = json.dumps({"jsonrpc": "2.0", "id": 12, "method": "tools/call",
                       "params": {"arguments": {"city": "Paris", "notes": notes}, "name": WEATHER_TOOL}})
    _, headers = open_session(headers=IDENTITY)
    resp = raw("POST", text.encode(), headers=headers)
    assert resp.status < 500, resp
    record = read_record(resp.request_id)
    assert_record(record, event="tool_call", mcp_method="tools/call")
    assert record.get("tool") in (None, WEATHER_TOOL), repr(record)
