-- ai-attribution records in ClickHouse, loaded from the access log the project ships: one row per
-- JSON line, kept whole in `line`, with typed columns materialized from it at insert time.
--
-- Why this shape rather than the OpenTelemetry collector's `otel_logs` table: the filter's record
-- reaches disk as Envoy's JSON access-log line (envoy/envoy.yaml, Istio's MeshConfig), not as an
-- OTLP log, and `otel_logs` keeps attributes as Map(String, String), which turns token counts and
-- costs into strings. Loading the line as it is needs no collector, keeps numbers typed, follows
-- the same rule as the CLI (`record.value` is the source of truth, the flat keys only when the
-- record is absent or null), and keeps the raw line for re-processing when the record grows.
--
-- Load:   INSERT INTO ai_attribution_log (line) SELECT line FROM file('access.log', 'LineAsString');
--   or:   clickhouse-client -q "INSERT INTO ai_attribution_log (line) FORMAT LineAsString" < access.log
-- Lines that are not records (not JSON, other JSON, requests that were no AI event) load too,
-- with is_record = 0, so they can be counted as the CLI counts them.

CREATE TABLE IF NOT EXISTS ai_attribution_log
(
    line String CODEC(ZSTD(3)),

    -- The structured record: record.value, or a bare object; '' when the line has none.
    record String MATERIALIZED multiIf(
        JSONType(line, 'record', 'value') = 'Object', JSONExtractRaw(line, 'record', 'value'),
        JSONType(line, 'record', '@type') = 'Null' AND JSONType(line, 'record') = 'Object', JSONExtractRaw(line, 'record'),
        ''),
    has_record UInt8 MATERIALIZED record NOT IN ('', '{}'),

    start_time DateTime64(3, 'UTC') MATERIALIZED ifNull(
        parseDateTime64BestEffortOrNull(JSONExtractString(line, 'start_time'), 3, 'UTC'),
        toDateTime64(0, 3, 'UTC')),
    request_id String MATERIALIZED JSONExtractString(line, 'request_id'),
    status String MATERIALIZED toString(JSONExtractRaw(line, 'status')),

    -- model_call or tool_call (an agent's call to an MCP server); a record without one is a model call.
    event LowCardinality(String) MATERIALIZED multiIf(
        has_record AND JSONExtractString(record, 'ai_attribution.event') != '', JSONExtractString(record, 'ai_attribution.event'),
        NOT has_record AND JSONExtractString(line, 'event') != '', JSONExtractString(line, 'event'),
        'model_call'),
    decision LowCardinality(String) MATERIALIZED if(has_record,
        JSONExtractString(record, 'ai_attribution.decision'), JSONExtractString(line, 'decision')),
    reason String MATERIALIZED if(has_record,
        JSONExtractString(record, 'ai_attribution.reason'), JSONExtractString(line, 'reason')),
    correlation_id String MATERIALIZED if(has_record,
        JSONExtractString(record, 'ai_attribution.correlation_id'), JSONExtractString(line, 'correlation_id')),
    sources String MATERIALIZED if(has_record,
        JSONExtractString(record, 'ai_attribution.sources'), JSONExtractString(line, 'sources')),
    -- A line is a record when it has a structured record, or flat keys that say what was decided.
    is_record UInt8 MATERIALIZED has_record OR decision != '',

    provider LowCardinality(String) MATERIALIZED if(has_record,
        JSONExtractString(record, 'gen_ai.provider.name'), JSONExtractString(line, 'provider')),
    operation LowCardinality(String) MATERIALIZED if(has_record,
        JSONExtractString(record, 'gen_ai.operation.name'), JSONExtractString(line, 'operation')),
    request_model LowCardinality(String) MATERIALIZED if(has_record,
        JSONExtractString(record, 'gen_ai.request.model'), JSONExtractString(line, 'request_model')),
    response_model LowCardinality(String) MATERIALIZED if(has_record,
        JSONExtractString(record, 'gen_ai.response.model'), JSONExtractString(line, 'response_model')),
    -- The model that was priced: the response's, else the request's.
    model LowCardinality(String) MATERIALIZED if(response_model != '', response_model, request_model),
    requested_tools String MATERIALIZED if(has_record,
        JSONExtractString(record, 'ai_attribution.requested_tools'), JSONExtractString(line, 'requested_tools')),

    -- Tool calls: the MCP method, the tool, the client's MCP session, and the error the answer carried.
    tool LowCardinality(String) MATERIALIZED if(has_record,
        JSONExtractString(record, 'gen_ai.tool.name'), JSONExtractString(line, 'tool')),
    mcp_method LowCardinality(String) MATERIALIZED if(has_record,
        JSONExtractString(record, 'mcp.method.name'), JSONExtractString(line, 'mcp_method')),
    mcp_session String MATERIALIZED if(has_record,
        JSONExtractString(record, 'mcp.session.id'), JSONExtractString(line, 'mcp_session')),
    error_type LowCardinality(String) MATERIALIZED if(has_record,
        JSONExtractString(record, 'error.type'), JSONExtractString(line, 'error_type')),

    input_tokens Nullable(UInt64) MATERIALIZED if(has_record,
        JSONExtract(record, 'gen_ai.usage.input_tokens', 'Nullable(UInt64)'),
        toUInt64OrNull(JSONExtractString(line, 'input_tokens'))),
    output_tokens Nullable(UInt64) MATERIALIZED if(has_record,
        JSONExtract(record, 'gen_ai.usage.output_tokens', 'Nullable(UInt64)'),
        toUInt64OrNull(JSONExtractString(line, 'output_tokens'))),
    cached_input_tokens Nullable(UInt64) MATERIALIZED if(has_record,
        JSONExtract(record, 'gen_ai.usage.cache_read.input_tokens', 'Nullable(UInt64)'),
        toUInt64OrNull(JSONExtractString(line, 'cached_input_tokens'))),
    reasoning_tokens Nullable(UInt64) MATERIALIZED if(has_record,
        JSONExtract(record, 'gen_ai.usage.reasoning.output_tokens', 'Nullable(UInt64)'),
        toUInt64OrNull(JSONExtractString(line, 'reasoning_tokens'))),
    usage_status LowCardinality(String) MATERIALIZED if(has_record,
        JSONExtractString(record, 'ai_attribution.usage_status'), JSONExtractString(line, 'usage_status')),
    -- USD; NULL when no price matched.
    cost_usd Nullable(Float64) MATERIALIZED if(has_record,
        JSONExtract(record, 'ai_attribution.cost_usd', 'Nullable(Float64)'),
        toFloat64OrNull(JSONExtractString(line, 'cost_usd'))),

    -- Every dimension by its configured name: user.id -> user, session.id -> session,
    -- ai_attribution.<dim> -> <dim> (or the flat keys that are no request field).
    dims Map(LowCardinality(String), String) MATERIALIZED CAST(if(has_record,
        arrayMap(kv -> (multiIf(kv.1 = 'user.id', 'user', kv.1 = 'session.id', 'session', substring(kv.1, 16)), kv.2),
            arrayFilter(kv -> kv.2 != '' AND (kv.1 IN ('user.id', 'session.id') OR (startsWith(kv.1, 'ai_attribution.')
                AND position(substring(kv.1, 16), '.') = 0
                AND substring(kv.1, 16) NOT IN ('event', 'decision', 'reason', 'correlation_id', 'request_id', 'sources',
                    'trace_id', 'version', 'stream', 'usage_status', 'usage_reason', 'response_end', 'cost_usd',
                    'requested_tools', 'requested_tool_call_ids', 'mcp_header_mismatch', 'mcp_session_mismatch',
                    'exception'))),
                JSONExtractKeysAndValues(record, 'String'))),
        arrayFilter(kv -> kv.2 != '' AND kv.1 NOT IN ('record', 'start_time', 'method', 'path', 'status', 'details',
                'request_id', 'duration_ms', 'flags', 'response_code', 'response_code_details', 'response_flags',
                'duration', 'authority', 'protocol', 'upstream_host', 'upstream_cluster', 'user_agent',
                'x_forwarded_for', 'bytes_received', 'bytes_sent', 'decision', 'reason', 'correlation_id', 'sources',
                'provider', 'operation', 'request_model', 'response_model', 'response_id', 'stream', 'input_tokens',
                'output_tokens', 'cached_input_tokens', 'reasoning_tokens', 'usage_status', 'cost_usd',
                'event', 'trace_id', 'usage_reason', 'response_end', 'requested_tools', 'requested_tool_call_ids',
                'tool', 'mcp_method', 'mcp_session', 'mcp_protocol_version', 'jsonrpc_id', 'prompt', 'resource_uri',
                'error_type', 'rpc_status', 'mcp_header_mismatch', 'mcp_session_mismatch', 'quota_budgets',
                'quota_outcome', 'quota_over', 'quota_reported', 'exception'),
            JSONExtractKeysAndValues(line, 'String'))), 'Map(LowCardinality(String), String)')
)
ENGINE = MergeTree
ORDER BY (is_record, start_time);
