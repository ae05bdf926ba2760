-- Tool calls (agents' calls to MCP servers) by tool, service account and session per day: the
-- numbers of
--   ai-attribution report --event tool_call --by tool,service_account,session --period day
-- (a missing value is '' here, "(none)" in the CLI's table and null in its JSON). Tool calls have
-- no tokens and no cost; what counts is how many there were, how they were decided, and how many
-- answers were errors (error.type: a JSON-RPC error code, or tool_error for a tool's own error).
-- Other groupings: mcp_method, mcp_session, decision, or any dimension through dims['...'].
SELECT
    toStartOfDay(start_time) AS period_start,
    tool,
    dims['service_account'] AS service_account,
    dims['session'] AS session,
    count() AS calls,
    countIf(decision = 'attributed') AS attributed,
    countIf(decision = 'rejected') AS rejected,
    countIf(decision = 'would_reject') AS would_reject,
    countIf(decision = 'exempt') AS exempt,
    countIf(error_type != '') AS tool_errors
FROM ai_attribution_log
WHERE is_record AND event = 'tool_call'
GROUP BY period_start, tool, service_account, session
ORDER BY period_start, tool, service_account, session;
