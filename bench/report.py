"""Ratios and the printed tables. Ratios compare targets measured in the same run on the same box;
absolute numbers from this 2-core machine (wrk shares it) mean little on their own."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from bench.callbacks import Outcome, Round

NODE, NODE_X2, NAIVE, OURS, NOOP = "node-express", "node-express-x2", "naive-drf", "ours", "ours-noop"
BEFORE = "ours-before"


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def paired(a: Outcome, b: Outcome, value: Callable[[Round], float]) -> float | None:
    """Median over rounds of value(a) / value(b) within the same round. Targets of one round run
    seconds apart, so a slow spell of the (shared, virtual) machine cancels out of each ratio."""
    ratios = [value(x) / value(y) for x, y in zip(a.rounds, b.rounds, strict=True) if value(y)]
    return round(statistics.median(ratios), 3) if ratios else None


def _rps(r: Round) -> float:
    return r.load.rps


def _p99(r: Round) -> float:
    return r.load.p99_ms


def publish_ratios(outcomes: Sequence[Outcome]) -> dict[str, dict[str, float | None]]:
    """Per target against each baseline: throughput ratio (higher is better), p99 ratio (lower is
    better), both paired per round; server CPU per request ratio (lower is better) over all rounds."""
    by_name = {o.target.name: o for o in outcomes}
    out: dict[str, dict[str, float | None]] = {}
    for o in outcomes:
        row: dict[str, float | None] = {}
        for base in (NODE, NODE_X2, NAIVE, OURS, NOOP, BEFORE):
            ref = by_name.get(base)
            if ref is not None and ref is not o:
                row[f"rps_vs_{base}"] = paired(o, ref, _rps)
                row[f"p99_vs_{base}"] = paired(o, ref, _p99)
                row[f"cpu_per_request_vs_{base}"] = _ratio(o.server_cpu_us, ref.server_cpu_us)
        out[o.target.name] = row
    return out


def publish_table(outcomes: Sequence[Outcome], ratios: dict[str, dict[str, float | None]]) -> str:
    head = (
        f"{'target':<19} {'processes':<9} {'req/s':>6} {'(min-max)':>11} {'p50 ms':>6} {'p99 ms':>6} "
        f"{'vs node':>7} {'vs naive':>8} {'vs ours':>7} {'cpu us/req':>10} {'redis us':>8} {'wrk us':>6} {'busy/steal':>10} "
        f"{'errors':>6} {'stored':>6}"
    )
    lines = [head, "-" * len(head)]
    for o in outcomes:
        r = ratios[o.target.name]
        spread = f"{min(x.load.rps for x in o.rounds):.0f}-{max(x.load.rps for x in o.rounds):.0f}"
        lines.append(
            f"{o.target.name:<19} {o.target.processes:<9} {o.rps:>6.0f} {spread:>11} {o.p50_ms:>6.1f} "
            f"{o.p99_ms:>6.1f} {_x(r.get('rps_vs_' + NODE)):>7} {_x(r.get('rps_vs_' + NAIVE)):>8} "
            f"{_x(r.get('rps_vs_' + OURS)):>7} {o.server_cpu_us:>10.0f} {o.redis_cpu_us:>8.1f} {o.wrk_cpu_us:>6.0f} "
            f"{f'{o.machine_busy:.0%}/{o.steal:.0%}':>10} {o.errors:>6} {'ok' if o.store_ok else 'WRONG':>6}"
        )
    return "\n".join(lines)


def publish_headlines(outcomes: Sequence[Outcome], ratios: dict[str, dict[str, float | None]]) -> list[str]:
    by_name = {o.target.name: o for o in outcomes}
    lines: list[str] = []
    ours = ratios.get(OURS, {})
    for base in (NODE, NODE_X2, NAIVE):
        if OURS in by_name and base in by_name:
            lines.append(
                f"ours / {base}: throughput {_x(ours[f'rps_vs_{base}'])}, p99 latency {_x(ours[f'p99_vs_{base}'])}, "
                f"server CPU per request {_x(ours[f'cpu_per_request_vs_{base}'])}"
            )
    if OURS in by_name and NOOP in by_name:
        lines.append(
            f"full publish path / no-op path (ours / ours-noop): throughput {_x(ours[f'rps_vs_{NOOP}'])}, "
            f"server CPU per request {_x(ours[f'cpu_per_request_vs_{NOOP}'])}"
        )
    if OURS in by_name and BEFORE in by_name:
        lines.append(
            f"ours / ours-before ({by_name[BEFORE].target.summary}): "
            f"throughput {_x(ours[f'rps_vs_{BEFORE}'])}, p99 latency {_x(ours[f'p99_vs_{BEFORE}'])}, "
            f"server CPU per request {_x(ours[f'cpu_per_request_vs_{BEFORE}'])}"
        )
    errors = sum(o.errors for o in outcomes)
    lines.append(f"non-2xx answers and socket errors, all targets and rounds: {errors}")
    for o in outcomes:
        if not o.store_ok:
            lines.append(f"STORE CHECK FAILED for {o.target.name}: see the store check below")
    return lines


def store_checks(outcomes: Sequence[Outcome]) -> list[str]:
    lines = []
    for o in outcomes:
        stored = sum(r.stored for r in o.rounds)
        answered = sum(r.answered_ok for r in o.rounds)
        verdict = "ok" if o.store_ok else "WRONG"
        if o.target.stores:
            extra = ", ".join(str(r.unaccounted) for r in o.rounds)
            bound = o.rounds[0].in_flight_bound if o.rounds else 0
            lines.append(
                f"{o.target.name:<19} entries added {stored:>7}, 2xx answers (warm-up incl.) {answered:>7}; "
                f"difference per round {extra} (in flight when wrk stopped, <= {bound}): {verdict}"
            )
        else:
            lines.append(f"{o.target.name:<19} entries added {stored:>7} (no-op: must be 0): {verdict}")
    return lines


def connection_splits(outcomes: Sequence[Outcome]) -> list[str]:
    """With keep-alive, a connection stays with the worker that accepted it: an uneven split leaves
    one worker (one GIL) with most of the load."""
    lines = []
    for o in outcomes:
        splits = [r.connection_split for r in o.rounds]
        connections = o.rounds[0].in_flight_bound // 2 if o.rounds else 0
        if all(sum(split) < connections // 2 for split in splits):
            lines.append(f"{o.target.name:<19} (a new connection per request: nothing stays with a worker)")
            continue
        lines.append(
            f"{o.target.name:<19} " + "   ".join(f"{'/'.join(map(str, split)) or '?':<11}" for split in splits)
        )
    return lines


def as_json(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    ratios = publish_ratios(outcomes)
    return {"targets": [{**o.as_dict(), "ratios": ratios[o.target.name]} for o in outcomes]}
