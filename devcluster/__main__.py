"""`make cluster`: start the multi-instance topology (devcluster/topology.py), print where
everything is, run until SIGINT/SIGTERM, then stop it all. scripts/cluster.sh runs this.

    python -m devcluster               # start, print the URLs, run until Ctrl-C
    python -m devcluster manage ARGS   # manage.py against the running cluster's database and Redis

CLUSTER_REDIS (single, sentinel or cluster) picks the Redis; `manage` uses the kind the cluster in
CLUSTER_DIR last started with, unless CLUSTER_REDIS says otherwise.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from devcluster.ports import Ports, redis_kind
from devcluster.procs import ROOT
from devcluster.topology import Cluster


def step(message: str) -> None:
    """scripts/lib.sh's `step`, for the same look in `make cluster`'s output."""
    print(f"\033[1m==> {message}\033[0m", file=sys.stderr, flush=True)


def note(message: str) -> None:
    print(f"    {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str]) -> int:
    env = dict(os.environ)
    var_dir = Path(env.get("CLUSTER_DIR") or ROOT / "var" / "cluster").resolve()
    started_with = var_dir / "redis-kind"
    if argv[:1] == ["manage"] and not env.get("CLUSTER_REDIS") and started_with.exists():
        env["CLUSTER_REDIS"] = started_with.read_text().strip()
    kind = redis_kind(env.get("CLUSTER_REDIS"))
    cluster = Cluster(var_dir=var_dir, ports=Ports.from_env(env), env=env, progress=step, redis=kind)
    if argv[:1] == ["manage"]:
        if not cluster.postgres.password_file.exists():
            raise SystemExit(f"no cluster in {var_dir}: start it first (make cluster)")
        result = cluster.manage(*argv[1:], input=None if sys.stdin.isatty() else sys.stdin.read())
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        return result.returncode

    def interrupted(signum: int, frame: object) -> None:
        # Ctrl-C reaches make and the shell too, which may pass it on: stop once, in peace.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    code = 0
    try:
        cluster.start()
        started_with.write_text(f"{kind}\n")
        step("The cluster is up (Ctrl-C stops it)")
        for line in cluster.summary():
            note(line)
        note("an admin user: scripts/cluster.sh manage createsuperuser")
        note("a token:       scripts/cluster.sh manage issue_connection_token alice")
        reported: set[Path] = set()
        while not (dead := [p for p in cluster.vital_processes() if not p.alive()]):
            # A Redis server of sentinel or cluster may die: its replica takes over. Say so once.
            for proc in cluster.processes():
                if not proc.alive() and proc.log_path not in reported:
                    reported.add(proc.log_path)
                    note(f"{proc.log_path.stem} exited (Redis {kind} fails over; the cluster carries on)")
            time.sleep(0.5)
        step(f"{dead[0].log_path.stem} exited; stopping the cluster")
        note(dead[0].tail())
        code = 1
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        step("Stopping the cluster")
        cluster.stop()
        step("Stopped")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
