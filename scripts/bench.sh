#!/bin/sh
# Build r53reg, the Route 53 emulator, the load generator and health_bench (Release), then
# run the burst benchmark (bench/burst.py; its options pass through, e.g. --n 2000).
# Loopback only. The health benchmarks use the same build: bench/health_e2e.py build-bench/bin.
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=ON
cmake --build build-bench -j"$(nproc)" --target r53reg r53emu burst_client health_bench
exec /usr/bin/python3 bench/burst.py --bin build-bench/bin "$@"
