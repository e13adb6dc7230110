#!/usr/bin/env bash
# Makes sure PostgreSQL's server programs (initdb, pg_ctl, postgres) are installed, for the test
# suites that run on a real PostgreSQL: the tests start throwaway clusters of their own in temp
# directories (test/helpers/postgres.ts), owned by the unprivileged `postgres` user when run as
# root, listening on 127.0.0.1 only. Installs Debian's `postgresql` package when missing (as root);
# otherwise, says so and the suites are skipped, unless SESSIONSTORE_REQUIRE_POSTGRES=1 (CI).
set -euo pipefail

installed() {
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1
}

if installed; then
  echo "setup-postgres: PostgreSQL is installed ($(ls -d /usr/lib/postgresql/*/ 2>/dev/null | xargs -n1 basename | tr '\n' ' '))"
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "setup-postgres: installing Debian's postgresql package"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null; }
  # The package starts a cluster of its own; the tests do not use it.
  command -v pg_ctlcluster >/dev/null && pg_ctlcluster --force "$(ls /usr/lib/postgresql)" main stop 2>/dev/null || true
  installed && exit 0
fi
if [ "${SESSIONSTORE_REQUIRE_POSTGRES:-}" = 1 ]; then
  echo "setup-postgres: PostgreSQL is not installed and cannot be (needs root and apt-get)" >&2
  exit 1
fi
echo "setup-postgres: PostgreSQL not installed; its test suites will be skipped"
