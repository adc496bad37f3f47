"""PostgreSQL's files must be reachable by the user it runs as, wherever the checkout is."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from devcluster.postgres import Postgres
from tests.support.procs import free_port


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user")
def test_issue9_item16_initdb_works_below_a_folder_postgres_cannot_traverse() -> None:
    private = Path(tempfile.mkdtemp(prefix="private-checkout-"))  # 0700 root, like /root or `mktemp -d`
    assert private.stat().st_mode & 0o777 == 0o700
    folder = private / "var" / "cluster" / "pg"
    postgres = Postgres(folder, port=free_port(), log=private / "postgres.log")
    try:
        assert postgres.initdb(dict(os.environ)) is True
        assert postgres.relocated_from == folder
        assert postgres.data.parent.parent == Path("/var/tmp")
        assert str(postgres.home) in (folder / "LOCATION").read_text()
        postgres.start(dict(os.environ))
        postgres.wait_ready(timeout=60)
        assert postgres.create_database() is True
        postgres.stop()
        # A second run from the same folder finds the same files (and password) again.
        again = Postgres(folder, port=free_port(), log=private / "postgres2.log")
        assert again.data == postgres.data
        assert again.initdb(dict(os.environ)) is False
        assert again.password == postgres.password
    finally:
        postgres.stop()
        shutil.rmtree(postgres.home, ignore_errors=True)
        shutil.rmtree(private, ignore_errors=True)
