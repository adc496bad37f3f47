#!/usr/bin/env bash
# Benchmarks (bench/README.md): publish-callback throughput of the gateway against a Node/Express and a
# naive DRF baseline measured in the same run, then rule-decision throughput. Prints ratios and
# writes var/bench/results.json. Load goes to 127.0.0.1 only and every run is bounded in time.
# Usage: scripts/bench.sh [--tuning] [--only callbacks|rules|topologies] [--connections N] [--duration S] ...
set -o errexit -o pipefail -o nounset
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$PATH"

[ -x "$ROOT/.venv/bin/python" ] || die "no .venv: run 'make python' (or 'make bench') first"
command -v redis-server >/dev/null || die "redis-server is missing: run scripts/install-system-packages.sh test"
{ command -v node && command -v npm; } >/dev/null || die "Node.js and npm are needed for the Node baseline"

if ! command -v wrk >/dev/null; then
  step "Installing wrk (HTTP load generator; one-time)"
  apt_get update -qq
  apt_get install -y -qq --no-install-recommends wrk
fi

node_dir="$ROOT/bench/node-baseline"
stamp="$node_dir/node_modules/.package-lock.sha256"
digest="$(sha256sum "$node_dir/package-lock.json" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  step "Installing the Node baseline's packages (npm ci, pinned in bench/node-baseline/package-lock.json)"
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$digest" > "$stamp"
fi

# Every server the benchmark starts writes its process-group id here; if the Python driver dies
# before it can stop them (or `timeout` has to kill it), this trap does.
export BENCH_VAR_DIR="$ROOT/var/bench" BENCH_RUN_DIR="$ROOT/var/bench/run"
mkdir -p "$BENCH_RUN_DIR"
# One run at a time: two would share the cores (and measure each other), and the clean-up below
# would stop the other run's servers.
exec 9> "$BENCH_VAR_DIR/.lock"
flock --nonblock 9 || die "another benchmark run is going on (it holds var/bench/.lock)"
stop_leftovers() {
  local pidfile pid name cmdline
  for pidfile in "$BENCH_RUN_DIR"/*.pid; do
    [ -f "$pidfile" ] || continue
    pid="" name=""
    { read -r pid; read -r name; } < "$pidfile" || true
    cmdline="$(tr '\0' ' ' < "/proc/${pid:-0}/cmdline" 2>/dev/null || true)"
    # Only a group whose leader still runs the program we started (a pid can be reused).
    if [ -n "$pid" ] && [ -n "$name" ] && [[ "$cmdline" == *"$name"* ]]; then
      kill -TERM -- "-$pid" 2>/dev/null || true
      sleep 1
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
}
trap stop_leftovers EXIT
stop_leftovers # a previous run that was killed outright

step "Running the benchmarks (about 3 minutes, --tuning about 9; servers run one at a time on free 127.0.0.1 ports)"
# Hard bound (the default run takes ~3 min, --tuning ~9): SIGTERM lets the driver stop its servers.
timeout --signal=TERM --kill-after=30 900 python -m bench "$@"
