"""Runs cli/sql/*.sql with chDB on access logs and prints the results as one JSON document.

Usage: chdb_queries.py SQL_DIR CHARGEBACK_LOG [SPIKES_LOG]
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
    sql_dir, log = sys.argv[1], sys.argv[2]
    s = session.Session()
    s.query(open(f"{sql_dir}/schema.sql").read())
    load(s, log)
    result = {
        "chargeback": rows(s, open(f"{sql_dir}/chargeback.sql").read()),
        "rejections": rows(s, open(f"{sql_dir}/rejections.sql").read()),
        "lines": rows(s, "SELECT count() AS lines, countIf(is_record) AS records FROM ai_attribution_log")[0],
    }
    if len(sys.argv) > 3:
        load(s, sys.argv[3])
        result["spikes"] = rows(s, open(f"{sql_dir}/spikes.sql").read())
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
