"""centrifuge-python clients that record what happens to them, for asserting in tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from centrifuge import (
    Client,
    ClientEventHandler,
    ConnectedContext,
    DisconnectedContext,
    PublicationContext,
    Subscription,
    SubscriptionEventHandler,
    UnsubscribedContext,
)
from centrifuge.types import Publication


@dataclass
class ClientEvents(ClientEventHandler):
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    disconnected: asyncio.Future[DisconnectedContext] = field(default_factory=asyncio.Future)

    async def on_connected(self, ctx: ConnectedContext) -> None:
        self.connected.set()

    async def on_disconnected(self, ctx: DisconnectedContext) -> None:
        if not self.disconnected.done():
            self.disconnected.set_result(ctx)


@dataclass
class SubEvents(SubscriptionEventHandler):
    publications: asyncio.Queue[Publication] = field(default_factory=asyncio.Queue)
    unsubscribed: asyncio.Future[UnsubscribedContext] = field(default_factory=asyncio.Future)

    async def on_publication(self, ctx: PublicationContext) -> None:
        await self.publications.put(ctx.pub)

    async def on_unsubscribed(self, ctx: UnsubscribedContext) -> None:
        if not self.unsubscribed.done():
            self.unsubscribed.set_result(ctx)


def make_client(url: str, *, token: str = "", data: Any = None, protobuf: bool = False) -> tuple[Client, ClientEvents]:
    """protobuf: the client speaks Centrifugo's protobuf protocol (payloads are bytes)."""
    events = ClientEvents()
    client = Client(url, events=events, token=token, data=data, max_reconnect_delay=1.0, use_protobuf=protobuf)
    return client, events


async def connected(url: str, *, token: str = "", data: Any = None, protobuf: bool = False) -> Client:
    client, events = make_client(url, token=token, data=data, protobuf=protobuf)
    await client.connect()
    await asyncio.wait_for(events.connected.wait(), 10)
    return client


async def subscribed(client: Client, channel: str) -> tuple[Subscription, SubEvents]:
    events = SubEvents()
    sub = client.new_subscription(channel, events)
    await sub.subscribe()
    await sub.ready(timeout=10)
    return sub, events


async def subscribe_refused(client: Client, channel: str) -> UnsubscribedContext:
    events = SubEvents()
    sub = client.new_subscription(channel, events)
    await sub.subscribe()
    return await asyncio.wait_for(events.unsubscribed, 10)


async def connect_refused(url: str, *, token: str = "", data: Any = None) -> DisconnectedContext:
    client, events = make_client(url, token=token, data=data)
    await client.connect()
    try:
        return await asyncio.wait_for(events.disconnected, 10)
    finally:
        await client.disconnect()


async def try_subscribe(client: Client, channel: str) -> tuple[bool, SubEvents]:
    """(subscribed?, events): waits for whichever comes first, the subscription or its refusal."""
    events = SubEvents()
    sub = client.new_subscription(channel, events)
    await sub.subscribe()
    ready = asyncio.ensure_future(sub.ready(timeout=10))
    await asyncio.wait([ready, events.unsubscribed], return_when=asyncio.FIRST_COMPLETED)
    await asyncio.gather(ready, return_exceptions=True)
    return not events.unsubscribed.done(), events
