from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.gateway import Gateway


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = Gateway(var_dir=tmp_path_factory.mktemp("gateway")).start()
    yield gw
    gw.stop()
