"""Set-up on a machine that just booted: another apt/dpkg process may hold the package lock
(unattended-upgrades, cloud-init). scripts/lib.sh's apt_get waits for it, bounded, and says so."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.deploy.conftest import clean_env
from tests.support.procs import ROOT

LOCKS = ("/var/lib/dpkg/lock-frontend", "/var/lib/apt/lists/lock")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("apt-get") is None, reason="needs root and apt-get (as set-up does)"
)


@contextmanager
def apt_lock_held_for(seconds: float) -> Iterator[None]:
    """Another process holds apt's and dpkg's locks (POSIX record locks, as apt takes them)."""
    holder = subprocess.Popen(
        ["python3", "-c", (
            "import fcntl, sys, time\n"
            "files = [open(p, 'a') for p in sys.argv[2:]]\n"
            "[fcntl.lockf(f, fcntl.LOCK_EX) for f in files]\n"
            "print('held', flush=True)\n"
            "time.sleep(float(sys.argv[1]))\n"
        ), str(seconds), *LOCKS],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with open(LOCKS[0], "a") as probe, pytest.raises(OSError):  # the lock really is taken
            fcntl.lockf(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        holder.kill()
        holder.wait()


def apt_get(*args: str, wait: int) -> subprocess.CompletedProcess[str]:
    script = f'source "{ROOT}/scripts/lib.sh"; apt_get "$@"'
    env = {**clean_env(), "APT_LOCK_WAIT": str(wait)}
    return subprocess.run(
        ["bash", "-c", script, "apt_get", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_issue9_item15_apt_get_waits_for_a_held_lock_and_says_so() -> None:
    # `install` of a package that is already installed: takes dpkg's lock, needs no network.
    with apt_lock_held_for(4):
        started = time.monotonic()
        result = apt_get("install", "-y", "-qq", "--no-install-recommends", "bash", wait=60)
        took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert took >= 3, f"it did not wait for the lock ({took:.1f} s)"
    assert "holds the package lock; waiting up to 60 s" in result.stderr
    assert result.stderr.count("waiting up to") == 1  # said once, not once per retry


def test_issue9_item15_apt_get_gives_up_after_the_bound_with_a_clear_message() -> None:
    with apt_lock_held_for(30):
        result = apt_get("install", "-y", "-qq", "--no-install-recommends", "bash", wait=2)
    assert result.returncode != 0
    assert "still holds the package lock after 2 s" in result.stderr
    assert "APT_LOCK_WAIT" in result.stderr
