-- Spikes in tool calls by tool in 1-hour windows: the spikes of
--   ai-attribution spikes --event tool_call --measure calls --by tool --window 1h
-- with its defaults (--baseline 24 --threshold 3.5 --min-history 6 --min-calls 10), and the
-- service accounts and sessions behind each (the CLI lists the top 5 of each; here all, most calls
-- first). The method is spikes.sql's, measured in calls: each tool's windows run from its first
-- tool call to the last window of the data, empty windows counting as 0; a window's score is
-- (calls - median) / max(1.4826 * MAD, 5 % of the median, 1 call) over the tool's previous 24
-- windows. To change the baseline, change the 24 in the frame.
WITH
    3600 AS window_s,
    3.5 AS threshold,
    6 AS min_history,
    10 AS min_calls,
    tool_calls AS (
        SELECT
            if(tool = '', '(none)', tool) AS owner,
            intDiv(toInt64(toUnixTimestamp64Milli(start_time)), window_s * 1000) * window_s AS w,
            dims['service_account'] AS service_account,
            dims['session'] AS session
        FROM ai_attribution_log
        WHERE is_record AND event = 'tool_call'
    ),
    per_window AS (SELECT owner, w, count() AS calls FROM tool_calls GROUP BY owner, w),
    owners AS (SELECT owner, min(w) AS first_w FROM per_window GROUP BY owner),
    grid AS (
        SELECT owner, first_w + toInt64(n) * window_s AS w, toInt64(n) AS idx
        FROM owners
        CROSS JOIN (SELECT max(w) AS last_w FROM per_window) AS l
        ARRAY JOIN range(toUInt64(intDiv(l.last_w - first_w, window_s) + 1)) AS n
    ),
    filled AS (
        SELECT g.owner AS owner, g.w AS w, g.idx AS idx, toFloat64(p.calls) AS calls
        FROM grid AS g
        LEFT JOIN per_window AS p ON g.owner = p.owner AND g.w = p.w
        SETTINGS join_use_nulls = 0
    ),
    history AS (
        SELECT *,
            arraySort(groupArray(calls) OVER (PARTITION BY owner ORDER BY w ROWS BETWEEN 24 PRECEDING AND 1 PRECEDING)) AS h
        FROM filled
    ),
    medians AS (
        SELECT *,
            if(length(h) % 2 = 1, h[intDiv(length(h), 2) + 1], (h[intDiv(length(h), 2)] + h[intDiv(length(h), 2) + 1]) / 2) AS med
        FROM history
    ),
    deviations AS (SELECT *, arraySort(arrayMap(x -> abs(x - med), h)) AS d FROM medians),
    scored AS (
        SELECT *,
            if(length(d) % 2 = 1, d[intDiv(length(d), 2) + 1], (d[intDiv(length(d), 2)] + d[intDiv(length(d), 2) + 1]) / 2) AS mad,
            (calls - med) / greatest(1.4826 * mad, 0.05 * med, 1) AS score
        FROM deviations
    ),
    spikes AS (
        SELECT owner, w, toUInt64(calls) AS calls, med, score
        FROM scored
        WHERE idx >= min_history AND calls > 0 AND score > threshold AND calls >= min_calls
    ),
    by_account AS (
        SELECT owner, w, service_account, count() AS n FROM tool_calls
        WHERE service_account != '' GROUP BY owner, w, service_account
    ),
    accounts AS (
        SELECT owner, w, arraySort(x -> (-toInt64(x.2), x.1), groupArray((service_account, n))) AS service_accounts
        FROM by_account GROUP BY owner, w
    ),
    by_session AS (
        SELECT owner, w, session, count() AS n FROM tool_calls
        WHERE session != '' GROUP BY owner, w, session
    ),
    sessions AS (
        SELECT owner, w, arraySort(x -> (-toInt64(x.2), x.1), groupArray((session, n))) AS sessions
        FROM by_session GROUP BY owner, w
    )
SELECT
    s.owner AS tool,
    toDateTime(s.w, 'UTC') AS window_start,
    s.calls AS calls,
    s.med AS calls_median,
    round(s.score, 3) AS calls_score,
    a.service_accounts AS service_accounts,
    e.sessions AS sessions
FROM spikes AS s
LEFT JOIN accounts AS a ON a.owner = s.owner AND a.w = s.w
LEFT JOIN sessions AS e ON e.owner = s.owner AND e.w = s.w
ORDER BY window_start, calls_score DESC, tool
SETTINGS join_use_nulls = 0;
