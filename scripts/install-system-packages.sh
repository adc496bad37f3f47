#!/usr/bin/env bash
# Installs the Debian packages the gateway and its tests run: redis-server (always for tests; for
# `make run` only when REDIS_URL is unset), npm (scripts/build-frontend.sh installs centrifuge-js
# with it), and for the test suite nginx and PostgreSQL (the
# multi-instance topology) and chromium (the admin browser tests). Already-installed packages are skipped, so re-runs take no time.
# Usage: install-system-packages.sh [run|test]
set -o errexit -o pipefail -o nounset
source "$(dirname "$0")/lib.sh"

want=()
need() { command -v "$1" >/dev/null 2>&1 || [ -x "$2" ] || want+=("$3"); }
case "${1:-run}" in
  run)
    if [ -z "${REDIS_URL:-}" ]; then need redis-server /usr/bin/redis-server redis-server; fi
    need npm /usr/bin/npm npm
    ;;
  test)
    need npm /usr/bin/npm npm
    need redis-server /usr/bin/redis-server redis-server
    need nginx /usr/sbin/nginx nginx
    need pg_ctl /usr/lib/postgresql/15/bin/pg_ctl postgresql
    need chromium /usr/bin/chromium chromium   # the admin browser tests (Playwright drives it)
    ;;
  *) die "usage: $0 [run|test]" ;;
esac
[ ${#want[@]} -eq 0 ] && exit 0
command -v apt-get >/dev/null || die "please install: ${want[*]} (no apt-get here)"
step "Installing Debian packages: ${want[*]} (one-time, about a minute)"
apt_get update -qq
apt_get install -y -qq --no-install-recommends "${want[@]}"
note "installed ${want[*]}"
