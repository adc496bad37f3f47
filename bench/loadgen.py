"""wrk, driven with bench/wrk/publish.lua, and its result."""

from __future__ import annotations

import json
import os
import resource
import subprocess
from dataclasses import dataclass
from pathlib import Path

LUA_SCRIPT = Path(__file__).resolve().parent / "wrk" / "publish.lua"
RESULT_MARK = "BENCH_RESULT "


@dataclass(frozen=True)
class LoadResult:
    requests: int  # responses wrk received (any status)
    duration_s: float
    non_2xx: int  # wrk counts status >= 400 as errors.status
    socket_errors: int  # connect + read + write + timeout
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    wrk_cpu_s: float  # wrk's own CPU: on 2 cores, taken from the server

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "requests": self.requests,
            "duration_s": round(self.duration_s, 3),
            "rps": round(self.rps, 1),
            "non_2xx": self.non_2xx,
            "socket_errors": self.socket_errors,
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "mean_ms": self.mean_ms,
            "max_ms": self.max_ms,
            "wrk_cpu_s": self.wrk_cpu_s,
        }


def wrk_version(wrk: str = "wrk") -> str:
    # `wrk --version` prints its banner and exits 1.
    out = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0].strip()


def run_wrk(url: str, *, body: bytes, secret: str, connections: int, duration_s: int, wrk: str = "wrk") -> LoadResult:
    """One closed-loop wrk run: `connections` keep-alive connections, one thread (2 cores here:
    a second wrk thread would take CPU from the server it measures)."""
    argv = [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{duration_s}s",
        "--timeout",
        "5s",
        "-s",
        str(LUA_SCRIPT),
        url,
    ]
    env = {**os.environ, "BENCH_BODY": body.decode(), "BENCH_SECRET": secret}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=duration_s + 30, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    for line in out.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            raw = json.loads(line[len(RESULT_MARK) :])
            break
    else:
        raise RuntimeError(f"wrk printed no result (exit {out.returncode}):\n{out.stdout}\n{out.stderr}")
    errors, latency = raw["errors"], raw["latency_us"]
    return LoadResult(
        requests=raw["requests"],
        duration_s=raw["duration_us"] / 1e6,
        non_2xx=errors["status"],
        socket_errors=errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        mean_ms=round(latency["mean"] / 1000, 3),
        max_ms=latency["max"] / 1000,
        wrk_cpu_s=round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 3),
    )
