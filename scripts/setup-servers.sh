#!/usr/bin/env bash
# Makes sure the servers some test suites run for real are installed from Debian's packages:
#   PostgreSQL (initdb, pg_ctl, postgres): the suites on the postgres backend start throwaway
#     clusters in temp directories (test/helpers/postgres-cluster.ts), owned by the unprivileged
#     `postgres` user when run as root, listening on 127.0.0.1 only;
#   nginx: the many-replica suites put it in front of the replicas as a gRPC load balancer
#     (test/helpers/nginx.ts), with a config and prefix of their own in a temp directory;
#   tmux: the CLI's tests run commands in its pseudo-terminals to see what a person sees
#     (colours, tables, questions), on a socket of their own (test/helpers/terminal.ts).
# Installs what is missing (as root, with apt-get); otherwise says so, and those suites are
# skipped, unless SESSIONSTORE_REQUIRE_SERVERS=1 (CI), which makes a missing server an error.
set -euo pipefail
required=${SESSIONSTORE_REQUIRE_SERVERS:-}

postgres_installed() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
nginx_installed() { command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; }

install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then return 1; fi
  echo "setup-servers: installing $* from Debian"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; }
}

missing() {
  if [ "$required" = 1 ]; then
    echo "setup-servers: $1 is not installed and cannot be (needs root and apt-get)" >&2
    exit 1
  fi
  echo "setup-servers: $1 not installed; its test suites will be skipped"
}

if postgres_installed || { install postgresql && postgres_installed; }; then
  # The package may start a cluster of its own: the tests start theirs.
  if command -v pg_lsclusters >/dev/null; then
    pg_lsclusters --no-header 2>/dev/null | while read -r version name _; do
      pg_ctlcluster "$version" "$name" stop >/dev/null 2>&1 || true
    done
  fi
  echo "setup-servers: PostgreSQL $(ls /usr/lib/postgresql | tr '\n' ' ')"
else
  missing PostgreSQL
fi

if nginx_installed || { install nginx-light || install nginx; } && nginx_installed; then
  # The package starts nginx on port 80 where it can: the tests start their own.
  pkill -x nginx 2>/dev/null || true
  echo "setup-servers: $(nginx -v 2>&1)"
else
  missing nginx
fi

if command -v tmux >/dev/null 2>&1 || { install tmux && command -v tmux >/dev/null 2>&1; }; then
  echo "setup-servers: $(tmux -V)"
else
  missing tmux
fi
