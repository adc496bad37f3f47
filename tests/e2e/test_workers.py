"""The worker SDK through the real parts: a client publishes through Centrifugo, the publication is
stored by the callbacks, a `manage.py run_worker` process (the example EchoWorker) reads it from the
log and answers with Worker.publish, and Centrifugo delivers the answer to the client."""

from __future__ import annotations

import asyncio
import sys

import pytest

from tests.e2e import clients
from tests.support.gateway import Gateway
from tests.support.procs import ROOT, Process

pytestmark = pytest.mark.e2e


def test_issue12_item1_the_example_worker_answers_a_real_client_in_its_channel(gateway: Gateway) -> None:
    token = gateway.token("alice")
    worker = Process(
        [sys.executable, "manage.py", "run_worker", "workers.tests.recording.ChatEcho", "--name", "echo-1"],
        env={**gateway.env, "REDIS_URL": gateway.redis_url}, log=gateway.var_dir / "worker.log", cwd=ROOT,
    )  # fmt: skip

    async def scenario() -> list[tuple[object, dict[str, str]]]:
        client = await clients.connected(gateway.ws_url, token=token)
        _, events = await clients.subscribed(client, "chat:echo1")
        await client.publish("chat:echo1", {"text": "hi"})
        got = []
        while len(got) < 2:  # her own publication, then the answer
            pub = await asyncio.wait_for(events.publications.get(), 30)
            got.append((pub.data, dict(pub.tags)))
        await asyncio.sleep(0.5)  # the worker must not answer its own answer
        assert events.publications.empty()
        await client.disconnect()
        return got

    try:
        (mine, mine_tags), (answer, answer_tags) = asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        code = worker.stop()
    assert code == 0, worker.tail()
    assert mine == {"text": "hi"}
    assert answer == {"echo": "hi", "to": "alice", "reply_to": mine_tags["stream_id"]}
    assert answer_tags["stream_id"] != mine_tags["stream_id"]  # the answer is in the log too
    assert "handled 2" in worker.tail()  # the question, and its own answer (read, not answered)
