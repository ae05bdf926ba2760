"""Runs cli/sql/*.sql with chDB on access logs and prints the results as one JSON document.

Usage: chdb_queries.py SQL_DIR CHARGEBACK_LOG [SPIKES_LOG] [--tool-calls TOOL_CALLS_LOG]
The CLI's tests compare these results with `ai-attribution report` and `ai-attribution spikes`.
"""

import json
import sys

from chdb import session


def rows(s, sql):
    out = s.query(sql, "JSONEachRow").bytes().decode()
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def load(s, log):
    s.query("TRUNCATE TABLE IF EXISTS ai_attribution_log")
    s.query(f"INSERT INTO ai_attribution_log (line) SELECT line FROM file('{log}', 'LineAsString')")


def main():
    args = sys.argv[1:]
    tool_log = None
    if "--tool-calls" in args:
        i = args.index("--tool-calls")
        tool_log = args[i + 1]
        del args[i : i + 2]
    sql_dir, log = args[0], args[1]
    sql = lambda name: open(f"{sql_dir}/{name}").read()
    s = session.Session()
    s.query(sql("schema.sql"))
    load(s, log)
    result = {
        "chargeback": rows(s, sql("chargeback.sql")),
        "rejections": rows(s, sql("rejections.sql")),
        "lines": rows(s, "SELECT count() AS lines, countIf(is_record) AS records FROM ai_attribution_log")[0],
    }
    if len(args) > 2:
        load(s, args[2])
        result["spikes"] = rows(s, sql("spikes.sql"))
    if tool_log:
        load(s, tool_log)
        result["tool_calls"] = rows(s, sql("tool_calls.sql"))
        result["tool_call_spikes"] = rows(s, sql("tool_call_spikes.sql"))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
