-- Chargeback by business unit and user per day: the numbers of
--   ai-attribution report --by business_unit,user --period day
-- (columns input, cached_input, output, reasoning and cost are the CLI's input_tokens,
-- cached_input_tokens, output_tokens, reasoning_tokens and cost_usd; a missing dimension is '' here, "(none)" in the CLI's table and null in its JSON).
-- Other groupings: replace dims['business_unit'] / dims['user'] with any dimension, or with
-- model, provider, operation, tool or decision; toStartOfHour / toStartOfMonth for other periods.
SELECT
    toStartOfDay(start_time) AS period_start,
    dims['business_unit'] AS business_unit,
    dims['user'] AS user,
    count() AS calls,
    countIf(decision = 'attributed') AS attributed,
    countIf(decision = 'rejected') AS rejected,
    countIf(decision = 'would_reject') AS would_reject,
    sum(ifNull(input_tokens, 0)) AS input,
    sum(ifNull(cached_input_tokens, 0)) AS cached_input,
    sum(ifNull(output_tokens, 0)) AS output,
    sum(ifNull(reasoning_tokens, 0)) AS reasoning,
    round(sum(ifNull(cost_usd, 0)), 10) AS cost,
    -- Gaps: tokens counted but no price; usage the provider did not report in full.
    countIf(cost_usd IS NULL AND decision != 'rejected' AND (input_tokens IS NOT NULL OR output_tokens IS NOT NULL)) AS unpriced_calls,
    countIf(usage_status = 'missing') AS usage_missing,
    countIf(usage_status = 'partial') AS usage_partial
FROM ai_attribution_log
WHERE is_record
GROUP BY period_start, business_unit, user
ORDER BY period_start, business_unit, user;
