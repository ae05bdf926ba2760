"""The official `mcp` SDK through Envoy to the local MCP server: both protocol generations, JSON
and SSE answers, tool errors, a stream cut short and a mirrored-header mismatch, checked as the
client sees them (what went on the wire and what the SDK returned or raised). These hold whatever
the filter records; every call carries a service account, so they also hold with the filter's
MCP configuration."""

import pytest
from mcp.shared.exceptions import MCPError

from conftest import (
    BROKEN_TOOL,
    CAFE_URI,
    CONNECTION_CLOSED,
    FAILING_TOOL,
    GREETING_PROMPT,
    HEADER_MISMATCH,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    LEGACY_VERSIONS,
    MODERN_VERSION,
    README_URI,
    SERVICE_ACCOUNT,
    WEATHER_TOOL,
    Wire,
    connect,
    modern,
    modern_headers,
    open_session,
    raw,
    rpc,
    run,
)

pytestmark = pytest.mark.protocol

IDENTITY = {"x-service-account": SERVICE_ACCOUNT}
MODES = ["legacy", MODERN_VERSION]


def wire(tag, behavior=None, rewrite=None):
    headers = dict(IDENTITY)
    if behavior:
        headers["x-mock-behavior"] = behavior
    return Wire(tag, headers, rewrite)


@pytest.mark.parametrize("version", LEGACY_VERSIONS)
def test_session_generation_initialize_list_call(version):
    w = wire("session", behavior=f"mcp-version={version}")

    async def go():
        async with connect(w, mode="legacy") as client:
            assert client.protocol_version == version
            tools = await client.list_tools()
            assert [t.name for t in tools.tools] == [WEATHER_TOOL, FAILING_TOOL, BROKEN_TOOL]
            result = await client.call_tool(WEATHER_TOOL, {"city": "Paris"})
            assert not result.is_error
            assert result.content[0].text == "Weather in Paris: 18°C, partly cloudy."
            read = await client.read_resource(README_URI)
            assert str(read.contents[0].uri) == README_URI
            prompt = await client.get_prompt(GREETING_PROMPT, {"name": "Ada"})
            assert prompt.messages[0].content.text == "Say hello to Ada."

    run(go())
    init = w.one("initialize")
    assert init.status == 200
    assert init.body["params"]["protocolVersion"] == "2025-11-25", "the SDK offers its newest handshake version"
    assert "mcp-session-id" not in init.headers and "mcp-protocol-version" not in init.headers
    session = init.response_headers["mcp-session-id"]
    later = [ex for ex in w.exchanges if ex is not init]
    assert later, w.exchanges
    for ex in later:
        assert ex.session == session, ex
        assert ex.headers.get("mcp-protocol-version") == version, ex
        assert "mcp-method" not in ex.headers, "no mirrored headers before 2026-07-28"
    assert w.one("notifications/initialized").status == 202
    assert w.one("tools/call").status == 200
    deletes = w.find(http_method="DELETE")
    assert [d.status for d in deletes] == [200], "the SDK ends its session on close"


@pytest.mark.parametrize("mode", [MODERN_VERSION, "auto"])
def test_stateless_2026_07_28(mode):
    w = wire("stateless")

    async def go():
        async with connect(w, mode=mode) as client:
            assert client.protocol_version == MODERN_VERSION
            await client.list_tools()
            result = await client.call_tool(WEATHER_TOOL, {"city": "Lima"})
            assert result.content[0].text == "Weather in Lima: 18°C, partly cloudy."
            cafe = await client.read_resource(CAFE_URI)
            assert str(cafe.contents[0].uri) in (CAFE_URI, "file:///notes/caf%C3%A9.md")
            await client.get_prompt(GREETING_PROMPT, {})

    run(go())
    assert not w.find("initialize"), "no handshake"
    if mode == "auto":
        assert w.exchanges[0].rpc_method == "server/discover"
    for ex in w.exchanges:
        assert ex.status == 200, ex
        assert ex.session is None, ex
        assert ex.headers["mcp-protocol-version"] == MODERN_VERSION
        assert ex.headers["mcp-method"] == ex.rpc_method
        meta = ex.body["params"]["_meta"]
        assert meta["io.modelcontextprotocol/protocolVersion"] == MODERN_VERSION
    assert w.one("tools/call").headers["mcp-name"] == WEATHER_TOOL
    assert w.one("prompts/get").headers["mcp-name"] == GREETING_PROMPT
    assert w.one("resources/read").headers["mcp-name"] == "=?base64?ZmlsZTovLy9ub3Rlcy9jYWbDqS5tZA==?="
    assert "mcp-name" not in w.one("tools/list").headers
    assert not w.find(http_method="GET") and not w.find(http_method="DELETE")


@pytest.mark.parametrize("mode", MODES)
def test_sse_answers_with_progress(mode):
    w = wire("sse", behavior="sse")
    seen = []

    async def on_progress(progress, total, message):
        seen.append((progress, total, message))

    async def go():
        async with connect(w, mode=mode) as client:
            result = await client.call_tool(WEATHER_TOOL, {"city": "Oslo"}, progress_callback=on_progress)
            assert result.content[0].text == "Weather in Oslo: 18°C, partly cloudy."

    run(go())
    call = w.one("tools/call")
    assert call.response_headers["content-type"] == "text/event-stream"
    assert seen == [(1.0, 1.0, "working")], "the progress event before the response reached the SDK"


