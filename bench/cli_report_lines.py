"""Writes N access-log lines in the shipped format (envoy/envoy.yaml): model calls of many users,
service accounts, business units and models, streamed and not, priced and not, rejections, and
requests that are no model call. Deterministic (seeded). Usage: cli_report_lines.py N > access.log
"""

import json
import random
import sys

MODELS = [
    ("openai", "chat", "gpt-4o", "/v1/chat/completions", (2.5, 10.0, 1.25)),
    ("openai", "chat", "gpt-4o-mini", "/v1/chat/completions", (0.15, 0.6, 0.075)),
    ("openai", "embeddings", "text-embedding-3-small", "/v1/embeddings", None),
    ("anthropic", "chat", "claude-sonnet-4-5", "/v1/messages", (3.0, 15.0, 0.3)),
    ("aws.bedrock", "chat", "anthropic.claude-3-haiku", "/model/anthropic.claude-3-haiku/converse", None),
    ("gcp.gemini", "chat", "gemini-2.0-flash", "/v1beta/models/gemini-2.0-flash:generateContent", None),
]


def main():
    n = int(sys.argv[1])
    rnd = random.Random(14)
    users = [f"user-{i:04d}" for i in range(1000)]
    accounts = [f"svc-{i:02d}" for i in range(50)]
    units = [f"bu-{i:02d}" for i in range(20)]
    apps = ["notebook", "chatbot", "search", "summarizer", "agent"]
    out = sys.stdout
    t0 = 1793491200  # 2026-11-01T00:00:00Z
    for i in range(n):
        t = t0 + i * 2  # about 23 days for a million lines
        stamp = "2026-11-%02dT%02d:%02d:%02d.%03dZ" % (1 + t // 86400 - t0 // 86400, t // 3600 % 24, t // 60 % 60, t % 60, i % 1000)
        rid = "%08x-%04x-4%03x-8%03x-%012x" % (rnd.getrandbits(32), rnd.getrandbits(16), rnd.getrandbits(12), rnd.getrandbits(12), rnd.getrandbits(48))
        if i % 50 == 0:
            out.write(json.dumps({"start_time": stamp, "method": "GET", "path": "/healthz", "status": 200, "details": "via_upstream", "duration_ms": 0, "request_id": rid, "decision": None, "user": None, "record": None}, separators=(",", ":")) + "\n")
            continue
        provider, op, model, path, price = MODELS[rnd.randrange(len(MODELS))]
        bu = units[rnd.randrange(len(units))]
        rec = {"ai_attribution.correlation_id": rid, "ai_attribution.business_unit": bu, "gen_ai.provider.name": provider, "gen_ai.operation.name": op}
        sources = ["business_unit=header:x-business-unit"]
        if rnd.random() < 0.6:
            rec["user.id"] = users[rnd.randrange(len(users))]
            rec["session.id"] = "s-%d" % rnd.randrange(20000)
            sources.append("user=header:x-user-id")
        else:
            rec["ai_attribution.service_account"] = accounts[rnd.randrange(len(accounts))]
            sources.append("service_account=header:x-service-account")
        rec["ai_attribution.app"] = apps[rnd.randrange(len(apps))]
        status = 200
        if rnd.random() < 0.04:
            rec.pop("user.id", None)
            rec.pop("ai_attribution.service_account", None)
            rec["ai_attribution.decision"] = "rejected"
            rec["ai_attribution.reason"] = "missing:user"
            rec["ai_attribution.usage_status"] = "not_applicable"
            status = 403
        else:
            rec["ai_attribution.decision"] = "attributed"
            rec["ai_attribution.reason"] = ""
            rec["gen_ai.request.model"] = model
            rec["gen_ai.response.model"] = model
            rec["gen_ai.response.id"] = "resp-%d" % i
            stream = rnd.random() < 0.3
            rec["ai_attribution.stream"] = stream
            if stream and rnd.random() < 0.05:
                rec["ai_attribution.usage_status"] = "missing"
            else:
                inp, outp = rnd.randrange(10, 4000), rnd.randrange(1, 1000)
                cached = rnd.randrange(0, inp) if rnd.random() < 0.3 else 0
                rec["ai_attribution.usage_status"] = "reported"
                rec["gen_ai.usage.input_tokens"] = inp
                rec["gen_ai.usage.output_tokens"] = outp
                rec["gen_ai.usage.cache_read.input_tokens"] = cached
                if price:
                    p_in, p_out, p_cached = price
                    rec["ai_attribution.cost_usd"] = round(((inp - cached) * p_in + cached * p_cached + outp * p_out) / 1e6, 10)
        rec["ai_attribution.sources"] = ",".join(sorted(sources))
        line = {
            "start_time": stamp, "method": "POST", "path": path, "status": status,
            "details": "via_upstream" if status == 200 else "ai_attribution_rejected",
            "duration_ms": rnd.randrange(1, 3000), "request_id": rid,
            "decision": rec["ai_attribution.decision"], "reason": rec.get("ai_attribution.reason"),
            "correlation_id": rid, "user": rec.get("user.id"), "service_account": rec.get("ai_attribution.service_account"),
            "app": rec.get("ai_attribution.app"), "session": rec.get("session.id"), "business_unit": bu,
            "sources": rec["ai_attribution.sources"], "provider": provider, "operation": op,
            "request_model": rec.get("gen_ai.request.model"), "response_model": rec.get("gen_ai.response.model"),
            "response_id": rec.get("gen_ai.response.id"),
            "stream": None if "ai_attribution.stream" not in rec else str(rec["ai_attribution.stream"]).lower(),
            "input_tokens": None if "gen_ai.usage.input_tokens" not in rec else str(rec["gen_ai.usage.input_tokens"]),
            "output_tokens": None if "gen_ai.usage.output_tokens" not in rec else str(rec["gen_ai.usage.output_tokens"]),
            "cached_input_tokens": None if "gen_ai.usage.cache_read.input_tokens" not in rec else str(rec["gen_ai.usage.cache_read.input_tokens"]),
            "reasoning_tokens": None, "usage_status": rec["ai_attribution.usage_status"],
            "cost_usd": None if "ai_attribution.cost_usd" not in rec else repr(rec["ai_attribution.cost_usd"]),
            "record": {"@type": "type.googleapis.com/google.protobuf.Struct", "value": dict(sorted(rec.items()))},
        }
        out.write(json.dumps(dict(sorted(line.items())), separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
