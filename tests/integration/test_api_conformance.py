#!/usr/bin/python3
"""Conformance of a running r53reg to openapi.yaml.

Usage: test_api_conformance.py R53REG_BINARY [OPENAPI_YAML]

Starts the binary as a real process on 127.0.0.1:0 (the port comes from its `msg=listening`
log line), drives every operation over loopback sockets and checks each answer against the
OpenAPI description:
  - the status code is declared for the operation (requests that match no path use the
    document's `x-unmatched-responses`; a known path with an undocumented method must get
    the 405 declared on the path's operations, with an `Allow` header naming the documented
    methods);
  - the Content-Type is the declared media type;
  - declared required headers are present and match their schema;
  - the JSON body validates against the declared schema (JSON Schema 2020-12, `$ref`s
    resolved, formats checked).
A few contract facts from docs/design-core.md that a schema cannot express are checked too
(201 then 200, sorting, totals, 409 changes nothing, tokens never logged, SIGTERM exits 0),
and the security rules (token scopes, /backends/self, --allow-cidr, 429 with Retry-After,
one audit line per mutation, loopback and link-local addresses refused without
--allow-special). Drains and health checks get their own run (--ttl 1): drain,
drained after one TTL, return to service, /backends/self/drain, the `check` body, and two
backends whose checks fail (TCP to port 9 of 127.0.0.x) of which --max-down-share 0.5 lets
one go down and keeps the other in DNS.

Backend addresses are 127.0.0.x and 2001:db8::/32 only, and ::1, 169.254.1.1, fe80::1 and
0.1.2.3 in the --allow-special runs, which check no backend. Prints every mismatch, then
`N passed, M failed`; exits 1 when anything failed.

Only the standard library plus Debian's python3-yaml and python3-jsonschema.
"""

import datetime
import http.client
import ipaddress
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading

import yaml
from jsonschema import Draft202012Validator, FormatChecker

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SPEC = os.path.normpath(os.path.join(HERE, "..", "..", "openapi.yaml"))

BUCKETS = 4
MAX_PER_BUCKET = 3
RECORD_NAME = "api.example.com"
TOKEN = "secret1-0123456789"
WRONG_TOKEN = "not-the-token-4711"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 20.0
HTTP_TIMEOUT = 10.0
BIG_BODY = 2 * 1024 * 1024  # the server's --max-body default is 1 MiB
# These runs send many mutations from 127.0.0.1 in a burst; the per-client rate limit
# (--client-rps, default 20/s) is checked by run_security instead.
NO_CLIENT_LIMIT = ("--client-rps", "0")

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# The server renders its times as RFC 3339 UTC with milliseconds.
MS_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


# --- results ---------------------------------------------------------------------------------

class Results:
    def __init__(self):
        self.passed = 0
        self.failed = []  # (label, [problems])

    def record(self, label, problems):
        if problems:
            self.failed.append((label, problems))
            print("FAIL %s" % label)
            for p in problems:
                print("     - %s" % p)
        else:
            self.passed += 1
            print("ok   %s" % label)
        sys.stdout.flush()

    def summary(self):
        if self.failed:
            print("\nMismatches:")
            for label, problems in self.failed:
                for p in problems:
                    print("  %s: %s" % (label, p))
        print("%d passed, %d failed" % (self.passed, len(self.failed)))
        return 0 if not self.failed else 1


# --- the OpenAPI document ---------------------------------------------------------------------

