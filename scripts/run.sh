#!/bin/sh
# Install what is missing, build, and run r53reg on its embedded default store
# (127.0.0.1:8080, no AWS account needed). Extra arguments go to r53reg.
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF
cmake --build build -j"$(nproc)"
exec build/bin/r53reg "$@"
