-- wrk script for `make soak`: rotates four request types through Envoy + ai-attribution:
--   0 attributed model call (OpenAI chat JSON, every other time Anthropic messages)
--   1 rejected model call (no identity headers -> 403 from the filter)
--   2 streamed model call (OpenAI chat SSE with include_usage)
--   3 non-model request (GET /healthz)
-- 37 users x 5 business units, so metric label values and records vary.
local requests = {}
local counter = 0

function init(args)
  local units = {"research", "finance", "platform", "sales", "support"}
  local chat = '{"model":"gpt-4o","messages":[{"role":"user","content":"Hello"}]}'
  local stream = '{"model":"gpt-4o","messages":[{"role":"user","content":"Hello"}],' ..
                 '"stream":true,"stream_options":{"include_usage":true}}'
  local messages = '{"model":"claude-sonnet-4-5","max_tokens":256,"messages":[{"role":"user","content":"Hello"}]}'
  for i = 0, 739 do
    local kind = i % 4
    local who = {["x-user-id"] = "user-" .. (i % 37), ["x-business-unit"] = units[(i % 5) + 1],
                 ["content-type"] = "application/json"}
    local r
    if kind == 0 then
      if math.floor(i / 4) % 2 == 0 then
        r = wrk.format("POST", "/v1/chat/completions", who, chat)
      else
        who["anthropic-version"] = "2023-06-01"
        r = wrk.format("POST", "/v1/messages", who, messages)
      end
    elseif kind == 1 then
      r = wrk.format("POST", "/v1/chat/completions", {["content-type"] = "application/json"}, chat)
    elseif kind == 2 then
      r = wrk.format("POST", "/v1/chat/completions", who, stream)
    else
      r = wrk.format("GET", "/healthz", {}, nil)
    end
    requests[#requests + 1] = r
  end
end

function request()
  counter = counter + 1
  return requests[(counter % #requests) + 1]
end