class Spec:
    """openapi.yaml with $refs resolved (no schema here is recursive)."""

    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.doc = yaml.safe_load(f)
        self.routes = []  # (regex, template, path item)
        for template, item in self.doc.get("paths", {}).items():
            rx = "^"
            for part in re.split(r"(\{[^}]+\})", template):
                if part.startswith("{"):
                    # The server's {ip} takes the rest of the path, so /backends/1.2.3.4/24
                    # reaches the IP parser and gets 400 (see the parameter's description).
                    rx += "(?P<%s>.+)" % re.sub(r"\W", "_", part[1:-1])
                else:
                    rx += re.escape(part)
            self.routes.append((re.compile(rx + "$"), template, item))

    def pointer(self, ref):
        if not ref.startswith("#/"):
            raise ValueError("only local $refs are supported: %r" % ref)
        node = self.doc
        for token in ref[2:].split("/"):
            token = token.replace("~1", "/").replace("~0", "~")
            node = node[token]
        return node

    def deref(self, node, depth=0):
        """A copy of node with every $ref replaced by its target (siblings kept via allOf)."""
        if depth > 64:
            raise ValueError("$ref nesting too deep (recursive schema?)")
        if isinstance(node, list):
            return [self.deref(x, depth + 1) for x in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            target = self.deref(self.pointer(node["$ref"]), depth + 1)
            rest = {k: self.deref(v, depth + 1) for k, v in node.items() if k != "$ref"}
            if not rest:
                return target
            if isinstance(target, dict) and not any(k in target for k in rest):
                merged = dict(target)
                merged.update(rest)
                return merged
            return {"allOf": [target, rest]}
        return {k: self.deref(v, depth + 1) for k, v in node.items()}

    def match(self, path):
        """(template, path item) for a raw path (query stripped), or (None, None)."""
        path = path.split("?", 1)[0]
        for rx, template, item in self.routes:
            if rx.match(path):
                return template, item
        return None, None

    @staticmethod
    def documented_methods(item):
        return sorted(m.upper() for m in item if m in METHODS)

    def expected_responses(self, method, path):
        """(where, responses dict) that may answer this request."""
        template, item = self.match(path)
        if item is None:
            return "unmatched path", self.doc.get("x-unmatched-responses", {})
        m = method.lower()
        if m == "head" and "head" not in item and "get" in item:
            m = "get"  # HEAD is answered like GET without a body
        if m in item:
            return "%s %s" % (m.upper(), template), item[m].get("responses", {})
        # A method the path does not document: only its 405 applies.
        declared = {}
        for op in (item[x] for x in item if x in METHODS):
            if "405" in op.get("responses", {}):
                declared["405"] = op["responses"]["405"]
                break
        return "%s %s (undocumented method)" % (method.upper(), template), declared


def media_type(value):
    return (value or "").split(";", 1)[0].strip().lower()


def lookup_status(responses, status):
    s = str(status)
    if s in responses:
        return responses[s]
    wild = s[0] + "XX"
    for k in responses:
        if str(k).upper() == wild:
            return responses[k]
    return responses.get("default")


# --- HTTP over real sockets -------------------------------------------------------------------

class Answer:
    def __init__(self, method, path, status, headers, body, error=None):
        self.method = method
        self.path = path
        self.status = status
        self.headers = headers  # http.client.HTTPMessage or None
        self.body = body
        self.error = error

    def header(self, name):
        return self.headers.get(name) if self.headers is not None else None

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "%s %s -> %s" % (self.method, self.path, self.status if self.error is None
                                else "error: %s" % self.error)


def request(port, method, path, headers=None, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        hdrs = {"Accept": "application/json, application/problem+json"}
        hdrs.update(headers or {})
        if body is not None:
            hdrs["Content-Length"] = str(len(body))
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders()
        if body:
            try:
                view = memoryview(body)
                for off in range(0, len(body), 65536):
                    conn.sock.sendall(view[off:off + 65536])
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may answer (413) and close before reading it all
        resp = conn.getresponse()
        data = resp.read()
        return Answer(method, path, resp.status, resp.msg, data)
    except (OSError, http.client.HTTPException) as e:
        return Answer(method, path, None, None, b"", error="%s: %s" % (type(e).__name__, e))
    finally:
        conn.close()


def request_expect_continue(port, method, path, body):
    """Send the head with `Expect: 100-continue`; send the body only after `100 Continue`."""
    sock = None
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=HTTP_TIMEOUT)
        head = ("%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: %d\r\n"
                "Content-Type: application/octet-stream\r\nExpect: 100-continue\r\n"
                "Accept: application/json, application/problem+json\r\n\r\n"
                % (method, path, port, len(body))).encode("ascii")
        sock.sendall(head)
        ready, _, _ = select.select([sock], [], [], 3.0)
        sent_body = False
        if ready:
            peek = sock.recv(64, socket.MSG_PEEK)
            if re.match(rb"HTTP/1\.[01] 100", peek):
                buf = b""
                while b"\r\n\r\n" not in buf:
                    chunk = sock.recv(1)
                    if not chunk:
                        raise ConnectionError("closed after 100 Continue")
                    buf += chunk
                sent_body = True
        else:
            sent_body = True  # no interim answer: send the body like curl does after its wait
        if sent_body:
            try:
                sock.sendall(body)
            except (BrokenPipeError, ConnectionResetError):
                pass
        resp = http.client.HTTPResponse(sock, method=method)
        resp.begin()
        data = resp.read()
        return Answer(method, path, resp.status, resp.msg, data)
    except (OSError, http.client.HTTPException) as e:
        return Answer(method, path, None, None, b"", error="%s: %s" % (type(e).__name__, e))
    finally:
        if sock is not None:
            sock.close()


# --- checking one answer against the document -------------------------------------------------

class Checker:
    def __init__(self, spec, results):
        self.spec = spec
        self.results = results
        self.formats = FormatChecker()

    def validate(self, schema, instance):
        v = Draft202012Validator(schema, format_checker=self.formats)
        out = []
        for err in sorted(v.iter_errors(instance), key=lambda e: list(e.absolute_path)):
            where = "/".join(str(p) for p in err.absolute_path) or "(root)"
            out.append("%s: %s" % (where, err.message))
        return out

    def conformance(self, ans, expect_status=None):
        """Mismatches between one answer and the document (an empty list when it conforms)."""
        problems = []
        if ans.error is not None:
            return ["no HTTP answer: %s" % ans.error]
        if expect_status is not None and ans.status != expect_status:
            problems.append("status %d, expected %d (body %s)"
                            % (ans.status, expect_status, ans.body[:300]))
        where, responses = self.spec.expected_responses(ans.method, ans.path)
        declared = lookup_status(responses, ans.status)
        if declared is None:
            problems.append("status %d is not declared for %s (declared: %s)"
                            % (ans.status, where, ", ".join(sorted(map(str, responses)))))
            return problems
        declared = self.spec.deref(declared)
        for name, h in (declared.get("headers") or {}).items():
            value = ans.header(name)
            if value is None:
                if h.get("required"):
                    problems.append("required header %s missing" % name)
                continue
            if "schema" in h:
                for e in self.validate(h["schema"], value):
                    problems.append("header %s=%r: %s" % (name, value, e))
        content = declared.get("content") or {}
        if ans.method == "HEAD":
            if ans.body:
                problems.append("HEAD answer has a body (%d bytes)" % len(ans.body))
            return problems
        if not content:
            if ans.body:
                problems.append("no content declared but the body has %d bytes" % len(ans.body))
            return problems
        ctype = media_type(ans.header("Content-Type"))
        if ctype not in content:
            problems.append("Content-Type %r, declared %s"
                            % (ans.header("Content-Type"), ", ".join(sorted(content))))
            return problems
        schema = content[ctype].get("schema")
        if not ctype.endswith("json"):
            # Text media types (text/plain for /metrics): the body must be text for the schema.
            try:
                text = ans.body.decode("utf-8")
            except UnicodeDecodeError as e:
                problems.append("body is not UTF-8 text (%s)" % e)
                return problems
            if schema is not None:
                for e in self.validate(schema, text):
                    problems.append("body: %s" % e)
            return problems
        try:
            body = ans.json()
        except (ValueError, UnicodeDecodeError) as e:
            problems.append("body is not JSON (%s): %r" % (e, ans.body[:300]))
            return problems
        if schema is not None:
            for e in self.validate(schema, body):
                problems.append("body %s (body %s)" % (e, json.dumps(body)[:300]))
        if ans.status == 405 and "undocumented method" in where:
            problems += self.allow_header(ans)
        return problems

    def allow_header(self, ans):
        _, item = self.spec.match(ans.path)
        allow = ans.header("Allow") or ""
        listed = {m.strip().upper() for m in allow.split(",") if m.strip()}
        out = []
        for m in self.spec.documented_methods(item):
            if m not in listed:
                out.append("Allow %r does not list documented method %s" % (allow, m))
        if ans.method.upper() in listed:
            out.append("Allow %r lists the refused method %s" % (allow, ans.method))
        return out

    def check(self, label, ans, expect_status=None, extra=None):
        """Record one check: conformance plus the contract facts returned by extra(ans)."""
        problems = self.conformance(ans, expect_status)
        if extra is not None and ans.error is None and not problems:
            try:
                problems += extra(ans) or []
            except Exception as e:  # a malformed answer must not stop the run
                problems.append("contract check raised %s: %s" % (type(e).__name__, e))
        self.results.record("%s [%r]" % (label, ans), problems)
        return ans


# --- the server process -----------------------------------------------------------------------

class Server:
    def __init__(self, binary, env_extra=None, args_extra=(), allow_special=True):
        env = {k: v for k, v in os.environ.items() if not k.startswith("R53REG_")}
        env.update(env_extra or {})
        self.argv = [binary, "--listen", "127.0.0.1:0", "--buckets", str(BUCKETS),
                     "--max-per-bucket", str(MAX_PER_BUCKET), "--record-name", RECORD_NAME]
        if allow_special:  # the backends of these runs are 127.0.0.x
            self.argv.append("--allow-special")
        self.argv += list(args_extra)
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        self.lines = []
        self.port = None
        self.listening = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            if self.port is None and re.search(r"\bmsg=\"?listening\b", line):
                m = re.search(r"\blisten=\"?(?:\[[^\]]*\]|[0-9.]+):(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    self.listening.set()
        self.listening.set()  # EOF: wake the waiter

    def wait_listening(self):
        self.listening.wait(START_TIMEOUT)
        if self.port is None:
            raise RuntimeError("no `msg=listening ... listen=127.0.0.1:PORT` line within %.0fs "
                               "(exit %s); stderr:\n%s" % (START_TIMEOUT, self.proc.poll(),
                                                           "\n".join(self.lines[-30:])))
        return self.port

    def log(self):
        return "\n".join(self.lines)

    def stop(self):
        """SIGTERM, wait; the exit status (or None when it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        self.reader.join(5)
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# --- the scenario -----------------------------------------------------------------------------

def placement_of(ip, kind):
    def extra(ans):
        p = ans.json()
        out = []
        if p.get("ip") != ip:
            out.append("ip %r, expected %r" % (p.get("ip"), ip))
        if p.get("type") != kind:
            out.append("type %r, expected %r" % (p.get("type"), kind))
        sid = "%s_%s" % (RECORD_NAME, p.get("bucket"))
        if p.get("set_identifier") not in (sid, sid + "."):
            out.append("set_identifier %r, expected %r" % (p.get("set_identifier"), sid))
        if not 0 <= p.get("bucket", -1) < BUCKETS:
            out.append("bucket %r is not an eligible index (< %d)" % (p.get("bucket"), BUCKETS))
        return out
    return extra


def same_placement(first, state=None):
    def extra(ans):
        p = ans.json()
        out = []
        for k in ("ip", "type", "bucket", "set_identifier"):
            if p.get(k) != first.get(k):
                out.append("%s %r differs from the first answer's %r" % (k, p.get(k), first.get(k)))
        if state is not None and p.get("state") != state:
            out.append("state %r, expected %r" % (p.get("state"), state))
        return out
    return extra


def problem_type(slug):
    def extra(ans):
        t = ans.json().get("type")
        want = "urn:r53reg:problem:" + slug
        return [] if t == want else ["problem type %r, expected %r" % (t, want)]
    return extra


def both(*fns):
    def extra(ans):
        out = []
        for f in fns:
            out += f(ans) or []
        return out
    return extra


def addr_key(p):
    a = ipaddress.ip_address(p["ip"])
    return (0 if p["type"] == "A" else 1, int(a))


def backends_list(expected_ips):
    def extra(ans):
        d = ans.json()
        out = []
        got = [p["ip"] for p in d["backends"]]
        if d["count"] != len(d["backends"]):
            out.append("count %d but %d backends" % (d["count"], len(d["backends"])))
        if sorted(got) != sorted(expected_ips):
            out.append("backends %s, expected %s" % (got, sorted(expected_ips)))
        if d["backends"] != sorted(d["backends"], key=addr_key):
            out.append("not sorted A before AAAA, then by address: %s" % got)
        return out
    return extra


def buckets_view(n_a, n_aaaa, down=(), draining=()):
    """GET /buckets holds n_a/n_aaaa registered backends (served, down and draining); the
    listed addresses are down or draining, every other one is served."""
    def extra(ans):
        d = ans.json()
        out = []
        bs = d["buckets"]
        used = lambda b: b["count"] + len(b["down"]) + len(b["draining"])  # noqa: E731
        a = sum(used(b) for b in bs if b["type"] == "A")
        aaaa = sum(used(b) for b in bs if b["type"] == "AAAA")
        t = d["totals"]
        if (a, aaaa) != (n_a, n_aaaa):
            out.append("registered A=%d AAAA=%d, expected %d and %d" % (a, aaaa, n_a, n_aaaa))
        for key, want_ips in (("down", down), ("draining", draining)):
            got = sorted(ip for b in bs for ip in b[key])
            if got != sorted(want_ips):
                out.append("%s addresses %s, expected %s" % (key, got, sorted(want_ips)))
        want = {"backends": n_a + n_aaaa, "a": n_a, "aaaa": n_aaaa, "buckets": len(bs),
                "down": len(down), "draining": len(draining),
                "capacity": 2 * BUCKETS * MAX_PER_BUCKET - n_a - n_aaaa}
        for k, v in want.items():
            if t.get(k) != v:
                out.append("totals.%s %r, expected %r" % (k, t.get(k), v))
        for b in bs:
            sid = "%s_%d" % (RECORD_NAME, b["bucket"])
            if b["set_identifier"] not in (sid, sid + "."):
                out.append("set_identifier %r, expected %r" % (b["set_identifier"], sid))
            if b["count"] != len(b["values"]):
                out.append("%s: count %d but %d values" % (sid, b["count"], len(b["values"])))
            if not used(b):
                out.append("%s: listed without any registered backend" % sid)
            for key in ("values", "down", "draining"):
                if b[key] != sorted(b[key], key=lambda v: int(ipaddress.ip_address(v))):
                    out.append("%s: %s not sorted: %s" % (sid, key, b[key]))
            if len(set(b["values"]) | set(b["down"]) | set(b["draining"])) != used(b):
                out.append("%s: an address is in two of values/down/draining" % sid)
            if b["weight"] != min(b["count"], 255):
                out.append("%s: weight %d, proportional weight is %d"
                           % (sid, b["weight"], b["count"]))
            if b["capacity"] != MAX_PER_BUCKET:
                out.append("%s: capacity %d, expected --max-per-bucket %d"
                           % (sid, b["capacity"], MAX_PER_BUCKET))
            accepting = b["bucket"] < BUCKETS and used(b) < MAX_PER_BUCKET
            if b["accepting"] != accepting:
                out.append("%s: accepting %r, expected %r" % (sid, b["accepting"], accepting))
            if b["ttl"] != d["ttl"]:
                out.append("%s: ttl %d differs from the list's %d" % (sid, b["ttl"], d["ttl"]))
        return out
    return extra


def empty_body(ans):
    return [] if not ans.body else ["HEAD answered with a %d-byte body" % len(ans.body)]


def run_anonymous(binary, chk, results):
    srv = Server(binary, args_extra=NO_CLIENT_LIMIT)
    try:
        port = srv.wait_listening()
    except RuntimeError as e:
        srv.kill()
        results.record("start r53reg on 127.0.0.1:0", [str(e)])
        return
    results.record("start r53reg on 127.0.0.1:0 (port %d)" % port, [])
    R = lambda m, p, **kw: request(port, m, p, **kw)  # noqa: E731

    try:
        chk.check("healthz", R("GET", "/healthz"), 200)
        chk.check("metrics", R("GET", "/metrics"), 200,
                  lambda a: [] if b"# TYPE r53reg_commit_batches_total counter" in a.body
                  else ["no r53reg_commit_batches_total family in /metrics"])
        chk.check("readyz", R("GET", "/readyz"), 200,
                  lambda a: [] if a.json().get("provider") == "memory"
                  else ["provider %r, expected 'memory'" % a.json().get("provider")])
        chk.check("HEAD healthz", R("HEAD", "/healthz"), 200, empty_body)
        chk.check("empty list", R("GET", "/backends"), 200, backends_list([]))
        chk.check("empty buckets", R("GET", "/buckets"), 200, buckets_view(0, 0))

        # Register, re-register, look up, list.
        v4, v6 = "127.0.0.10", "2001:db8::10"
        a = chk.check("register IPv4", R("POST", "/backends/" + v4), 201,
                      both(placement_of(v4, "A"),
                           lambda a: [] if a.json().get("state") == "registered"
                           else ["state %r" % a.json().get("state")]))
        first4 = a.json() if a.status == 201 else {}
        chk.check("re-register IPv4", R("POST", "/backends/" + v4), 200,
                  same_placement(first4, "registered"))
        a = chk.check("register IPv6", R("POST", "/backends/" + v6), 201, placement_of(v6, "AAAA"))
        first6 = a.json() if a.status == 201 else {}
        chk.check("re-register IPv6", R("POST", "/backends/" + v6), 200,
                  same_placement(first6, "registered"))
        chk.check("get IPv4", R("GET", "/backends/" + v4), 200, same_placement(first4))
        # PUT /ttl: every group moves; a bad body changes nothing.
        chk.check("PUT /ttl", R("PUT", "/ttl", headers=JSON_CT, body=jbody({"ttl": 120})), 200,
                  lambda a: [] if a.json().get("ttl") == 120 and len(a.json()["groups"]) == 6
                  else ["answer %r" % a.json()])
        chk.check("TTL in force after PUT /ttl", R("GET", "/buckets"), 200,
                  lambda a: [] if a.json()["ttl"] == 120 and all(
                      b["ttl"] == 120 for b in a.json()["buckets"])
                  else ["GET /buckets %r" % a.json()])
        chk.check("PUT /ttl back", R("PUT", "/ttl", headers=JSON_CT, body=jbody({"ttl": 60})),
                  200)
        chk.check("PUT /ttl bad value", R("PUT", "/ttl", headers=JSON_CT,
                                          body=jbody({"ttl": "60"})), 400,
                  problem_type("bad-request"))
        chk.check("PUT /ttl extra member", R("PUT", "/ttl", headers=JSON_CT,
                                             body=jbody({"ttl": 60, "x": 1})), 400,
                  problem_type("bad-request"))
        chk.check("PUT /ttl without JSON", R("PUT", "/ttl", body=b'{"ttl": 60}'), 415,
                  problem_type("unsupported-media-type"))
        chk.check("get IPv6", R("GET", "/backends/" + v6), 200, same_placement(first6))
        chk.check("HEAD one backend", R("HEAD", "/backends/" + v6), 200, empty_body)
        chk.check("list", R("GET", "/backends"), 200, backends_list([v4, v6]))
        chk.check("buckets", R("GET", "/buckets"), 200, buckets_view(1, 1))

        # Deregister.
        chk.check("deregister IPv4", R("DELETE", "/backends/" + v4), 200,
                  same_placement(first4, "deregistered"))
        chk.check("deregister again", R("DELETE", "/backends/" + v4), 404,
                  problem_type("not-registered"))
        chk.check("get deregistered", R("GET", "/backends/" + v4), 404,
                  problem_type("not-registered"))
        chk.check("buckets after delete", R("GET", "/buckets"), 200, buckets_view(0, 1))

        # ?wait=insync (the embedded store is in sync at once) and a refused wait value.
        insync = lambda a: [] if a.json().get("insync") is True and a.json().get("change_id") \
            else ["insync/change_id missing: %r" % a.json()]
        chk.check("register insync", R("POST", "/backends/127.0.0.11?wait=insync"), 201, insync)
        chk.check("deregister insync", R("DELETE", "/backends/127.0.0.11?wait=insync"), 200,
                  insync)
        chk.check("bad wait value", R("POST", "/backends/127.0.0.11?wait=forever"), 400,
                  problem_type("bad-request"))
        chk.check("bad wait changed nothing", R("GET", "/backends/127.0.0.11"), 404,
                  problem_type("not-registered"))

        # Leases: a lease in the body, heartbeats, a body that is not JSON.
        leased = lambda a: [] if a.json().get("lease_seconds") == 300 and \
            MS_TIME.match(a.json().get("lease_expires_at") or "") \
            else ["no lease (with milliseconds) in %r" % a.json()]
        chk.check("register with a lease", R("POST", "/backends/127.0.0.12",
                  headers={"Content-Type": "application/json"},
                  body=b'{"lease_seconds": 300}'), 201, leased)
        chk.check("heartbeat", R("PUT", "/backends/127.0.0.12/heartbeat"), 200, leased)
        chk.check("heartbeat unknown", R("PUT", "/backends/127.0.0.13/heartbeat"), 404,
                  problem_type("not-registered"))
        chk.check("heartbeat wrong method", R("GET", "/backends/127.0.0.12/heartbeat"), 405,
                  problem_type("method-not-allowed"))
        chk.check("lease body not JSON", R("POST", "/backends/127.0.0.13",
                  headers={"Content-Type": "text/plain"}, body=b"lease=5"), 415,
                  problem_type("unsupported-media-type"))
        chk.check("bad lease", R("POST", "/backends/127.0.0.13",
                  headers={"Content-Type": "application/json"},
                  body=b'{"lease_seconds": -1}'), 400, problem_type("bad-request"))
        R("DELETE", "/backends/127.0.0.12")

        # Invalid addresses (never valid backends: nothing is registered or contacted).
        invalid = ["01.2.3.4", "1.2.3.4/24", "1.2.3.4%2F24", "2001:DB8::1", "::ffff:1.2.3.4",
                   "%31.2.3.4", "host.example", "127.0.0.1:80", "2001:db8:0:0:0:0:0:1",
                   "2001:0db8::1", "fe80::1%25eth0", "0.0.0.0", "::", "224.0.0.1",
                   "255.255.255.255", "1" * 46]
        for ip in invalid:
            # "1.2.3.4/24" is two path segments, so the document alone would allow 404; the
            # contract (docs/design-core.md: CIDRs are refused) asks for 400 invalid-ip.
            chk.check("POST invalid %r" % ip, R("POST", "/backends/" + ip), 400,
                      problem_type("invalid-ip"))
        for ip in ("01.2.3.4", "2001:DB8::1", "%31.2.3.4"):
            chk.check("GET invalid %r" % ip, R("GET", "/backends/" + ip), 400,
                      problem_type("invalid-ip"))
            chk.check("DELETE invalid %r" % ip, R("DELETE", "/backends/" + ip), 400,
                      problem_type("invalid-ip"))
        chk.check("canonical form named", R("POST", "/backends/2001:DB8::1"), 400,
                  lambda a: [] if "2001:db8::1" in (a.json().get("detail") or "")
                  else ["detail %r does not name the canonical form 2001:db8::1"
                        % a.json().get("detail")])
        chk.check("list unchanged by invalid requests", R("GET", "/backends"), 200,
                  backends_list([v6]))

        # Fill every eligible A bucket, then one more: 409, nothing changes.
        filled = ["127.0.0.%d" % (20 + i) for i in range(BUCKETS * MAX_PER_BUCKET)]
        per_bucket = {}
        for ip in filled:
            a = chk.check("fill %s" % ip, R("POST", "/backends/" + ip), 201, placement_of(ip, "A"))
            if a.status == 201:
                b = a.json()["bucket"]
                per_bucket[b] = per_bucket.get(b, 0) + 1
        results.record("balanced assignment fills every bucket to %d" % MAX_PER_BUCKET,
                       [] if per_bucket == {b: MAX_PER_BUCKET for b in range(BUCKETS)}
                       else ["values per bucket %s" % per_bucket])
        over = "127.0.0.%d" % (20 + len(filled))
        chk.check("buckets full", R("POST", "/backends/" + over), 409, problem_type("buckets-full"))
        chk.check("409 registered nothing", R("GET", "/backends/" + over), 404,
                  problem_type("not-registered"))
        chk.check("buckets when full", R("GET", "/buckets"), 200, buckets_view(len(filled), 1))
        chk.check("list when full", R("GET", "/backends"), 200, backends_list(filled + [v6]))

        # Unknown paths and wrong methods.
        for p in ("/nope", "/bucketsx", "/healthz/x", "/backend", "/"):
            if chk.spec.match(p)[1] is None:
                chk.check("unknown path %s" % p, R("GET", p), 404, problem_type("not-found"))
        for m, p in (("PUT", "/buckets"), ("POST", "/buckets"), ("PATCH", "/backends"),
                     ("PATCH", "/backends/127.0.0.20"), ("PUT", "/backends/127.0.0.20"),
                     ("POST", "/healthz"), ("DELETE", "/readyz")):
            chk.check("%s %s" % (m, p), R(m, p), 405, problem_type("method-not-allowed"))

        # Body over --max-body (1 MiB by default): 413, nothing registered.
        big = b"x" * BIG_BODY
        big_ip = "2001:db8::40"
        chk.check("2 MiB body with Expect: 100-continue",
                  request_expect_continue(port, "POST", "/backends/" + big_ip, big), 413,
                  problem_type("body-too-large"))
        chk.check("2 MiB body sent at once",
                  R("POST", "/backends/" + big_ip, headers={"Content-Type":
                                                            "application/octet-stream"},
                    body=big), 413, problem_type("body-too-large"))
        chk.check("413 registered nothing", R("GET", "/backends/" + big_ip), 404,
                  problem_type("not-registered"))
        chk.check("still healthy", R("GET", "/healthz"), 200)
    finally:
        rc = srv.stop()
        results.record("SIGTERM exits 0", [] if rc == 0 else
                       ["exit status %r; last stderr:\n%s" % (rc, "\n".join(srv.lines[-20:]))])


def run_with_token(binary, chk, results):
    srv = Server(binary, env_extra={"R53REG_TOKENS": TOKEN}, args_extra=NO_CLIENT_LIMIT)
    try:
        port = srv.wait_listening()
    except RuntimeError as e:
        srv.kill()
        results.record("start r53reg with R53REG_TOKENS", [str(e)])
        return
    results.record("start r53reg with R53REG_TOKENS (port %d)" % port, [])
    R = lambda m, p, **kw: request(port, m, p, **kw)  # noqa: E731
    ip = "127.0.0.50"
    good = {"Authorization": "Bearer " + TOKEN}
    try:
        unauthorized = problem_type("unauthorized")
        chk.check("POST without token", R("POST", "/backends/" + ip), 401, unauthorized)
        chk.check("POST with wrong token",
                  R("POST", "/backends/" + ip, headers={"Authorization": "Bearer " + WRONG_TOKEN}),
                  401, unauthorized)
        chk.check("POST with another scheme",
                  R("POST", "/backends/" + ip, headers={"Authorization": "Basic " + TOKEN}),
                  401, unauthorized)
        chk.check("nothing registered without a token", R("GET", "/backends/" + ip), 404,
                  problem_type("not-registered"))
        chk.check("POST with token", R("POST", "/backends/" + ip, headers=good), 201,
                  placement_of(ip, "A"))
        chk.check("GET needs no token", R("GET", "/backends/" + ip), 200, placement_of(ip, "A"))
        chk.check("DELETE without token", R("DELETE", "/backends/" + ip), 401, unauthorized)
        chk.check("DELETE with wrong token",
                  R("DELETE", "/backends/" + ip,
                    headers={"Authorization": "Bearer " + WRONG_TOKEN}), 401, unauthorized)
        chk.check("DELETE with token", R("DELETE", "/backends/" + ip, headers=good), 200,
                  lambda a: [] if a.json().get("state") == "deregistered" else ["not deregistered"])
        # The list endpoints are mutations too; GET /changes/{id} is a read.
        body = json.dumps({"backends": [ip]}).encode()
        js = {"Content-Type": "application/json"}
        for m in ("POST", "DELETE", "PUT"):
            chk.check("%s /backends without token" % m, R(m, "/backends", headers=js, body=body),
                      401, unauthorized)
        chk.check("bulk refused without a token registered nothing", R("GET", "/backends/" + ip),
                  404, problem_type("not-registered"))
        chk.check("bulk POST with token",
                  R("POST", "/backends", headers=dict(js, **good), body=body), 200,
                  lambda a: [] if a.json().get("created") == 1 else ["created %r" % a.json()])
        chk.check("bulk DELETE with token",
                  R("DELETE", "/backends", headers=dict(js, **good), body=body), 200,
                  lambda a: [] if a.json().get("removed") == 1 else ["removed %r" % a.json()])
        chk.check("GET /changes/{id} needs no token",
                  R("GET", "/changes/" + "0" * 32), 404, problem_type("not-found"))
        chk.check("readyz", R("GET", "/readyz"), 200)
    finally:
        rc = srv.stop()
        results.record("SIGTERM exits 0 (token instance)", [] if rc == 0 else
                       ["exit status %r; last stderr:\n%s" % (rc, "\n".join(srv.lines[-20:]))])
        log = srv.log()
        leaked = [t for t in (TOKEN, WRONG_TOKEN) if t in log]
        results.record("tokens never reach the log",
                       ["%r appears in stderr" % t for t in leaked])


# --- the list endpoints, ?wait=none and /changes ----------------------------------------------

def jbody(obj):
    return json.dumps(obj).encode("utf-8")


JSON_CT = {"Content-Type": "application/json"}


def item_statuses(want):
    """The per-item results have these statuses, in order."""
    def extra(ans):
        got = [r.get("status") for r in ans.json()["results"]]
        return [] if got == want else ["item statuses %s, expected %s" % (got, want)]
    return extra


def counts(**want):
    def extra(ans):
        d = ans.json()
        return ["%s %r, expected %r" % (k, d.get(k), v) for k, v in want.items() if d.get(k) != v]
    return extra


def items_in_order(ips):
    def extra(ans):
        got = [r.get("ip") for r in ans.json()["results"]]
        return [] if got == ips else ["results for %s, expected the request's order %s"
                                      % (got, ips)]
    return extra


def replace_result(added, removed, unchanged, failed=0):
    def extra(ans):
        d = ans.json()
        out = []
        got_a = [p["ip"] for p in d["added"]]
        got_r = sorted(p["ip"] for p in d["removed"])
        if got_a != added:
            out.append("added %s, expected %s" % (got_a, added))
        if got_r != sorted(removed):
            out.append("removed %s, expected %s" % (got_r, sorted(removed)))
        if d["unchanged"] != unchanged:
            out.append("unchanged %r, expected %r" % (d["unchanged"], unchanged))
        if len(d["failed"]) != failed:
            out.append("%d failed, expected %d: %s" % (len(d["failed"]), failed, d["failed"]))
        if any(p["state"] != "deregistered" for p in d["removed"]):
            out.append("a removed placement is not deregistered")
        return out
    return extra


def errors_at(indices):
    def extra(ans):
        got = [e.get("index") for e in ans.json().get("errors", [])]
        return [] if got == indices else ["errors at %s, expected %s" % (got, indices)]
    return extra


def accepted(ans):
    d = ans.json()
    out = []
    if ans.header("Location") != d.get("href"):
        out.append("Location %r differs from href %r" % (ans.header("Location"), d.get("href")))
    return out


def run_bulk(binary, chk, results):
    srv = Server(binary, args_extra=NO_CLIENT_LIMIT)
    try:
        port = srv.wait_listening()
    except RuntimeError as e:
        srv.kill()
        results.record("start r53reg for the list endpoints", [str(e)])
        return
    results.record("start r53reg for the list endpoints (port %d)" % port, [])
    R = lambda m, p, **kw: request(port, m, p, **kw)  # noqa: E731

    def send(method, path, obj, headers=JSON_CT):
        return R(method, path, headers=headers, body=jbody(obj))

    def poll(label, href, expect="committed", extra=None):
        """GET the change until it is no longer queued; check the final answer."""
        ans = None
        for _ in range(500):
            ans = R("GET", href)
            if ans.status != 200 or ans.json().get("status") != "queued":
                break
            threading.Event().wait(0.01)

        def final(a):
            d = a.json()
            out = []
            if d.get("status") != expect:
                out.append("status %r, expected %r" % (d.get("status"), expect))
            if "result" not in d or "completed_at" not in d:
                out.append("no result or completed_at")
            if href != "/changes/" + d.get("id", ""):
                out.append("id %r does not match %s" % (d.get("id"), href))
            if extra is not None:
                out += extra(d) or []
            return out
        return chk.check(label, ans, 200, final)

    try:
        v4 = ["127.0.0.%d" % i for i in (1, 2, 3)]
        v6 = ["2001:db8::%d" % i for i in (1, 2, 3)]
        both_ = v4 + v6
        chk.check("bulk register", send("POST", "/backends", {"backends": both_}), 200,
                  both(items_in_order(both_), item_statuses([201] * 6),
                       counts(created=6, unchanged=0, failed=0)))
        chk.check("bulk register again (bare array)", send("POST", "/backends", both_), 200,
                  both(item_statuses([200] * 6), counts(created=0, unchanged=6, failed=0)))
        chk.check("bulk list", R("GET", "/backends"), 200, backends_list(both_))
        # 4 buckets x 3: 9 more A fit, the 10th gets 409 inside the 200.
        more = ["127.0.0.%d" % i for i in range(10, 20)]
        chk.check("bulk register over capacity",
                  send("POST", "/backends", {"backends": more}), 200,
                  both(item_statuses([201] * 9 + [409]), counts(created=9, unchanged=0, failed=1)))
        chk.check("bulk deregister",
                  send("DELETE", "/backends", {"backends": more + ["127.0.0.99"]}), 200,
                  both(item_statuses([200] * 9 + [404, 404]),
                       counts(removed=9, not_registered=2, failed=0)))
        chk.check("bulk deregister as a bare array", send("DELETE", "/backends", v6[2:]), 200,
                  counts(removed=1, not_registered=0, failed=0))

        # PUT: converge, then nothing to do; the empty-set guard.
        want = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "2001:db8::2", "2001:db8::4"]
        chk.check("PUT desired set", send("PUT", "/backends", {"backends": want}), 200,
                  replace_result(["127.0.0.4", "2001:db8::4"], ["127.0.0.1", "2001:db8::1"], 3))
        chk.check("PUT again changes nothing", send("PUT", "/backends", {"backends": want}), 200,
                  replace_result([], [], 5))
        chk.check("list after PUT", R("GET", "/backends"), 200, backends_list(want))
        chk.check("PUT empty without allow_empty", send("PUT", "/backends", {"backends": []}),
                  400, problem_type("bad-request"))
        chk.check("PUT empty refused removed nothing", R("GET", "/backends"), 200,
                  backends_list(want))

        # Refused whole: 415, malformed JSON, invalid or duplicate items, unknown members.
        chk.check("bulk without Content-Type",
                  R("POST", "/backends", body=jbody(["127.0.0.50"])), 415,
                  problem_type("unsupported-media-type"))
        chk.check("bulk as text/plain",
                  send("POST", "/backends", ["127.0.0.50"], headers={"Content-Type": "text/plain"}),
                  415, problem_type("unsupported-media-type"))
        chk.check("PUT as form data",
                  send("PUT", "/backends", [], headers={"Content-Type":
                                                        "application/x-www-form-urlencoded"}),
                  415, problem_type("unsupported-media-type"))
        chk.check("bulk malformed JSON",
                  R("POST", "/backends", headers=JSON_CT, body=b'{"backends": ["127.0.0.50",]}'),
                  400, both(problem_type("bad-request"),
                            lambda a: [] if "line 1, column" in a.json().get("detail", "")
                            else ["detail %r names no line/column" % a.json().get("detail")]))
        chk.check("bulk invalid and duplicate items",
                  send("POST", "/backends", ["127.0.0.50", "127.0.0.050", "2001:DB8::50",
                                             "127.0.0.50", 5]),
                  400, both(problem_type("invalid-ip"), errors_at([1, 2, 3, 4])))
        chk.check("DELETE with an invalid item", send("DELETE", "/backends", want + ["::"]), 400,
                  both(problem_type("invalid-ip"), errors_at([5])))
        chk.check("PUT with an invalid item", send("PUT", "/backends", {"backends": ["1.2.3"]}),
                  400, both(problem_type("invalid-ip"), errors_at([0])))
        chk.check("bulk unknown member", send("POST", "/backends", {"backend": ["127.0.0.50"]}),
                  400, problem_type("bad-request"))
        chk.check("bulk wait=insync refused", send("POST", "/backends?wait=insync", ["127.0.0.50"]),
                  400, problem_type("bad-request"))
        chk.check("refused requests changed nothing", R("GET", "/backends"), 200,
                  backends_list(want))

        # 413: more than 10,000 items, and a body over --max-body.
        many = ["127.1.%d.%d" % (i // 250, i % 250 + 1) for i in range(10001)]
        chk.check("bulk with 10,001 items", send("POST", "/backends", many), 413,
                  both(problem_type("body-too-large"),
                       lambda a: [] if "10000" in a.json().get("detail", "")
                       else ["detail %r does not name the limit" % a.json().get("detail")]))
        chk.check("bulk body over --max-body",
                  R("POST", "/backends", headers=JSON_CT, body=b" " * BIG_BODY), 413,
                  problem_type("body-too-large"))

        # ?wait=none: 202 with a change, then GET /changes/{id} until committed.
        a = chk.check("bulk register wait=none",
                      send("POST", "/backends?wait=none", ["127.0.0.5", "2001:db8::5"]), 202,
                      accepted)
        if a.status == 202:
            href = a.json()["href"]
            poll("change of bulk register", href, extra=lambda d: (
                [] if d["result"].get("created") == 2 and d.get("http_status") == 200
                and d.get("method") == "POST" and d.get("route53_change_id")
                else ["result %r" % d]))
            chk.check("HEAD change", R("HEAD", href), 200, empty_body)
            chk.check("POST on a change", R("POST", href), 405,
                      problem_type("method-not-allowed"))
        a = chk.check("bulk deregister wait=none",
                      send("DELETE", "/backends?wait=none", ["127.0.0.5", "127.0.0.77"]), 202,
                      accepted)
        if a.status == 202:
            poll("change of bulk deregister", a.json()["href"], extra=lambda d: (
                [] if d["result"].get("removed") == 1 and d["result"].get("not_registered") == 1
                else ["result %r" % d["result"]]))
        a = chk.check("PUT wait=none", send("PUT", "/backends?wait=none", {"backends": want}), 202,
                      accepted)
        if a.status == 202:
            poll("change of PUT", a.json()["href"], extra=lambda d: (
                [] if d["result"].get("removed") and d["result"].get("unchanged") == 5
                else ["result %r" % d["result"]]))
        a = chk.check("PUT empty with allow_empty wait=none",
                      send("PUT", "/backends?wait=none", {"backends": [], "allow_empty": True}),
                      202, accepted)
        if a.status == 202:
            poll("change of emptying PUT", a.json()["href"], extra=lambda d: (
                [] if len(d["result"].get("removed", [])) == 5 else ["result %r" % d["result"]]))
        chk.check("list after emptying PUT", R("GET", "/backends"), 200, backends_list([]))

        # ?wait=none on one IP: the change's result is the placement, or the problem.
        one = "2001:db8::60"
        a = chk.check("register one wait=none", R("POST", "/backends/%s?wait=none" % one), 202,
                      accepted)
        if a.status == 202:
            poll("change of one registration", a.json()["href"], extra=lambda d: (
                [] if d["result"].get("ip") == one and d.get("http_status") == 201
                else ["result %r" % d]))
        a = chk.check("deregister unknown wait=none",
                      R("DELETE", "/backends/127.0.0.61?wait=none"), 202, accepted)
        if a.status == 202:
            poll("change of a failed deregistration", a.json()["href"], expect="failed",
                 extra=lambda d: [] if d.get("http_status") == 404 and
                 d["result"].get("type") == "urn:r53reg:problem:not-registered"
                 else ["result %r" % d])

        chk.check("unknown change", R("GET", "/changes/" + "f" * 32), 404,
                  problem_type("not-found"))
        chk.check("malformed change id", R("GET", "/changes/not-an-id"), 404,
                  problem_type("not-found"))
    finally:
        rc = srv.stop()
        results.record("SIGTERM exits 0 (list endpoints)", [] if rc == 0 else
                       ["exit status %r; last stderr:\n%s" % (rc, "\n".join(srv.lines[-20:]))])


# --- down, draining and health checks ---------------------------------------------------------

DRAIN_TTL = 1  # --ttl of that run: drains are `drained` one second after drained_at
DEFAULT_TTL = 60  # the other runs use the default --ttl
# A check that fails at once and often: nothing listens on the discard port of 127.0.0.x.
FAILING_CHECK = {"type": "tcp", "port": 9, "interval_ms": 50, "timeout_ms": 40, "rise": 1,
                 "fall": 1}


def ms_time(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")


def in_state(state, detail=True, ttl=DRAIN_TTL):
    """The placement is in state; with detail, it carries exactly the members of that state
    (down_since when down; drained_at, no_new_traffic_after = drained_at + ttl and drained
    when draining)."""
    def extra(ans):
        p = ans.json()
        out = []
        if p.get("state") != state:
            out.append("state %r, expected %r" % (p.get("state"), state))
        if not detail:
            return out
        has_down = "down_since" in p
        if has_down != (state == "down"):
            out.append("down_since %s in state %s" % ("present" if has_down else "missing",
                                                      state))
        drain_keys = [k for k in ("drained_at", "no_new_traffic_after", "drained") if k in p]
        if state == "draining" and len(drain_keys) != 3:
            out.append("state draining with only %s of drained_at, no_new_traffic_after, "
                       "drained" % drain_keys)
        if state != "draining" and drain_keys:
            out.append("%s present in state %s" % (drain_keys, state))
        for k in ("down_since", "drained_at", "no_new_traffic_after", "lease_expires_at"):
            if k in p and not MS_TIME.match(p[k]):
                out.append("%s %r is not RFC 3339 UTC with milliseconds" % (k, p[k]))
        if state == "draining" and len(drain_keys) == 3:
            gap = ms_time(p["no_new_traffic_after"]) - ms_time(p["drained_at"])
            if gap != datetime.timedelta(seconds=ttl):
                out.append("no_new_traffic_after - drained_at = %s, expected the TTL %ds"
                           % (gap, ttl))
        return out
    return extra


def has_change(want=True):
    def extra(ans):
        got = bool(ans.json().get("change_id"))
        return [] if got == want else ["change_id %s: %r" % ("missing" if want else "present",
                                                               ans.json().get("change_id"))]
    return extra


def member_is(name, value):
    def extra(ans):
        got = ans.json().get(name)
        return [] if got == value else ["%s %r, expected %r" % (name, got, value)]
    return extra


def checked(ans):
    h = ans.json().get("health")
    if not isinstance(h, dict):
        return ["no health object in %r" % ans.json()]
    return [] if h.get("failures", 0) <= h.get("checks", 0) else ["failures > checks: %r" % h]


def run_drain_and_health(binary, chk, results):
    srv = Server(binary, args_extra=NO_CLIENT_LIMIT + ("--ttl", str(DRAIN_TTL),
                                                       "--max-down-share", "0.5"))
    try:
        port = srv.wait_listening()
    except RuntimeError as e:
        srv.kill()
        results.record("start r53reg for drains and health checks", [str(e)])
        return
    results.record("start r53reg for drains and health checks (port %d)" % port, [])
    R = lambda m, p, **kw: request(port, m, p, **kw)  # noqa: E731

    def send(method, path, obj):
        return R(method, path, headers=JSON_CT, body=jbody(obj))

    def poll_change(label, href, extra):
        ans = None
        for _ in range(500):
            ans = R("GET", href)
            if ans.status != 200 or ans.json().get("status") != "queued":
                break
            threading.Event().wait(0.01)
        return chk.check(label, ans, 200, lambda a: extra(a.json()))

    def wait_for(path, cond, seconds):
        """GET path until cond(placement) holds (or the time is up); the last answer."""
        ans = None
        for _ in range(int(seconds / 0.05)):
            ans = R("GET", path)
            if ans.status == 200 and cond(ans.json()):
                break
            threading.Event().wait(0.05)
        return ans

    try:
        # Drain a registered backend: out of DNS, still registered.
        v4, v6 = "127.0.0.30", "2001:db8::30"
        a = chk.check("register for a drain", R("POST", "/backends/" + v4), 201,
                      placement_of(v4, "A"))
        first = a.json() if a.status == 201 else {}
        chk.check("register IPv6 for a drain", R("POST", "/backends/" + v6), 201)
        a = chk.check("drain", R("POST", "/backends/%s/drain" % v4), 200,
                      both(same_placement(first), in_state("draining"), has_change(),
                           member_is("drained", False)))
        drained = a.json() if a.status == 200 else {}
        chk.check("drain again changes nothing", R("POST", "/backends/%s/drain" % v4), 200,
                  both(in_state("draining"), has_change(False),
                       member_is("drained_at", drained.get("drained_at"))))
        chk.check("GET a draining backend", R("GET", "/backends/" + v4), 200,
                  both(same_placement(first), in_state("draining"),
                       member_is("drained_at", drained.get("drained_at"))))
        chk.check("HEAD a draining backend", R("HEAD", "/backends/" + v4), 200, empty_body)
        chk.check("list with a draining backend", R("GET", "/backends"), 200,
                  both(backends_list([v4, v6]),
                       lambda a: [] if [p["state"] for p in a.json()["backends"]]
                       == ["draining", "registered"] else ["states %r" % a.json()]))
        chk.check("buckets with a draining backend", R("GET", "/buckets"), 200,
                  buckets_view(1, 1, draining=[v4]))
        chk.check("heartbeat of a draining backend", R("PUT", "/backends/%s/heartbeat" % v4),
                  200, in_state("draining"))
        chk.check("drain an IPv6 backend (insync)",
                  R("POST", "/backends/%s/drain?wait=insync" % v6), 200,
                  both(in_state("draining"), member_is("insync", True), has_change()))
        chk.check("buckets with two draining backends", R("GET", "/buckets"), 200,
                  buckets_view(1, 1, draining=[v4, v6]))
        # One TTL after drained_at no new traffic arrives: drained turns true.
        a = wait_for("/backends/" + v4, lambda p: p.get("drained") is True, DRAIN_TTL + 5)
        chk.check("drained once the TTL passed", a, 200,
                  both(in_state("draining"), member_is("drained", True),
                       member_is("drained_at", drained.get("drained_at"))))
        # Registering again returns it to service, in its bucket.
        chk.check("POST returns a draining backend to service", R("POST", "/backends/" + v4),
                  200, both(same_placement(first), in_state("registered"), has_change()))
        chk.check("buckets after the return", R("GET", "/buckets"), 200,
                  buckets_view(1, 1, draining=[v6]))
        chk.check("DELETE a draining backend", R("DELETE", "/backends/" + v6), 200,
                  in_state("deregistered"))
        chk.check("buckets after deleting the draining one", R("GET", "/buckets"), 200,
                  buckets_view(1, 0))

        # Refused drains.
        chk.check("drain an unknown IP", R("POST", "/backends/127.0.0.31/drain"), 404,
                  problem_type("not-registered"))
        for ip in ("01.2.3.4", "1.2.3.4/24", "2001:DB8::30", "::"):
            chk.check("drain invalid %r" % ip, R("POST", "/backends/%s/drain" % ip), 400,
                      problem_type("invalid-ip"))
        chk.check("drain with a bad wait", R("POST", "/backends/%s/drain?wait=forever" % v4),
                  400, problem_type("bad-request"))
        chk.check("drain refused changed nothing", R("GET", "/backends/" + v4), 200,
                  in_state("registered"))
        for m in ("GET", "PUT", "DELETE"):
            chk.check("%s on a drain" % m, R(m, "/backends/%s/drain" % v4), 405,
                      problem_type("method-not-allowed"))

        # ?wait=none: 202, then the change holds the placement (or the problem).
        a = chk.check("drain wait=none", R("POST", "/backends/%s/drain?wait=none" % v4), 202,
                      accepted)
        if a.status == 202:
            poll_change("change of a drain", a.json()["href"], lambda d: (
                [] if d.get("status") == "committed" and d.get("http_status") == 200
                and d.get("path") == "/backends/%s/drain" % v4
                and d["result"].get("state") == "draining" else ["change %r" % d]))
        chk.check("drained by the queued change", R("GET", "/backends/" + v4), 200,
                  in_state("draining"))
        a = chk.check("drain unknown wait=none",
                      R("POST", "/backends/127.0.0.31/drain?wait=none"), 202, accepted)
        if a.status == 202:
            poll_change("change of a failed drain", a.json()["href"], lambda d: (
                [] if d.get("status") == "failed" and d.get("http_status") == 404
                and d["result"].get("type") == "urn:r53reg:problem:not-registered"
                else ["change %r" % d]))
        a = chk.check("return to service wait=none", R("POST", "/backends/%s?wait=none" % v4),
                      202, accepted)
        if a.status == 202:
            poll_change("change of a return to service", a.json()["href"], lambda d: (
                [] if d.get("http_status") == 200 and d["result"].get("state") == "registered"
                else ["change %r" % d]))

        # /backends/self/drain: the caller (127.0.0.1) drains itself.
        me = "127.0.0.1"
        chk.check("drain self when not registered", R("POST", "/backends/self/drain"), 404,
                  problem_type("not-registered"))
        chk.check("register self", R("POST", "/backends/self"), 201, ip_is(me))
        chk.check("drain self", R("POST", "/backends/self/drain"), 200,
                  both(ip_is(me), in_state("draining"), has_change()))
        chk.check("GET self while draining", R("GET", "/backends/self"), 200,
                  both(ip_is(me), in_state("draining")))
        chk.check("GET on /backends/self/drain", R("GET", "/backends/self/drain"), 405,
                  problem_type("method-not-allowed"))
        chk.check("drain self wait=none", R("POST", "/backends/self/drain?wait=none"), 202,
                  accepted)
        chk.check("register self returns it to service",
                  send("POST", "/backends/self", {"lease_seconds": 300}), 200,
                  both(ip_is(me), in_state("registered"), member_is("lease_seconds", 300)))
        chk.check("heartbeat self", R("PUT", "/backends/self/heartbeat"), 200,
                  both(ip_is(me), member_is("lease_seconds", 300), member_is("in_dns", True)))
        chk.check("POST on /backends/self/heartbeat", R("POST", "/backends/self/heartbeat"),
                  405, problem_type("method-not-allowed"))
        chk.check("register self with a text body",
                  R("POST", "/backends/self", headers={"Content-Type": "text/plain"},
                    body=b"lease=5"), 415, problem_type("unsupported-media-type"))
        chk.check("deregister self", R("DELETE", "/backends/self"), 200,
                  both(ip_is(me), in_state("deregistered")))
        chk.check("heartbeat self when not registered", R("PUT", "/backends/self/heartbeat"),
                  404, problem_type("not-registered"))

        # A registration with its own health check: the answer carries `health`.
        bad = {
            "check type udp": {"check": {"type": "udp", "port": 9}},
            "check port 0": {"check": {"port": 0}},
            "check port 65536": {"check": {"port": 65536}},
            "check path without /": {"check": {"port": 9, "path": "healthz"}},
            "check path with a space": {"check": {"port": 9, "path": "/a b"}},
            "check status reversed": {"check": {"port": 9, "status": "299-200"}},
            "check status 600": {"check": {"port": 9, "status": "200-600"}},
            "check interval 5 ms": {"check": {"port": 9, "interval_ms": 5}},
            "check rise 0": {"check": {"port": 9, "rise": 0}},
            "check fall 1001": {"check": {"port": 9, "fall": 1001}},
            "check unknown member": {"check": {"port": 9, "colour": "red"}},
            "check not an object": {"check": "tcp"},
            "check without a port (no --check-port)": {"check": {"type": "http"}},
            "check with a bad lease": {"check": {"port": 9}, "lease_seconds": 0},
        }
        for label, body in bad.items():
            chk.check("POST with %s" % label, send("POST", "/backends/127.0.0.40", body), 400,
                      problem_type("bad-request"))
        chk.check("wait=none with a check", send("POST", "/backends/127.0.0.40?wait=none",
                                                 {"check": {"port": 9}}), 400,
                  problem_type("bad-request"))
        chk.check("wait=none with a lease", send("POST", "/backends/127.0.0.40?wait=none",
                                                 {"lease_seconds": 30}), 400,
                  problem_type("bad-request"))
        chk.check("refused checks registered nothing", R("GET", "/backends/127.0.0.40"), 404,
                  problem_type("not-registered"))
        chk.check("register with every check member",
                  send("POST", "/backends/127.0.0.40", {"check": {
                      "type": "http", "port": 9, "path": "/healthz?deep=1", "status": "200-299",
                      "interval_ms": 100, "timeout_ms": 50, "rise": 2, "fall": 1000}}),
                  201, both(placement_of("127.0.0.40", "A"), checked))
        # Two backends whose checks fail at once, next to one served without a check: the
        # fail-open guard (--max-down-share 0.5 of 3) lets one go down and keeps the other.
        failing = ["127.0.0.41", "127.0.0.42"]
        chk.check("DELETE the slow-failing one", R("DELETE", "/backends/127.0.0.40"), 200,
                  in_state("deregistered"))
        for ip in failing:
            chk.check("register %s with a failing check" % ip,
                      send("POST", "/backends/" + ip, {"check": FAILING_CHECK}), 201,
                      both(placement_of(ip, "A"), checked))
        views = {}
        for _ in range(200):
            views = {ip: R("GET", "/backends/" + ip) for ip in failing}
            states = sorted(v.json().get("state") for v in views.values() if v.status == 200)
            held = [v for v in views.values() if v.status == 200 and
                    (v.json().get("health") or {}).get("kept_by_fail_open")]
            if states == ["down", "registered"] and len(held) == 1:
                break
            threading.Event().wait(0.05)
        down_ip = next((ip for ip, v in views.items() if v.status == 200 and
                        v.json().get("state") == "down"), None)
        held_ip = next((ip for ip in failing if ip != down_ip), None)
        results.record("one failing backend down, the other kept by --max-down-share",
                       [] if down_ip else ["states after 10 s: %s" %
                                           {ip: v.body[:400] for ip, v in views.items()}])
        if down_ip:
            chk.check("GET the down backend", views[down_ip], 200,
                      both(in_state("down"), checked,
                           lambda a: [] if a.json()["health"].get("status") == "down"
                           and a.json()["health"].get("last_error")
                           and a.json()["health"].get("last_change_at")
                           else ["health %r" % a.json()["health"]]))
            chk.check("GET the backend kept by fail-open", views[held_ip], 200,
                      both(in_state("registered"), checked,
                           lambda a: [] if a.json()["health"].get("status") == "down"
                           else ["health %r" % a.json()["health"]]))
            chk.check("buckets with a down backend", R("GET", "/buckets"), 200,
                      buckets_view(3, 0, down=[down_ip]))
            chk.check("list with a down backend", R("GET", "/backends"), 200,
                      both(backends_list([v4] + failing),
                           lambda a: [] if {p["ip"]: p["state"] for p in a.json()["backends"]}
                           .get(down_ip) == "down" else ["states %r" % a.json()]))
            chk.check("POST a down backend leaves it down", R("POST", "/backends/" + down_ip),
                      200, both(in_state("down"), has_change(False)))
            chk.check("metrics count the down backend", R("GET", "/metrics"), 200,
                      lambda a: [] if re.search(rb"(?m)^r53reg_backends_down 1$", a.body)
                      and b"r53reg_health_checks_total" in a.body
                      and b"r53reg_health_fail_open_held" in a.body
                      else ["no r53reg_backends_down 1 / health series in /metrics"])
            chk.check("drain a down backend", R("POST", "/backends/%s/drain" % down_ip), 200,
                      both(in_state("draining"), has_change(), checked))
            chk.check("DELETE a draining backend with a check",
                      R("DELETE", "/backends/" + down_ip), 200, in_state("deregistered"))
        for ip in failing:
            R("DELETE", "/backends/" + ip)
        chk.check("buckets at the end", R("GET", "/buckets"), 200, buckets_view(1, 0))
    finally:
        rc = srv.stop()
        results.record("SIGTERM exits 0 (drains and health checks)", [] if rc == 0 else
                       ["exit status %r; last stderr:\n%s" % (rc, "\n".join(srv.lines[-20:]))])


# --- who may change what: scopes, /backends/self, --allow-cidr, the rate limit ------------------

FLEET, OPS, RO = "fleet-tok-5521-aaaa", "ops-tok-8817-bbbb", "ro-tok-3390-cccc"


def detail_has(text):
    def extra(ans):
        d = ans.json().get("detail") or ""
        return [] if text in d else ["detail %r lacks %r" % (d, text)]
    return extra


def ip_is(ip):
    def extra(ans):
        got = ans.json().get("ip")
        return [] if got == ip else ["ip %r, expected the caller's %r" % (got, ip)]
    return extra


def run_security(binary, chk, results):
    tokens = "self:fleet:%s,admin:ops:%s,read:ro:%s" % (FLEET, OPS, RO)
    srv = Server(binary, env_extra={"R53REG_TOKENS": tokens},
                 args_extra=NO_CLIENT_LIMIT + ("--allow-cidr", "127.0.0.0/28,2001:db8::/32"))
    try:
        port = srv.wait_listening()
    except RuntimeError as e:
        srv.kill()
        results.record("start r53reg with scoped tokens", [str(e)])
        return
    results.record("start r53reg with scoped tokens (port %d)" % port, [])
    R = lambda m, p, **kw: request(port, m, p, **kw)  # noqa: E731
    fleet = {"Authorization": "Bearer " + FLEET}
    ops = {"Authorization": "Bearer " + OPS}
    ro = {"Authorization": "Bearer " + RO}
    forbidden = problem_type("forbidden")
    try:
        # /backends/self: the caller (127.0.0.1) registers itself.
        chk.check("self: POST /backends/self", R("POST", "/backends/self", headers=fleet), 201,
                  ip_is("127.0.0.1"))
        chk.check("self: POST /backends/self again", R("POST", "/backends/self", headers=fleet),
                  200, ip_is("127.0.0.1"))
        chk.check("GET /backends/self", R("GET", "/backends/self"), 200, ip_is("127.0.0.1"))
        chk.check("HEAD /backends/self", R("HEAD", "/backends/self"), 200, empty_body)
        chk.check("POST /backends/self without a token", R("POST", "/backends/self"), 401,
                  problem_type("unauthorized"))
        chk.check("PUT /backends/self", R("PUT", "/backends/self", headers=fleet), 405,
                  problem_type("method-not-allowed"))
        # A self token and another address: directly, in a list, by PUT.
        chk.check("self: POST another address", R("POST", "/backends/127.0.0.2", headers=fleet),
                  403, both(forbidden, detail_has("token 'fleet' has scope self: it may only "
                                                  "change 127.0.0.1, the caller's address")))
        chk.check("self: X-Forwarded-For from an untrusted peer is ignored",
                  R("POST", "/backends/127.0.0.2", headers=dict(fleet, **{
                      "X-Forwarded-For": "127.0.0.2"})), 403, forbidden)
        chk.check("self: DELETE another address",
                  R("DELETE", "/backends/127.0.0.2", headers=fleet), 403, forbidden)
        chk.check("self: list with another address",
                  R("POST", "/backends", headers=dict(JSON_CT, **fleet),
                    body=jbody(["127.0.0.1", "127.0.0.2"])), 403,
                  both(forbidden, errors_at([1])))
        chk.check("self: list of its own address",
                  R("DELETE", "/backends", headers=dict(JSON_CT, **fleet),
                    body=jbody(["127.0.0.1"])), 200, counts(removed=1))
        chk.check("self: PUT", R("PUT", "/backends", headers=dict(JSON_CT, **fleet),
                                 body=jbody(["127.0.0.1"])), 403,
                  both(forbidden, detail_has("needs an admin token")))
        chk.check("self: DELETE /backends/self when not registered",
                  R("DELETE", "/backends/self", headers=fleet), 404,
                  problem_type("not-registered"))
        # read: nothing but reads.
        chk.check("read: POST", R("POST", "/backends/127.0.0.3", headers=ro), 403,
                  both(forbidden, detail_has("scope read")))
        chk.check("read: GET", R("GET", "/backends", headers=ro), 200)
        # admin, and --allow-cidr.
        chk.check("admin: POST", R("POST", "/backends/127.0.0.3", headers=ops), 201,
                  placement_of("127.0.0.3", "A"))
        chk.check("admin: outside --allow-cidr", R("POST", "/backends/127.0.0.200", headers=ops),
                  403, both(forbidden, detail_has("outside --allow-cidr 127.0.0.0/28")))
        chk.check("admin: list with an address outside --allow-cidr",
                  R("POST", "/backends", headers=dict(JSON_CT, **ops),
                    body=jbody(["127.0.0.4", "127.0.0.201"])), 403,
                  both(forbidden, errors_at([1])))
        chk.check("admin: deregistering is not limited by --allow-cidr",
                  R("DELETE", "/backends/127.0.0.200", headers=ops), 404,
                  problem_type("not-registered"))
        chk.check("refused requests changed nothing", R("GET", "/backends"), 200,
                  backends_list(["127.0.0.3"]))
        # Drains: like the heartbeat, a self token only for the caller's own address;
        # --allow-cidr does not limit them.
        chk.check("self: POST /backends/self to drain it",
                  R("POST", "/backends/self", headers=fleet), 201, ip_is("127.0.0.1"))
        chk.check("POST /backends/self/drain without a token",
                  R("POST", "/backends/self/drain"), 401, problem_type("unauthorized"))
        chk.check("read: POST /backends/self/drain",
                  R("POST", "/backends/self/drain", headers=ro), 403, forbidden)
        chk.check("self: POST /backends/self/drain",
                  R("POST", "/backends/self/drain", headers=fleet), 200,
                  both(ip_is("127.0.0.1"), in_state("draining", ttl=DEFAULT_TTL)))
        chk.check("self: drain its own address by IP",
                  R("POST", "/backends/127.0.0.1/drain", headers=fleet), 200,
                  both(ip_is("127.0.0.1"), in_state("draining", ttl=DEFAULT_TTL),
                       has_change(False)))
        chk.check("self: drain another address",
                  R("POST", "/backends/127.0.0.3/drain", headers=fleet), 403,
                  both(forbidden, detail_has("it may only change 127.0.0.1")))
        chk.check("read: drain", R("POST", "/backends/127.0.0.3/drain", headers=ro), 403,
                  both(forbidden, detail_has("scope read")))
        chk.check("admin: drain", R("POST", "/backends/127.0.0.3/drain", headers=ops), 200,
                  both(ip_is("127.0.0.3"), in_state("draining", ttl=DEFAULT_TTL)))
        chk.check("admin: drain outside --allow-cidr is not refused",
                  R("POST", "/backends/127.0.0.200/drain", headers=ops), 404,
                  problem_type("not-registered"))
        chk.check("self: heartbeat its own draining address",
                  R("PUT", "/backends/127.0.0.1/heartbeat", headers=fleet), 200,
                  both(ip_is("127.0.0.1"), in_state("draining", ttl=DEFAULT_TTL)))
        chk.check("self: heartbeat another address",
                  R("PUT", "/backends/127.0.0.3/heartbeat", headers=fleet), 403, forbidden)
        chk.check("self: DELETE /backends/self while draining",
                  R("DELETE", "/backends/self", headers=fleet), 200,
                  in_state("deregistered"))
        chk.check("drains kept their backends registered", R("GET", "/backends"), 200,
                  backends_list(["127.0.0.3"]))
    finally:
        rc = srv.stop()
        results.record("SIGTERM exits 0 (scoped tokens)", [] if rc == 0 else
                       ["exit status %r" % rc])
        log = srv.log()
        results.record("every mutation has an audit line naming its token",
                       [] if log.count("msg=audit") >= 15 and "token=fleet scope=self" in log
                       and "token=ops scope=admin" in log else
                       ["%d audit lines" % log.count("msg=audit")])
        results.record("scoped tokens never reach the log",
                       ["%r appears in stderr" % t for t in (FLEET, OPS, RO) if t in log])

    # The per-client rate limit: 429 with Retry-After.
    srv = Server(binary, args_extra=("--client-rps", "1", "--client-burst", "2"))
    try:
        port = srv.wait_listening()
    except RuntimeError as e:
        srv.kill()
        results.record("start r53reg with --client-rps 1", [str(e)])
        return
    R = lambda m, p, **kw: request(port, m, p, **kw)  # noqa: E731
    try:
        chk.check("within the burst", R("POST", "/backends/127.0.0.5"), 201)
        chk.check("within the burst (2)", R("DELETE", "/backends/127.0.0.5"), 200)
        chk.check("over the rate", R("POST", "/backends/127.0.0.6"), 429,
                  both(problem_type("too-many-requests"),
                       lambda a: [] if a.header("Retry-After") == "1"
                       else ["Retry-After %r" % a.header("Retry-After")]))
        chk.check("list over the rate", R("PUT", "/backends", headers=JSON_CT,
                                          body=jbody(["127.0.0.6"])), 429,
                  problem_type("too-many-requests"))
        chk.check("reads are not limited", R("GET", "/backends/127.0.0.6"), 404,
                  problem_type("not-registered"))
    finally:
        srv.stop()


# --- loopback, link-local and this-network addresses -----------------------------------------

SPECIAL = (("127.0.0.1", "A", "127.0.0.0/8 (loopback)"), ("::1", "AAAA", "::1/128 (loopback)"),
           ("169.254.1.1", "A", "169.254.0.0/16 (link-local)"),
           ("fe80::1", "AAAA", "fe80::/10 (link-local)"),
           ("0.1.2.3", "A", "0.0.0.0/8 (this network)"))


def special_refused(rng):
    return both(problem_type("special-address"), detail_has(rng), detail_has("--allow-special"))


def run_special(binary, chk, results):
    """Without --allow-special (the default) every path that registers answers 400
    special-address for them and registers nothing; DELETE and drain answer as for any
    address. R53REG_ALLOW_SPECIAL=1 accepts them."""
    srv = Server(binary, args_extra=NO_CLIENT_LIMIT, allow_special=False)
    try:
        port = srv.wait_listening()
    except RuntimeError as e:
        srv.kill()
        results.record("start r53reg without --allow-special", [str(e)])
        return
    results.record("start r53reg without --allow-special (port %d)" % port, [])
    R = lambda m, p, **kw: request(port, m, p, **kw)  # noqa: E731
    ips = [ip for ip, _, _ in SPECIAL]
    try:
        for ip, _, rng in SPECIAL:
            chk.check("special: POST %s" % ip, R("POST", "/backends/" + ip), 400,
                      special_refused(rng))
            chk.check("special: POST %s?wait=none" % ip,
                      R("POST", "/backends/%s?wait=none" % ip), 400, special_refused(rng))
            chk.check("special: %s not registered" % ip, R("GET", "/backends/" + ip), 404,
                      problem_type("not-registered"))
            chk.check("special: DELETE %s is not refused" % ip, R("DELETE", "/backends/" + ip),
                      404, problem_type("not-registered"))
            chk.check("special: drain %s is not refused" % ip,
                      R("POST", "/backends/%s/drain" % ip), 404, problem_type("not-registered"))
        chk.check("special: POST /backends/self from 127.0.0.1", R("POST", "/backends/self"),
                  400, special_refused("127.0.0.0/8 (loopback)"))
        listed = ["2001:db8::77"] + ips
        for m, p in (("POST", "/backends"), ("POST", "/backends?wait=none"), ("PUT", "/backends")):
            chk.check("special: %s %s" % (m, p), R(m, p, headers=JSON_CT, body=jbody(listed)),
                      400, both(special_refused("127.0.0.0/8 (loopback)"),
                                errors_at(list(range(1, len(listed))))))
        chk.check("special: DELETE /backends is not refused",
                  R("DELETE", "/backends", headers=JSON_CT, body=jbody(listed)), 200,
                  counts(removed=0, not_registered=len(listed), failed=0))
        chk.check("special: nothing registered", R("GET", "/backends"), 200, backends_list([]))
    finally:
        rc = srv.stop()
        results.record("SIGTERM exits 0 (without --allow-special)", [] if rc == 0 else
                       ["exit status %r" % rc])

    srv = Server(binary, env_extra={"R53REG_ALLOW_SPECIAL": "1"}, args_extra=NO_CLIENT_LIMIT,
                 allow_special=False)
    try:
        port = srv.wait_listening()
    except RuntimeError as e:
        srv.kill()
        results.record("start r53reg with R53REG_ALLOW_SPECIAL=1", [str(e)])
        return
    results.record("start r53reg with R53REG_ALLOW_SPECIAL=1 (port %d)" % port, [])
    R = lambda m, p, **kw: request(port, m, p, **kw)  # noqa: E731
    try:
        for ip, kind, _ in SPECIAL:
            chk.check("R53REG_ALLOW_SPECIAL=1: POST %s" % ip, R("POST", "/backends/" + ip), 201,
                      placement_of(ip, kind))
        chk.check("R53REG_ALLOW_SPECIAL=1: all registered", R("GET", "/backends"), 200,
                  backends_list(ips))
        for ip, _, _ in SPECIAL:
            chk.check("R53REG_ALLOW_SPECIAL=1: DELETE %s" % ip, R("DELETE", "/backends/" + ip),
                      200)
    finally:
        srv.stop()


def main(argv):
    if len(argv) < 2:
        print("usage: %s R53REG_BINARY [OPENAPI_YAML]" % argv[0], file=sys.stderr)
        return 2
    binary = argv[1]
    spec_path = argv[2] if len(argv) > 2 else DEFAULT_SPEC
    results = Results()
    if not os.access(binary, os.X_OK):
        results.record("binary", ["%s is not an executable file" % binary])
        return results.summary()
    spec = Spec(spec_path)
    chk = Checker(spec, results)
    run_anonymous(binary, chk, results)
    run_bulk(binary, chk, results)
    run_with_token(binary, chk, results)
    run_drain_and_health(binary, chk, results)
    run_security(binary, chk, results)
    run_special(binary, chk, results)
    return results.summary()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
