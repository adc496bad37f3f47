from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.procs import ROOT, wait_for


def test_a_fatal_program_stops_supervisord(tmp_path: Path) -> None:
    """A real supervisord with one program that always fails at once: it goes FATAL after its
    retries, and the listener stops supervisord instead of leaving it running."""
    conf = tmp_path / "supervisord.conf"
    conf.write_text(
        f"""
[supervisord]
nodaemon=true
logfile={tmp_path}/supervisord.log
pidfile={tmp_path}/supervisord.pid
[program:broken]
command=false
startretries=1
startsecs=1
[eventlistener:exit_on_fatal]
command={sys.executable} -m realtime.supervisor_events
directory={ROOT}
events=PROCESS_STATE_FATAL
stderr_logfile={tmp_path}/listener.log
"""
    )
    started = time.monotonic()
    proc = subprocess.Popen([str(ROOT / ".venv/bin/supervisord"), "-c", str(conf)], start_new_session=True)
    try:
        wait_for(lambda: proc.poll() is not None, timeout=30, what="supervisord to stop after the FATAL")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert time.monotonic() - started < 30
    assert "program broken is FATAL; stopping supervisord" in (tmp_path / "listener.log").read_text()
