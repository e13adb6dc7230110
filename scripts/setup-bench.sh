#!/usr/bin/env bash
# Installs and builds the optional tools of `npm run bench` when they are missing:
#   redis-server, strace       with apt-get, only when running as root (as CI does); otherwise it
#                              says what to install (the Redis baselines; scenario 3's fsync count)
#   bench/bin/loadgen          the Go load client (bench/loadgen), with go build
#   bench/bin/nats-server      NATS with JetStream, the NATS baselines, with go install (pinned)
#   the motosan harness        test/interop/motosan in release mode, for the seed comparison (16)
# bench/bin/ is git-ignored. It never fails: the bench skips what a missing tool measures and
# says so under its table. Re-running is cheap: go and cargo rebuild only what changed.
set -uo pipefail
cd "$(dirname "$0")/.."

nats_server_version=v2.15.3
bin=$PWD/bench/bin

warn() { echo "warning: $1; the bench will skip what needs it" >&2; }

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v strace >/dev/null 2>&1 || missing+=(strace)
if [ ${#missing[@]} -eq 0 ]; then
  echo "bench tools present: redis-server, strace"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} with apt-get"
  if ! { apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; }; then
    warn "could not install ${missing[*]}"
  fi
else
  echo "note: ${missing[*]} not installed; the bench skips what needs them" \
    "(install with your package manager, e.g. apt-get install ${missing[*]})" >&2
fi

if command -v go >/dev/null 2>&1; then
  mkdir -p "$bin"
  echo "building bench/bin/loadgen"
  (cd bench/loadgen && go vet . && go build -o "$bin/loadgen" .) || warn "could not build the Go load client"
  stamp=$bin/.nats-server.version
  if [ ! -x "$bin/nats-server" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$nats_server_version" ]; then
    echo "go install github.com/nats-io/nats-server/v2@$nats_server_version (a few minutes the first time)"
    if GOBIN=$bin go install "github.com/nats-io/nats-server/v2@$nats_server_version"; then
      printf '%s' "$nats_server_version" >"$stamp"
    else
      warn "could not build nats-server"
    fi
  fi
else
  echo "note: go not found: the bench skips the scenarios its Go load client drives, and NATS" >&2
fi

if command -v cargo >/dev/null 2>&1; then
  echo "building the motosan harness (release) for the seed comparison"
  cargo build --quiet --release --locked --manifest-path test/interop/motosan/Cargo.toml ||
    warn "could not build the motosan harness"
else
  echo "note: cargo not found: the bench skips the seed comparison with motosan" >&2
fi
exit 0
