#!/usr/bin/env bash
# Installs the optional tools of `npm run bench` when they are missing: redis-server (the Redis
# baseline of scenario 1) and strace (the fsync count of scenario 3). It installs them with
# apt-get only when running as root (as CI does); otherwise it says what to install. It never
# fails: the bench skips what a missing tool measures and says so under its table.
set -uo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v strace >/dev/null 2>&1 || missing+=(strace)
if [ ${#missing[@]} -eq 0 ]; then
  echo "bench tools present: redis-server, strace"
  exit 0
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} with apt-get"
  if ! { apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; }; then
    echo "warning: could not install ${missing[*]}; the bench will skip what needs them" >&2
  fi
else
  echo "note: ${missing[*]} not installed; the bench skips what needs them" \
    "(install with your package manager, e.g. apt-get install ${missing[*]})" >&2
fi
exit 0
