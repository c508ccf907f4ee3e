-- grain: one row per distinct tool list declared on the model calls of the wanted traces
-- parameters: $traces
SELECT tools::VARCHAR AS tools, count(*) AS n
FROM spans WHERE trace_id IN (SELECT unnest($traces)) AND tools IS NOT NULL
GROUP BY 1 ORDER BY n DESC
