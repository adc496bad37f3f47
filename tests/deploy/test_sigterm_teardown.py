"""A test run ended by SIGTERM (scripts/test-latest.sh's `timeout`, a CI runner's cancel) stops the
processes its fixtures started: conftest.py turns SIGTERM into a KeyboardInterrupt, so the session
fixtures' teardown runs. Before, every timed-out `make test-latest` left its Redis servers running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
PROBE = """
import os, time

def test_waits(redis_server):
    print("REDIS_PID", redis_server[0].popen.pid, flush=True)
    time.sleep(60)
"""


def test_sigterm_still_stops_the_redis_server_a_session_fixture_started() -> None:
    probe = ROOT / "tests" / f"test_zz_sigterm_probe_{os.getpid()}.py"
    probe.write_text(PROBE)
    try:
        run = subprocess.Popen(
            [sys.executable, "-m", "pytest", str(probe), "-q", "-s", "-p", "no:randomly", "-p", "no:cacheprovider"],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "realtime.settings.test"},
        )  # fmt: skip
        assert run.stdout is not None
        pid = 0
        for line in run.stdout:
            if line.startswith("REDIS_PID"):
                pid = int(line.split()[1])
                break
        assert pid, "the probe never started its redis-server"
        run.send_signal(signal.SIGTERM)
        run.communicate(timeout=60)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.1)
        assert not Path(f"/proc/{pid}").exists(), "the fixture's redis-server outlived the SIGTERMed run"
    finally:
        probe.unlink(missing_ok=True)
