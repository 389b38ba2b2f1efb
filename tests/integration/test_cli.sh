#!/bin/sh
# The binary's command line as a user meets it: --help and --version exit 0; bad flags exit 2
# with one message naming the flag; a non-loopback address without a token refuses to start.
bin="$1"
fail=0
pass=0

expect() { # expect <exit code> <text in stderr/stdout> <args...>
    want_rc=$1 want_text=$2
    shift 2
    out=$("$bin" "$@" 2>&1)
    rc=$?
    if [ "$rc" -ne "$want_rc" ] || ! printf '%s' "$out" | grep -qF -- "$want_text"; then
        echo "FAIL: r53reg $* -> exit $rc (want $want_rc), output: $out"
        fail=$((fail + 1))
    else
        pass=$((pass + 1))
    fi
}

expect 0 "Usage: r53reg" --help
expect 0 "R53REG_MAX_PER_BUCKET" --help
expect 0 "r53reg 0." --version
expect 2 "--buckets" --buckets 0
expect 2 "--max-per-bucket" --max-per-bucket 1000
expect 2 "--bucketing" --bucketing=round-robin
expect 2 "--listen" --listen nowhere
expect 2 "unknown option '--frobnicate'" --frobnicate
expect 2 "--allow-anonymous" --listen 0.0.0.0:0
# A trusted proxy forwards remote callers: without a token, refuse to start (even on loopback).
expect 2 "--allow-anonymous" --listen 127.0.0.1:0 --trusted-proxy 127.0.0.1/32
export R53REG_TTL=-5
expect 2 "R53REG_TTL"
unset R53REG_TTL
# Security flags: bad values exit 2 naming the flag; a token never appears in a message.
expect 0 "--trusted-proxy CIDR[,CIDR]" --help
expect 0 "R53REG_MAX_CONNECTIONS_PER_IP" --help
expect 2 "--allow-cidr" --allow-cidr 10.0.0.0/40
expect 0 "R53REG_ALLOW_SPECIAL" --help
expect 2 "--allow-special" --allow-special=maybe
expect 2 "did you mean 192.0.2.0/24?" --trusted-proxy 192.0.2.1/24
expect 2 "--tls-key" --tls-cert /nonexistent/cert.pem
expect 2 "--client-burst" --client-burst 0
expect 2 "--tokens: entry 2" --tokens "good-token-0123456789,self:fleet"
expect 2 "shorter than 16" --tokens "admin:ops:Short-9876"
out=$("$bin" --tokens "admin:ops:has space" 2>&1)
if printf '%s' "$out" | grep -q "has space"; then
    echo "FAIL: a refused token is repeated in the message: $out"
    fail=$((fail + 1))
else
    pass=$((pass + 1))
fi
tf=$(mktemp)
printf 'admin ops\n' >"$tf"
expect 2 "line 1" --token-file "$tf"
# A swapped line (the secret in the name column) is refused, and the secret is not repeated.
printf 'self Qm8xK3pL0sVb7nWqZt fleet\n' >"$tf"
expect 2 "line 1: the name column" --token-file "$tf"
for t in "--token-file $tf" "--tokens self:Qm8xK3pL0sVb7nWqZt:fleet" "--tokens admin:ops:Short-9876"; do
    # shellcheck disable=SC2086
    out=$("$bin" $t 2>&1)
    if printf '%s' "$out" | grep -q "Qm8xK3pL0sVb7nWqZt\|Short-9876"; then
        echo "FAIL: a refused secret is repeated in the message: $out"
        fail=$((fail + 1))
    else
        pass=$((pass + 1))
    fi
done
rm -f "$tf"
# A certificate that cannot be read: the API cannot start, exit 1 naming the file.
expect 1 "/nonexistent/cert.pem" --tls-cert /nonexistent/cert.pem --tls-key /nonexistent/key.pem
# An address this machine does not have (TEST-NET-1; nothing is sent): a clear error, exit 1.
expect 1 "cannot listen" --listen 192.0.2.1:8080 --allow-anonymous

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
