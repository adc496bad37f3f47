"""A supervisord event listener: when a program gives up (FATAL: it kept exiting right after
start), stop supervisord, so the container exits and its restart policy (or the operator running
`make run`) sees the failure, instead of a half-working gateway that only looks unhealthy.

supervisord.conf: [eventlistener:exit_on_fatal] command=python -m realtime.supervisor_events
"""

from __future__ import annotations

import os
import signal
import sys


def main() -> None:
    # supervisord stops its listeners with SIGTERM like any program: exit quietly and cleanly.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    while True:
        sys.stdout.write("READY\n")
        sys.stdout.flush()
        header = dict(token.split(":", 1) for token in sys.stdin.readline().split())
        payload = sys.stdin.read(int(header.get("len", "0")))
        if header.get("eventname") == "PROCESS_STATE_FATAL":
            fields = dict(token.split(":", 1) for token in payload.split())
            sys.stderr.write(
                f"exit_on_fatal: program {fields.get('processname', '?')} is FATAL; stopping supervisord\n"
            )
            sys.stderr.flush()
            os.kill(os.getppid(), signal.SIGTERM)
        sys.stdout.write("RESULT 2\nOK")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
