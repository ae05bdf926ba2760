"""Reading a request's line from Envoy's JSON access log, for the Python suites (integration/sdk and
integration/mcp; `integration::pytest::command` puts this folder on their PYTHONPATH)."""

import json
import time


class Record:
    """One access-log line. A flat key absent from the line is read from the structured record
    (`record.value`), under its name in `STRUCTURED` (a subclass says which keys it reads so)."""

    STRUCTURED = {}

    def __init__(self, line):
        self.line = line
        record = line.get("record")
        value = record.get("value") if isinstance(record, dict) else None
        self.structured = value if isinstance(value, dict) else {}

    def raw(self, key):
        value = self.line.get(key)
        if value is None and key in self.STRUCTURED:
            value = self.structured.get(self.STRUCTURED[key])
        return value

    def get(self, key):
        return self.raw(key)


def read_record(path, request_id, record=Record, timeout=10.0, settle=None):
    """The line of the request sent with `x-request-id: request_id`, as a `record`. Envoy writes it
    when the stream ends, flushing every 20 ms; the last such line counts. `settle`, if given, is a
    predicate the line must satisfy (until `timeout`, after which the line is returned as it is)."""
    deadline = time.monotonic() + timeout
    while True:
        last = None
        try:
            with open(path, encoding="utf-8") as f:
                for text in f:
                    try:
                        line = json.loads(text)
                    except ValueError:
                        continue
                    if line.get("request_id") == request_id:
                        last = line
        except FileNotFoundError:
            pass
        found = None if last is None else record(last)
        if found is not None and (settle is None or settle(found)):
            return found
        if time.monotonic() > deadline:
            if found is not None:
                return found
            raise AssertionError(f"no access-log line for request {request_id}")
        time.sleep(0.02)
