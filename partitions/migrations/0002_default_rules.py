"""The rules a new gateway ships with; operators change them in the admin.

public:*  anyone (anonymous too) may subscribe, authenticated users may publish
chat:*    authenticated users may subscribe and publish
Anything else matches no rule and is denied.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

CHANNEL_RULES = [
    {"pattern": "public:*", "priority": 100, "subscribe_access": "anyone", "publish_access": "authenticated",
     "description": "Public broadcast: anyone reads, signed-in users write."},
    {"pattern": "chat:*", "priority": 100, "subscribe_access": "authenticated", "publish_access": "authenticated",
     "description": "Chat rooms for signed-in users."},
]
PARTITION_RULES = [
    {"pattern": "public:*", "stream": "public", "partitions": 8, "key": "channel", "max_length": 100_000},
    {"pattern": "chat:*", "stream": "chat", "partitions": 8, "key": "channel", "max_length": 100_000},
]


def forwards(apps: Any, schema_editor: Any) -> None:
    ChannelRule = apps.get_model("partitions", "ChannelRule")
    PartitionRule = apps.get_model("partitions", "PartitionRule")
    RuleSetVersion = apps.get_model("partitions", "RuleSetVersion")
    for row in CHANNEL_RULES:
        ChannelRule.objects.get_or_create(pattern=row["pattern"], defaults=row)
    for row in PARTITION_RULES:
        PartitionRule.objects.get_or_create(pattern=row["pattern"], defaults=row)
    RuleSetVersion.objects.get_or_create(pk=1, defaults={"version": 1})


def backwards(apps: Any, schema_editor: Any) -> None:
    apps.get_model("partitions", "ChannelRule").objects.filter(pattern__in=[r["pattern"] for r in CHANNEL_RULES]).delete()
    apps.get_model("partitions", "PartitionRule").objects.filter(pattern__in=[r["pattern"] for r in PARTITION_RULES]).delete()


class Migration(migrations.Migration):
    dependencies = [("partitions", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