@pytest.mark.parametrize("mode", MODES)
def test_tool_errors_as_the_sdk_shows_them(mode):
    w = wire("errors")

    async def go():
        async with connect(w, mode=mode) as client:
            failed = await client.call_tool(FAILING_TOOL, {})
            assert failed.is_error
            assert failed.content[0].text == "The weather service is unavailable."
            with pytest.raises(MCPError) as broken:
                await client.call_tool(BROKEN_TOOL, {})
            assert broken.value.code == INTERNAL_ERROR
            assert str(broken.value) == "Internal error: broken_tool crashed"
            with pytest.raises(MCPError) as unknown:
                await client.call_tool("delete_everything", {})
            assert unknown.value.code == INVALID_PARAMS
            assert str(unknown.value) == "Unknown tool: delete_everything"

    run(go())
    assert [ex.status for ex in w.find("tools/call")] == [200, 200, 200]


@pytest.mark.parametrize("mode", MODES)
def test_sse_answer_cut_short(mode):
    state = {"cut": False}

    def cut(request):
        if state["cut"]:
            request.headers["x-mock-behavior"] = "sse-cut"

    w = wire("cut", rewrite=cut)

    async def go():
        async with connect(w, mode=mode) as client:
            state["cut"] = True
            with pytest.raises(MCPError) as err:
                await client.call_tool(WEATHER_TOOL, {"city": "Kyiv"})
            state["cut"] = False
            assert err.value.code == CONNECTION_CLOSED
            assert str(err.value) == "SSE stream ended without a response"
            # The session (or the stateless client) still works afterwards.
            again = await client.call_tool(WEATHER_TOOL, {"city": "Kyiv"})
            assert not again.is_error

    run(go())
    calls = w.find("tools/call")
    assert [c.status for c in calls] == [200, 200]
    assert calls[0].response_headers["content-type"] == "text/event-stream"


def test_header_mismatch_sdk_relists_then_raises():
    def forge(request):
        if request.headers.get("mcp-method") == "tools/call":
            request.headers["mcp-name"] = "read_calendar"

    w = wire("mismatch", rewrite=forge)

    async def go():
        async with connect(w, mode=MODERN_VERSION) as client:
            with pytest.raises(MCPError) as err:
                await client.call_tool(WEATHER_TOOL, {"city": "Rome"})
            return err.value

    err = run(go())
    assert err.code == HEADER_MISMATCH
    assert str(err) == "Header mismatch: Mcp-Name header value 'read_calendar' does not match body value 'get_weather'"
    # The SDK's recovery for a mismatch: list the tools again, resend once, then give up.
    assert [ex.rpc_method for ex in w.exchanges] == ["tools/call", "tools/list", "tools/call"]
    assert [ex.status for ex in w.exchanges] == [400, 200, 400]


def test_raw_session_rules_through_envoy():
    list_tools = rpc(1, "tools/list", {})
    missing = raw("POST", list_tools, headers=IDENTITY)
    assert missing.status == 400, missing
    unknown = raw(
        "POST",
        list_tools,
        headers={**IDENTITY, "mcp-session-id": "0" * 32, "mcp-protocol-version": "2025-11-25"},
    )
    assert unknown.status == 404, unknown
    session, headers = open_session(headers=IDENTITY)
    no_version = raw("POST", list_tools, headers={**IDENTITY, "mcp-session-id": session})
    assert no_version.status == 400, no_version
    sse_only = raw("POST", list_tools, headers={**headers, "accept": "text/event-stream"})
    assert sse_only.status == 200
    assert sse_only.headers["content-type"] == "text/event-stream"
    assert len(sse_only.events()) == 1
    get = raw("GET", headers={**headers, "accept": "text/event-stream"})
    assert get.status == 405, get
    delete = raw("DELETE", headers=headers)
    assert delete.status == 200, delete
    assert raw("POST", list_tools, headers=headers).status == 404


def test_raw_batch_2025_03_26_through_envoy():
    session, headers = open_session("2025-03-26", headers=IDENTITY)
    batch = [
        rpc(1, "tools/call", {"name": WEATHER_TOOL, "arguments": {"city": "Oslo"}}),
        {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": "t", "progress": 1}},
        rpc(2, "tools/call", {"name": FAILING_TOOL, "arguments": {}}),
    ]
    resp = raw("POST", batch, headers=headers)
    assert resp.status == 200, resp
    answers = resp.json()
    assert [a["id"] for a in answers] == [1, 2]
    assert answers[1]["result"]["isError"] is True
    later = raw("POST", batch, headers={**headers, "mcp-protocol-version": "2025-06-18"})
    assert later.status == 400, "the header must name the session's version"


def test_raw_stateless_rules_through_envoy():
    call = modern(7, "tools/call", {"name": WEATHER_TOOL, "arguments": {"city": "Rome"}})
    ok = raw("POST", call, headers={**IDENTITY, **modern_headers("tools/call", WEATHER_TOOL)})
    assert ok.status == 200, ok
    assert ok.json()["result"]["resultType"] == "complete"
    forged = raw("POST", call, headers={**IDENTITY, **modern_headers("tools/call", "read_calendar")})
    assert forged.status == 400, forged
    assert forged.json()["id"] == 7
    assert forged.json()["error"]["code"] == HEADER_MISMATCH
    no_headers = raw("POST", call, headers=IDENTITY)
    assert no_headers.status == 400 and no_headers.json()["error"]["code"] == HEADER_MISMATCH
