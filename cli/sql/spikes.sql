-- Spikes by business unit in 1-hour windows: the spikes of
--   ai-attribution spikes --by business_unit --window 1h
-- with its defaults (--baseline 24 --threshold 3.5 --min-history 6 --min-tokens 1000 --min-cost 0.01);
-- tool_call_spikes.sql measures tool calls, which have no tokens or cost, in calls.
-- Each owner's windows run from its first record to the last window of the data, empty windows
-- counting as 0. A window's score is (value - median) / max(1.4826 * MAD, 5 % of the median, 1
-- token or $0.0001) over the owner's previous 24 windows; a spike is a score over the threshold
-- in a window that reaches the floor. To change the baseline, change the 24 in both frames.
WITH
    3600 AS window_s,
    3.5 AS threshold,
    6 AS min_history,
    1000 AS min_tokens,
    0.01 AS min_cost,
    per_window AS (
        SELECT
            if(dims['business_unit'] = '', '(none)', dims['business_unit']) AS owner,
            intDiv(toInt64(toUnixTimestamp64Milli(start_time)), window_s * 1000) * window_s AS w,
            count() AS calls,
            sum(ifNull(input_tokens, 0) + ifNull(output_tokens, 0)) AS tokens,
            sum(ifNull(cost_usd, 0)) AS cost
        FROM ai_attribution_log
        WHERE is_record
        GROUP BY owner, w
    ),
    owners AS (SELECT owner, min(w) AS first_w FROM per_window GROUP BY owner),
    grid AS (
        SELECT owner, first_w + toInt64(n) * window_s AS w, toInt64(n) AS idx
        FROM owners
        CROSS JOIN (SELECT max(w) AS last_w FROM per_window) AS l
        ARRAY JOIN range(toUInt64(intDiv(l.last_w - first_w, window_s) + 1)) AS n
    ),
    filled AS (
        SELECT g.owner AS owner, g.w AS w, g.idx AS idx,
               p.calls AS calls, toFloat64(p.tokens) AS tokens, p.cost AS cost
        FROM grid AS g
        LEFT JOIN per_window AS p ON g.owner = p.owner AND g.w = p.w
        SETTINGS join_use_nulls = 0
    ),
    history AS (
        SELECT *,
            arraySort(groupArray(tokens) OVER (PARTITION BY owner ORDER BY w ROWS BETWEEN 24 PRECEDING AND 1 PRECEDING)) AS ht,
            arraySort(groupArray(cost) OVER (PARTITION BY owner ORDER BY w ROWS BETWEEN 24 PRECEDING AND 1 PRECEDING)) AS hc
        FROM filled
    ),
    medians AS (
        SELECT *,
            if(length(ht) % 2 = 1, ht[intDiv(length(ht), 2) + 1], (ht[intDiv(length(ht), 2)] + ht[intDiv(length(ht), 2) + 1]) / 2) AS med_t,
            if(length(hc) % 2 = 1, hc[intDiv(length(hc), 2) + 1], (hc[intDiv(length(hc), 2)] + hc[intDiv(length(hc), 2) + 1]) / 2) AS med_c
        FROM history
    ),
    deviations AS (
        SELECT *,
            arraySort(arrayMap(x -> abs(x - med_t), ht)) AS dt,
            arraySort(arrayMap(x -> abs(x - med_c), hc)) AS dc
        FROM medians
    ),
    scored AS (
        SELECT *,
            if(length(dt) % 2 = 1, dt[intDiv(length(dt), 2) + 1], (dt[intDiv(length(dt), 2)] + dt[intDiv(length(dt), 2) + 1]) / 2) AS mad_t,
            if(length(dc) % 2 = 1, dc[intDiv(length(dc), 2) + 1], (dc[intDiv(length(dc), 2)] + dc[intDiv(length(dc), 2) + 1]) / 2) AS mad_c,
            (tokens - med_t) / greatest(1.4826 * mad_t, 0.05 * med_t, 1) AS score_t,
            (cost - med_c) / greatest(1.4826 * mad_c, 0.05 * med_c, 0.0001) AS score_c
        FROM deviations
    )
SELECT
    owner,
    toDateTime(w, 'UTC') AS window_start,
    calls,
    toUInt64(tokens) AS tokens,
    round(cost, 10) AS cost_usd_total,
    med_t AS tokens_median,
    round(score_t, 3) AS tokens_score,
    round(score_c, 3) AS cost_score,
    score_t > threshold AND tokens >= min_tokens AS tokens_spike,
    score_c > threshold AND cost >= min_cost AND cost > 0 AS cost_spike
FROM scored
WHERE idx >= min_history AND calls > 0
  AND ((score_t > threshold AND tokens >= min_tokens) OR (score_c > threshold AND cost >= min_cost AND cost > 0))
ORDER BY window_start, tokens_score DESC, owner;
