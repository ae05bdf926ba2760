-- Benchmark config C: a Lua filter doing the header work of ai-attribution's header attribution,
-- and less: it reads :path plus 4 request headers, rejects an unattributed model call with a 403
-- JSON body, sets the correlation id (from x-request-id) on the request and on the response.
-- It writes no filter-state record, no metrics, and scans no request or response body.
function envoy_on_request(request_handle)
  local headers = request_handle:headers()
  local path = headers:get(":path")
  if path == nil or string.sub(path, 1, 4) ~= "/v1/" then
    return
  end
  local user = headers:get("x-user-id")
  local service_account = headers:get("x-service-account")
  local business_unit = headers:get("x-business-unit")
  local request_id = headers:get("x-request-id") or ""
  if (user == nil and service_account == nil) or business_unit == nil then
    request_handle:respond(
      {[":status"] = "403", ["content-type"] = "application/json", ["x-ai-correlation-id"] = request_id},
      '{"error":{"type":"attribution_required","message":"unattributed model call: user and business_unit are required"}}')
    return
  end
  headers:replace("x-ai-correlation-id", request_id)
  request_handle:streamInfo():dynamicMetadata():set("bench.attribution", "correlation_id", request_id)
end

function envoy_on_response(response_handle)
  local md = response_handle:streamInfo():dynamicMetadata():get("bench.attribution")
  if md ~= nil then
    response_handle:headers():replace("x-ai-correlation-id", md["correlation_id"])
  end
end
