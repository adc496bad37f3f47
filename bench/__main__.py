"""`python -m bench`: both benchmarks, a printed report, and var/bench/results.json.

scripts/bench.sh is the entry point (it installs wrk and the Node baseline's packages first);
`--tuning` runs the second-phase matrix of gunicorn layouts and stack variants instead;
`--only topologies` the publish callback on single Redis, Sentinel and Cluster (bench/redis_topologies.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from bench import callbacks, inprocess, redis_topologies, report, rules, targets
from bench.loadgen import wrk_version

ROOT = targets.ROOT


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "missing"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        "?",
    )
    packages = ("django", "djangorestframework", "gunicorn", "redis", "hiredis", "msgspec")
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "python": platform.python_version(),
        **{name: _package_version(name) for name in packages},
        "node": _version(["node", "--version"]),
        "redis_server": _version(["redis-server", "--version"]),
        "wrk": wrk_version(),
    }


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # `timeout` in scripts/bench.sh sends SIGTERM: unwind through the finally blocks that stop servers.
    raise SystemExit(128 + signum)


def _publish(args: argparse.Namespace, results: dict[str, Any], var_dir: Path, run_dir: Path) -> None:
    chosen = list(targets.TUNING if args.tuning else targets.MAIN)
    if args.targets:
        known = {t.name: t for t in (*targets.MAIN, *targets.TUNING)}
        chosen = [known[name] for name in args.targets.split(",")]
    if args.before:
        chosen.insert(1, targets.before(_export(args.before, var_dir), args.before))
    settings = callbacks.Settings(
        connections=args.connections, duration_s=args.duration, warmup_s=args.warmup, rounds=args.rounds
    )
    with callbacks.environment(var_dir=var_dir, run_dir=run_dir) as (ctx, client):
        outcomes: list[callbacks.Outcome] = []
        if args.only != "inprocess":
            print(
                f"\n== Publish callback: POST /centrifugo/publish, {settings.connections} keep-alive connections, "
                f"{settings.warmup_s} s warm-up + {settings.duration_s} s per target and round, {settings.rounds} "
                "rounds, one target at a time =="
            )
            print("   wrk -t1 (one thread) shares the 2 cores with the server and Redis; Redis has no persistence.")
            outcomes = callbacks.run(chosen, settings, ctx, lambda _: callbacks.RedisStore(client))
        stack = inprocess.run(ctx) if args.tuning or args.only == "inprocess" else None

    if outcomes:
        ratios = report.publish_ratios(outcomes)
        print()
        print(report.publish_table(outcomes, ratios))
        print("   ratios are medians of per-round ratios; cpu us/req: the server's processes, user+system")
        print()
        for line in report.publish_headlines(outcomes, ratios):
            print(line)
        print("\nwrk's keep-alive connections per server process, 1 s into each round (a connection stays with")
        print("the process that accepted it; an uneven split leaves one worker, one GIL, with most of the load):")
        for line in report.connection_splits(outcomes):
            print("  " + line)
        print("\nStore check (XINFO STREAM entries-added over rtgw:stream:{chat:*}):")
        for line in report.store_checks(outcomes):
            print("  " + line)
        results["publish"] = {
            "settings": {**dataclasses.asdict(settings), "wrk_threads": 1, "body": callbacks.publish_body().decode()},
            "headlines": report.publish_headlines(outcomes, ratios),
            **report.as_json(outcomes),
        }
    if stack is not None:
        print(
            "\n== In-process CPU per request (the ASGI app awaited in a loop, one request at a time: no server, no sockets) =="
        )
        print(inprocess.table(stack))
        results["inprocess"] = stack


def _export(rev: str, var_dir: Path) -> Path:
    """`git archive` of REV into var/bench/before-<commit> (kept: a second run reuses it)."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", f"{rev}^{{commit}}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    tree = var_dir / f"before-{commit[:12]}"
    if not (tree / "realtime" / "gunicorn_conf.py").exists():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.Popen(["git", "-C", str(ROOT), "archive", commit], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(tree)], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            raise SystemExit(f"git archive {rev} failed")
    print(f"ours-before: {rev} = {commit[:12]}, exported to {tree}")
    return tree


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        choices=["callbacks", "rules", "inprocess", "topologies"],
        help="run one benchmark (topologies: single Redis vs Sentinel vs Cluster, REDIS_ACK local vs replicated)",
    )
    parser.add_argument("--tuning", action="store_true", help="the gunicorn/stack matrix, and the in-process costs")
    parser.add_argument("--targets", help="comma-separated target names (default: the main set)")
    parser.add_argument("--connections", type=int, default=32, help="wrk keep-alive connections [32]")
    parser.add_argument("--duration", type=int, default=6, help="measured seconds per target and round [6]")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds per target and round [2]")
    parser.add_argument("--rounds", type=int, default=3, help="starts of each target, interleaved [3]")
    parser.add_argument("--before", metavar="REV", help="also load the gateway as of this git revision (ours-before)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)

    var_dir = Path(os.environ.get("BENCH_VAR_DIR", ROOT / "var" / "bench"))
    run_dir = Path(os.environ.get("BENCH_RUN_DIR", var_dir / "run"))
    var_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine()}
    m = results["machine"]
    print(
        f"machine: {m['cpus']} CPUs ({m['cpu_model']}), Python {m['python']}, Django {m['django']}, "
        f"DRF {m['djangorestframework']}, gunicorn {m['gunicorn']}, node {m['node']}, {m['wrk'].split(' [')[0]}"
    )

    if args.only == "topologies":
        settings = callbacks.Settings(
            connections=args.connections, duration_s=args.duration, warmup_s=args.warmup, rounds=args.rounds
        )
        names = args.targets.split(",") if args.targets else ()
        results["topologies"] = redis_topologies.run(settings, var_dir, run_dir, names)
    elif args.only != "rules":
        _publish(args, results, var_dir, run_dir)
    if args.only in (None, "rules") and not args.tuning:
        print("\n== Rule decisions: RuleSet.decide() over generated rule sets (pure Python, one core) ==")
        rule_results = rules.run()
        print(rules.table(rule_results))
        results["rules"] = rule_results

    # Only a full default run writes results.json; partial and tuning runs keep it intact.
    name = (
        "tuning"
        if args.tuning
        else "results"
        if args.only is None and not args.targets and not args.before
        else f"results-{args.only or 'partial'}"
    )
    out = var_dir / f"{name}.json"
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nresults: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
