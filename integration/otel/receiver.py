"""An OTLP/gRPC logs receiver for the tests: it accepts ExportLogsServiceRequest messages on
127.0.0.1, answers each with an empty ExportLogsServiceResponse, and appends every log record it
received to a file, one JSON object per line, together with its resource's attributes and its
scope. It is built on the OpenTelemetry project's own protobuf definitions (opentelemetry-proto)
and grpcio, pinned in requirements.txt beside this file.

    python receiver.py --port PORT --out FILE

It prints `listening on 127.0.0.1:PORT` once it accepts connections, and runs until it is
stopped (SIGTERM or SIGINT).

Each line is `{"resource": {...}, "scope": {...}, "log_record": {...}, "size": N}`: the three
messages as protobuf's JSON mapping with the proto field names (`time_unix_nano`,
`kvlist_value`, ...), and `size`, the bytes of that log record as protobuf on the wire.
"""

import argparse
import json
import signal
import sys
import threading
from concurrent import futures

import grpc
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc


def as_dict(message):
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


class Receiver(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()

    def Export(self, request, context):
        lines = []
        for resource_logs in request.resource_logs:
            resource = as_dict(resource_logs.resource)
            for scope_logs in resource_logs.scope_logs:
                scope = as_dict(scope_logs.scope)
                for record in scope_logs.log_records:
                    lines.append(
                        json.dumps(
                            {
                                "resource": resource,
                                "scope": scope,
                                "log_record": as_dict(record),
                                "size": record.ByteSize(),
                            },
                            sort_keys=True,
                        )
                    )
        with self.lock, open(self.out, "a", encoding="utf-8") as f:
            for line in lines:
                f.write(line + "\n")
        return logs_service_pb2.ExportLogsServiceResponse()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Receiver(args.out), server)
    address = f"127.0.0.1:{args.port}"
    if server.add_insecure_port(address) == 0:
        print(f"cannot listen on {address}", file=sys.stderr)
        sys.exit(1)
    server.start()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"listening on {address}", flush=True)
    stop.wait()
    server.stop(grace=1).wait()


if __name__ == "__main__":
    main()
