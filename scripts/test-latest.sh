#!/usr/bin/env bash
# Early warning (README, Deployment, "Testing against the newest releases"): the tests that start no gateway
# (`make check`'s), in their own virtualenv (var/latest-venv) with the newest releases of the
# packages whose behaviour the code leans on most: Django 5.2.x, gunicorn, redis-py,
# prometheus-client and msgspec; everything else as pinned. Informational: it prints a banner with
# the versions and PASSED or FAILED, and exits 0 either way (a release that breaks us is news, not
# a red build). Bounded: pip waits at most PIP_TIMEOUT s per request and installing at most
# LATEST_INSTALL_SECONDS in all; the tests at most LATEST_TEST_SECONDS.
set -o errexit -o pipefail -o nounset
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

venv="${LATEST_VENV:-$ROOT/var/latest-venv}"
# requirements.txt name -> what to install instead of its pin.
declare -A latest=(
  [Django]="Django>=5.2,<5.3"
  [gunicorn]="gunicorn"
  [redis]="redis"
  [prometheus-client]="prometheus-client"
  [msgspec]="msgspec"
)
names="$(IFS='|'; echo "${!latest[*]}")"

pinned() { sed -n -E "s/^$1==([^ \\]+).*/\1/Ip" "$ROOT/requirements.txt"; }
installed() { "$venv/bin/python" -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' "$1" 2>/dev/null || echo "-"; }

banner() {  # banner PASSED|FAILED [why] [label of the installed column]
  local name line label="${3:-tested}"
  printf '\n==================== newest releases: %s ====================\n' "$1"
  [ -n "${2:-}" ] && printf '%s\n' "$2"
  for name in Django gunicorn redis prometheus-client msgspec; do
    line="$(printf '  %-18s pinned %-10s %s %s' "$name" "$(pinned "$name")" "$label" "$(installed "$name")")"
    printf '%s\n' "$line"
  done
  printf '(informational: CI does not fail on this; see README, Deployment, "Testing against the newest releases")\n'
  printf '=====================================================================\n'
}

step "Preparing $venv with the newest Django 5.2.x, gunicorn, redis-py, prometheus-client, msgspec"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
others="$(mktemp)"
trap 'rm -f "$others"' EXIT
# Every pin of both lock files but the five, so the rest of the environment is the one the tests
# normally run in. Plain `name==version` lines: the locks' hashes would put pip in --require-hashes
# mode, which the five unpinned newest releases cannot satisfy.
sed -n -E 's/^([A-Za-z0-9][A-Za-z0-9._-]*(\[[^]]*\])?==[^ \\]+).*/\1/p' \
  "$ROOT/requirements.txt" "$ROOT/requirements-dev.txt" | grep -v -i -E "^($names)==" | sort -u > "$others"
if ! timeout "${LATEST_INSTALL_SECONDS:-150}" "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  --timeout "${PIP_TIMEOUT:-20}" --upgrade -r "$others" "${latest[@]}" >&2; then
  banner FAILED "pip could not install the newest releases (offline, too slow, or they conflict with our pins: see above)" "not tested; venv has"
  exit 0
fi

step "Running the tests that start no gateway against them"
export PATH="$ROOT/bin:$PATH" DJANGO_SETTINGS_MODULE=realtime.settings.test
if timeout --kill-after=10 "${LATEST_TEST_SECONDS:-360}" \
  "$venv/bin/python" -m pytest -q -m "not e2e and not cluster" "$@" >&2; then
  banner PASSED
else
  banner FAILED "the tests failed (or ran over ${LATEST_TEST_SECONDS:-360} s) against these versions: see above"
fi
exit 0
