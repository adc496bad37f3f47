"""Starting and stopping the processes a benchmark loads: each in its own process group, with a pid
file in BENCH_RUN_DIR so scripts/bench.sh can still stop it if this Python process dies first."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, *, timeout: float, proc: subprocess.Popen[bytes] | None = None, connects: int = 16
) -> None:
    """Until `connects` fresh connections in a row are accepted. One is not enough: with
    SO_REUSEPORT (gunicorn --reuse-port, granian) each worker has its own listening socket, and a
    connection hashed to a worker still booting is refused."""
    deadline = time.monotonic() + timeout
    accepted = 0
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on port {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                accepted += 1
            if accepted >= connects:
                return
        except OSError:
            accepted = 0
            time.sleep(0.05)
    raise RuntimeError(f"127.0.0.1:{port} does not accept connections steadily after {timeout:.0f} s")


@dataclass
class Server:
    """One server process (and its children: gunicorn workers, node cluster workers)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    log_dir: Path
    run_dir: Path
    cwd: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    @property
    def pid_path(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    def start(self, *, ready_timeout: float = 30.0) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            # A new session makes the server its own process-group leader: one signal reaches it
            # and every worker it forked, and the terminal's Ctrl-C reaches only us (we clean up).
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        # Line 2 lets scripts/bench.sh check the pid still is ours before it signals the group.
        self.pid_path.write_text(f"{self.proc.pid}\n{Path(self.argv[0]).name}\n", encoding="utf-8")
        try:
            wait_for_port(self.port, timeout=ready_timeout, proc=self.proc)
        except RuntimeError as exc:
            self.stop()
            tail = self.log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
            raise RuntimeError(f"{self.name}: {exc}\n--- {self.log_path} (end) ---\n{tail}") from exc

    def stop(self, *, timeout: float = 10.0) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout)
        # Workers that outlived their master (they should not) go with the group.
        _signal_group(proc.pid, signal.SIGKILL)
        self.pid_path.unlink(missing_ok=True)
        self.proc = None

    def cpu_seconds(self) -> float:
        return group_cpu_seconds(self.proc.pid) if self.proc is not None else 0.0


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU time of the live processes in a process group (a server and its workers)."""
    ticks = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        # After "(comm) ": state ppid pgrp ... utime (14th field) stime (15th).
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / _CLOCK_TICKS


@dataclass(frozen=True)
class CpuTicks:
    """Jiffies over all CPUs since boot, from /proc/stat."""

    busy: int
    steal: int  # time the hypervisor gave to someone else: a noisy neighbour, not us
    total: int

    @classmethod
    def now(cls) -> CpuTicks:
        values = [int(v) for v in Path("/proc/stat").read_text(encoding="ascii").splitlines()[0].split()[1:]]
        idle = values[3] + values[4]  # idle + iowait
        total = sum(values[:8])  # guest time is already counted in user
        return cls(busy=total - idle - values[7], steal=values[7], total=total)

    def share_since(self, earlier: CpuTicks) -> tuple[float, float]:
        """(busy, steal) as fractions of the time elapsed since `earlier`."""
        total = max(self.total - earlier.total, 1)
        return (self.busy - earlier.busy) / total, (self.steal - earlier.steal) / total


def connections_per_process(port: int) -> list[int]:
    """Established connections to `port`, counted per process that holds them, most first: how a
    server's workers split the load generator's keep-alive connections (empty if `ss` is missing)."""
    try:
        out = subprocess.run(
            ["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
    except OSError:
        return []
    counts: dict[str, int] = {}
    for line in out.splitlines():
        pids = set(re.findall(r"pid=(\d+)", line))
        for pid in pids:
            counts[pid] = counts.get(pid, 0) + 1
    return sorted(counts.values(), reverse=True)
