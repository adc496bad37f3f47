"""A throwaway PostgreSQL server for the cluster: initdb once into a folder, then `postgres` in the
foreground on a loopback port, as an unprivileged user when we are root (PostgreSQL refuses to run
as root). Password authentication over TCP, like the compose file's postgres service.

That user must reach its files. Run as root from a checkout under /root (mode 0700) or inside a
`mktemp -d` folder, it cannot traverse the parents of `folder`; the files then live in a folder
of their own under /var/tmp (sticky, world-traversable), named after `folder` so a restart finds
them again, and `folder/LOCATION` says where."""

from __future__ import annotations

import hashlib
import os
import pwd
import secrets
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path

from devcluster.procs import Process, wait_for

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
USER = DATABASE = "gateway"
FALLBACK_ROOT = Path("/var/tmp")  # noqa: S108 - a fixed, sticky, world-traversable parent on purpose (see above)


def _run_as() -> pwd.struct_passwd | None:
    """Who runs PostgreSQL: None for ourselves, else the Debian `postgres` user (or `nobody`)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root, and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL")


def _fallback_for(folder: Path) -> Path:
    return FALLBACK_ROOT / f"rtgw-postgres-{hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]}"


class Postgres:
    """`folder` holds the data directory and the generated password; both survive restarts."""

    def __init__(self, folder: Path, *, port: int, log: Path) -> None:
        self.folder, self.port, self.log = folder, port, log
        self.user = _run_as()
        self.process: Process | None = None
        fallback = _fallback_for(folder)
        # Where the data directory and password file live: `folder`, unless an earlier run had to
        # move them (see the module's docstring).
        self.home = fallback if (fallback / "password").exists() else folder
        self.relocated_from: Path | None = None

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def password_file(self) -> Path:
        return self.home / "password"

    def _reachable(self, path: Path) -> bool:
        """Whether PostgreSQL's user can write `path` (which takes search rights on every parent)."""
        if self.user is None:
            return True
        return subprocess.run(self._as_user(["test", "-w", str(path)]), check=False).returncode == 0

    def _choose_home(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            os.chown(self.folder, self.user.pw_uid, self.user.pw_gid)
        if self._reachable(self.folder):
            self.home = self.folder
            return
        fallback = _fallback_for(self.folder)
        fallback.mkdir(mode=0o700, exist_ok=True)
        assert self.user is not None
        os.chown(fallback, self.user.pw_uid, self.user.pw_gid)
        self.home, self.relocated_from = fallback, self.folder
        (self.folder / "LOCATION").write_text(
            f"PostgreSQL's files are in {fallback}: user {self.user.pw_name!r} cannot traverse the folders above "
            f"{self.folder}. Delete both folders to start afresh.\n"
        )

    def _as_user(self, argv: list[str]) -> list[str]:
        if self.user is None:
            return argv
        # setpriv execs (no intermediate process), so signals reach the postmaster itself.
        name = self.user.pw_name
        return ["setpriv", f"--reuid={name}", f"--regid={self.user.pw_gid}", "--init-groups", "--", *argv]

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    def url(self, database: str = DATABASE) -> str:
        return f"postgres://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def initdb(self, env: Mapping[str, str]) -> bool:
        """Creates the data directory on first use; False when it already existed."""
        if (self.data / "PG_VERSION").exists():
            return False
        self._choose_home()
        pwfile = self.password_file
        pwfile.write_text(secrets.token_urlsafe(24) + "\n")
        pwfile.chmod(0o600)
        if self.user is not None:
            os.chown(pwfile, self.user.pw_uid, self.user.pw_gid)
        argv = [
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}",
            "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync",
        ]  # fmt: skip
        result = subprocess.run(self._as_user(argv), env=dict(env), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{result.stdout}{result.stderr}")
        return True

    def start(self, env: Mapping[str, str]) -> None:
        # TCP on loopback only, no Unix socket (its default folder belongs to the system's server).
        # fsync off: a throwaway cluster trades crash safety of the host for speed.
        argv = [
            str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "fsync=off",
        ]  # fmt: skip
        self.process = Process(self._as_user(argv), env=env, log=self.log)

    def wait_ready(self, *, timeout: float) -> None:
        import psycopg

        def ready() -> bool:
            assert self.process is not None
            if not self.process.alive():
                raise RuntimeError(f"PostgreSQL exited\n--- log ---\n{self.process.tail()}")
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=1).close()
            except psycopg.OperationalError:
                return False
            return True

        wait_for(ready, timeout=timeout, what=f"PostgreSQL on port {self.port}", interval=0.1)

    def create_database(self) -> bool:
        """CREATE DATABASE gateway unless it exists; True when it was created."""
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
                return False
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
            return True

    def signal_stop(self) -> None:
        """SIGINT is PostgreSQL's fast shutdown: it ends open sessions instead of waiting for them."""
        if self.process is not None and self.process.alive():
            self.process.popen.send_signal(signal.SIGINT)

    def stop(self) -> None:
        if self.process is not None:
            self.signal_stop()
            self.process.stop(timeout=20)
