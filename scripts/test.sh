#!/bin/sh
# Install what is missing, build, and run the whole test suite: unit, integration,
# concurrency (also under ThreadSanitizer), everything again under ASan+UBSan, and the linters.
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=ON -DR53REG_SANITIZER_SUITES=ON
cmake --build build -j"$(nproc)"
cd build
exec ctest -j"$(nproc)" --output-on-failure --no-label-summary
