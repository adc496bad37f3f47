"""A small worker to start from: it answers in the channel.

    manage.py run_worker workers.examples.EchoWorker

Give the server user publish access to `echo:*` (a channel rule; SERVER_API_USER, default
"server") and a publication `{"text": "hi"}` by a client in `echo:room1` is answered with
`{"echo": "hi", "to": "<user>", "reply_to": "<entry id>"}` in the same channel.
"""

from __future__ import annotations

import logging
from typing import Any

from workers.sdk import Message, Who, Worker

logger = logging.getLogger("workers.examples")


class EchoWorker(Worker):
    group = "echo"
    channels = ["echo:*"]
    idle_seconds = 30.0

    def on_channel_active(self, channel: str, info: dict[str, Any]) -> None:
        logger.info("channel %s is active", channel)

    def on_message(self, channel: str, message: Message) -> None:
        if message.user == self.server_user or message.binary:
            return  # our own answers come back through the log: never answer them
        body = message.json()
        text = body.get("text") if isinstance(body, dict) else None
        if isinstance(text, str):
            self.publish(channel, {"echo": text, "to": message.user, "reply_to": message.id})

    def on_join(self, channel: str, who: Who) -> None:
        logger.info("%s joined %s", who.user or who.client, channel)

    def on_leave(self, channel: str, who: Who) -> None:
        logger.info("%s left %s (%s)", who.user or who.client, channel, who.reason)

    def on_channel_inactive(self, channel: str, info: dict[str, Any]) -> None:
        logger.info("channel %s is inactive", channel)

    @property
    def server_user(self) -> str:
        from django.conf import settings

        return str(settings.SERVER_API_USER)
