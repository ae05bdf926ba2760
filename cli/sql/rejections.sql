-- Rejections and would_reject decisions by reason: the "Rejections by reason" of
--   ai-attribution report
SELECT
    decision,
    reason,
    count() AS calls
FROM ai_attribution_log
WHERE is_record AND decision IN ('rejected', 'would_reject')
GROUP BY decision, reason
ORDER BY calls DESC, decision, reason;
