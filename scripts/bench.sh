#!/bin/sh
# Build r53reg, the Route 53 emulator, the load generator and health_bench (Release), then
# run the burst benchmark (bench/burst.py; its options pass through, e.g. --n 2000).
# Loopback only. The health benchmarks use the same build: bench/health_e2e.py build-bench/bin,
# and bench/health_haproxy.py build-bench/bin --runs 3 (r53reg's TCP checks and HAProxy's on the
# same 10,000 listeners, CPU side by side; install-deps.sh --bench brings haproxy).
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh --bench
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=ON
cmake --build build-bench -j"$(nproc)" --target r53reg r53emu burst_client health_bench
exec /usr/bin/python3 bench/burst.py --bin build-bench/bin "$@"
