"""The naive publish callback: what a first DRF version of the Node service tends to look like."""

from __future__ import annotations

import base64
import json
import time
import zlib
from typing import Any

import redis
from django.conf import settings
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

redis_client = redis.Redis.from_url(settings.REDIS_URL)


class PublishSerializer(serializers.Serializer[dict[str, Any]]):
    client = serializers.CharField(required=False, allow_blank=True)
    channel = serializers.CharField(max_length=1024)
    user = serializers.CharField(allow_blank=True)
    # The field shadows Serializer.data only in the stubs: DRF's metaclass moves fields out of the class.
    data = serializers.JSONField(required=False)  # type: ignore[assignment]
    b64data = serializers.CharField(required=False)  # the proxy's binary_encoding (centrifugo/config.json)


class PublishView(APIView):
    def post(self, request: Request) -> Response:
        if request.headers.get("X-Centrifugo-Proxy-Secret") != settings.CENTRIFUGO_PROXY_SECRET:
            return Response({"error": {"code": 107, "message": "wrong secret"}}, status=status.HTTP_401_UNAUTHORIZED)
        serializer = PublishSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        publication = serializer.validated_data
        channel = publication["channel"]
        if not publication["user"] or not channel.startswith(("chat:", "public:")):
            return Response({"error": {"code": 103, "message": "permission denied"}})
        partition = zlib.crc32(channel.encode()) % 8
        key = f"rtgw:stream:{{{channel.split(':')[0]}:{partition}}}"
        entry_id = redis_client.xadd(
            key,
            {
                "channel": channel,
                "user": publication["user"],
                "client": publication.get("client", ""),
                "data": base64.b64decode(publication["b64data"])
                if "b64data" in publication
                else json.dumps(publication.get("data")),
                "ts": str(int(time.time() * 1000)),
            },
            maxlen=100_000,
            approximate=True,
        )
        stream_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        return Response({"result": {"tags": {"stream": key, "stream_id": stream_id, "partition": str(partition)}}})
