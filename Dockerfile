# r53reg container image: a Debian 12 build stage and a slim runtime stage.
#
# Build: docker build -t r53reg .
# Run:   docker run -p 8080:8080 -e R53REG_TOKENS=... r53reg --record-name api.example.com
#
# Every flag also reads from the environment as R53REG_<FLAG> (dashes become underscores).

FROM debian:12-slim AS build

RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates \
        cmake \
        gcc \
        libc6-dev \
        libcurl4-openssl-dev \
        libgnutls28-dev \
        libjansson-dev \
        libmicrohttpd-dev \
        libssl-dev \
        libxml2-dev \
        make \
        pkg-config \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . /src

# The same two commands as scripts/run.sh.
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
    && cmake --build build -j"$(nproc)"

FROM debian:12-slim

# Only the shared libraries r53reg links, CA certificates for Route 53 and curl for the
# health check.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates \
        curl \
        libcurl4 \
        libjansson4 \
        libmicrohttpd12 \
        libssl3 \
        libxml2 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin r53reg \
    && mkdir -p /var/lib/r53reg \
    && chown r53reg /var/lib/r53reg

COPY --from=build /src/build/bin/r53reg /usr/local/bin/r53reg

# Listen on every interface inside the container. A non-loopback listen address refuses to
# start without a token: set R53REG_TOKENS (comma separated) or R53REG_TOKEN_FILE (one per
# line), or R53REG_ALLOW_ANONYMOUS=1 to accept anonymous mutations on purpose.
ENV R53REG_LISTEN=0.0.0.0:8080
# For a persistent embedded store: -e R53REG_STATE_FILE=/var/lib/r53reg/state.jsonl with a
# volume on /var/lib/r53reg.

USER r53reg
EXPOSE 8080

# With R53REG_TLS_CERT/R53REG_TLS_KEY set, the API speaks https: override this check with
# `curl -fsSk https://127.0.0.1:8080/healthz`.
HEALTHCHECK --interval=30s --timeout=3s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1

ENTRYPOINT ["/usr/local/bin/r53reg"]
