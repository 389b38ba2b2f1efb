#!/bin/sh
# Build r53reg, the Route 53 emulator, the load generator and health_bench (Release), then
# run the burst benchmark (bench/burst.py; its options pass through, e.g. --n 2000).
# `scripts/bench.sh committer [options]` runs bench/committer.py instead: the group committer's
# cost per scenario (spread arrivals, 40,000 registrations, registrations onto a full name,
# deregistrations, 5%-a-minute churn) at 5 calls/s and at the 2026 limits (10/s, burst 50),
# a table of calls, values sent and re-sent, Throttling, lost registrations, the minimum the
# element/character limits allow and the time floor; --quick (~2 min), --scenario NAME,
# --limits 5|2026|both, --n N, --churn-minutes M (a full run takes about 13 minutes).
# `scripts/bench.sh watches [options]` runs bench/watches.py: 10,000 parked watches, their memory
# and how fast one change reaches them (small and large bodies).
# `scripts/bench.sh tree [options]` runs bench/tree.py: 200,000 registrations into the alias tree.
# Loopback only. The health benchmarks use the same build: bench/health_e2e.py build-bench/bin,
# and bench/health_haproxy.py build-bench/bin --runs 3 (r53reg's TCP checks and HAProxy's on the
# same 10,000 listeners, CPU side by side; install-deps.sh --bench brings haproxy).
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh --bench
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=ON
cmake --build build-bench -j"$(nproc)" --target r53reg r53emu burst_client health_bench
if [ "${1:-}" = watches ]; then
    shift
    exec /usr/bin/python3 bench/watches.py --bin build-bench/bin "$@"
fi
if [ "${1:-}" = tree ]; then
    shift
    exec /usr/bin/python3 bench/tree.py --bin build-bench/bin "$@"
fi
if [ "${1:-}" = committer ]; then
    shift
    exec /usr/bin/python3 bench/committer.py --bin build-bench/bin "$@"
fi
exec /usr/bin/python3 bench/burst.py --bin build-bench/bin "$@"
