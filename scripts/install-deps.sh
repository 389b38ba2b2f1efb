#!/bin/sh
# Install what building (and, with --test, testing) r53reg needs on Debian 12; --bench is
# --test plus what the benchmarks compare against (haproxy 2.6, for bench/health_haproxy.py).
# Installs only what is missing, so a second run costs nothing. Must run as root (or with sudo
# available).
set -eu
cd "$(dirname "$0")/.."

pkgs="cmake make gcc pkg-config libmicrohttpd-dev libcurl4-openssl-dev libssl-dev
      libjansson-dev libxml2-dev libgnutls28-dev ca-certificates"
if [ "${1:-}" = "--test" ] || [ "${1:-}" = "--bench" ]; then
    pkgs="$pkgs curl openssl wrk python3 python3-yaml python3-jsonschema python3-boto3 python3-prometheus-client python3-dnspython libclang-rt-14-dev"
    # The status page's test (tests/integration/test_ui.py) drives a headless Chromium.
    pkgs="$pkgs chromium chromium-driver python3-selenium"
    command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs npm"
fi
if [ "${1:-}" = "--bench" ]; then
    # Debian's package starts no daemon here (no init system): the bench runs its own haproxy.
    pkgs="$pkgs haproxy"
fi

missing=""
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
if [ -n "$missing" ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "install-deps: installing:$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

# The linters the test suite runs (versions pinned in package-lock.json).
if { [ "${1:-}" = "--test" ] || [ "${1:-}" = "--bench" ]; } && [ -f package-lock.json ]; then
    if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
        npm ci --no-audit --no-fund --loglevel=error
    fi
fi
