"""A SPIFFE caller: the official `mcp` SDK over mTLS with a client certificate whose URI SAN is
a SPIFFE ID, through an Envoy listener that requires client certificates. The service account
comes from the certificate (`peer:spiffe_id`, the first source), not from a header the caller
sets."""

import pytest

from conftest import (
    CORRELATION_HEADER,
    MODERN_VERSION,
    SPIFFE_ID,
    WEATHER_TOOL,
    Wire,
    connect,
    modern,
    modern_headers,
    raw,
    run,
)

pytestmark = pytest.mark.mtls


@pytest.mark.parametrize("mode", ["legacy", MODERN_VERSION])
def test_spiffe_caller_is_the_service_account(mode):
    # A header claiming another service account loses to the certificate.
    w = Wire("spiffe", {"x-service-account": "someone-else"})

    async def go():
        async with connect(w, mode=mode) as client:
            result = await client.call_tool(WEATHER_TOOL, {"city": "Paris"})
            assert not result.is_error

    run(go())
    call = w.one("tools/call")
    assert call.status == 200
    record = call.record()
    assert record.get("event") == "tool_call", repr(record)
    assert record.get("decision") == "attributed", repr(record)
    assert record.get("service_account") == SPIFFE_ID, repr(record)
    assert record.get("tool") == WEATHER_TOOL, repr(record)
    assert record.get("correlation_id") == call.response_headers[CORRELATION_HEADER]
    if mode == "legacy":
        session = w.one("initialize").response_headers["mcp-session-id"]
        assert record.get("session") == session, repr(record)
    else:
        assert record.get("session") in (None, ""), repr(record)


def test_spiffe_caller_raw_stateless_call():
    body = modern(1, "tools/call", {"name": WEATHER_TOOL, "arguments": {"city": "Oslo"}})
    resp = raw("POST", body, headers=modern_headers("tools/call", WEATHER_TOOL))
    assert resp.status == 200, resp
    record = resp.record()
    assert record.get("service_account") == SPIFFE_ID, repr(record)
    assert record.get("mcp_protocol_version") == MODERN_VERSION, repr(record)
