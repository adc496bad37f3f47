from __future__ import annotations

import io

import pytest
import yaml
from django.core.management import CommandError, call_command

from partitions import models
from partitions.rules_io import RulesFileError, rules_dump, rules_import

pytestmark = pytest.mark.django_db

DOC = {
    "channel_rules": [
        {
            "pattern": "orders:*",
            "priority": 50,
            "subscribe": {"access": "roles", "roles": ["ops"]},
            "publish": {"access": "users", "users": [7, "alice"]},
            "max_payload_bytes": 2048,
            "publish_schema": {"type": "object", "required": ["sku"]},
            "publish_rate_limit": {"count": 5, "per_seconds": 10},
            "subscription": {"presence": True, "join_leave": False},
        }
    ],
    "partition_rules": [
        {"pattern": "orders:*", "stream": "orders", "partitions": 4, "key": "user", "max_age_seconds": 3600}
    ],
}


def test_import_then_export_round_trips() -> None:
    plan = rules_import(DOC, actor="test")
    assert plan.changes == ["create channel rule 'orders:*'", "create partition rule 'orders:*'"]
    exported = rules_dump()
    [orders] = [r for r in exported["channel_rules"] if r["pattern"] == "orders:*"]
    assert orders == {
        "enabled": True,
        **DOC["channel_rules"][0],
        "publish": {"access": "users", "users": ["7", "alice"]},
    }
    assert rules_import(exported, actor="test").changes == []  # idempotent


def test_an_import_with_one_bad_rule_changes_nothing_and_names_it() -> None:
    bad = {"channel_rules": [DOC["channel_rules"][0], {"pattern": "x:*", "publish": {"access": "owner"}}]}
    before = list(models.ChannelRule.objects.values_list("pattern", flat=True))
    with pytest.raises(
        RulesFileError, match=r"channel_rules\[1\] \(channel rule 'x:\*'\): publish_access: 'owner' needs"
    ):
        rules_import(bad, actor="test")
    assert list(models.ChannelRule.objects.values_list("pattern", flat=True)) == before
    assert not models.RuleChange.objects.exists()


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([1], "the file must be a mapping"),
        ({"channel_rules": [{"pattern": "a:*", "colour": "red"}]}, r"channel_rules\[0\]: unknown key\(s\) colour"),
        (
            {"channel_rules": [{"pattern": "a:*", "publish_schema": {"type": "nope"}}]},
            "publish_schema: Not a valid JSON Schema",
        ),
        ({"channel_rules": [{"pattern": "bad pattern"}]}, "a pattern cannot contain spaces"),
        ({"channel_rules": [{"pattern": "a:*"}, {"pattern": "a:*"}]}, "appears twice"),
        (
            {"partition_rules": [{"pattern": "a:*", "stream": "s", "partitions": 0}]},
            "partitions: Ensure this value is greater than or equal to 1",
        ),
        ({"channel_rules": [{"pattern": "a:*", "publish_rate_limit": 5}]}, r"must be \{count: N, per_seconds: S\}"),
    ],
)
def test_bad_documents_are_refused_precisely(doc: object, message: str) -> None:
    with pytest.raises(RulesFileError, match=message):
        rules_import(doc, actor="test")


def test_dry_run_reports_and_changes_nothing() -> None:
    plan = rules_import(DOC, actor="test", dry_run=True)
    assert len(plan.changes) == 2
    assert not models.ChannelRule.objects.filter(pattern="orders:*").exists()


def test_prune_deletes_rules_the_file_omits() -> None:
    plan = rules_import({"channel_rules": DOC["channel_rules"]}, actor="test", prune=True)
    assert set(models.ChannelRule.objects.values_list("pattern", flat=True)) == {"orders:*"}
    assert "delete channel rule 'chat:*'" in plan.changes
    assert models.PartitionRule.objects.count() == 2  # a section the file leaves out is left alone


def test_the_commands(tmp_path: object) -> None:
    path = tmp_path / "rules.yaml"  # type: ignore[operator]
    path.write_text(yaml.safe_dump(DOC))
    out = io.StringIO()
    call_command("import_rules", str(path), "--dry-run", stdout=out)
    assert out.getvalue().splitlines()[-1] == "2 rule(s) would change"
    call_command("import_rules", str(path), stdout=io.StringIO())
    out = io.StringIO()
    call_command("export_rules", stdout=out)
    assert "orders:*" in out.getvalue()
    with pytest.raises(CommandError, match=r"cannot read .*missing\.yaml: No such file"):
        call_command("import_rules", str(path).replace("rules.yaml", "missing.yaml"))


def test_issue9_item5b_allow_binary_round_trips_and_is_validated() -> None:
    doc = {"channel_rules": [{"pattern": "bin:*", "publish": {"access": "anyone"}, "allow_binary": True}]}
    rules_import(doc, actor="test")
    assert models.ChannelRule.objects.get(pattern="bin:*").allow_binary is True
    [exported] = [r for r in rules_dump()["channel_rules"] if r["pattern"] == "bin:*"]
    assert exported["allow_binary"] is True
    with pytest.raises(RulesFileError, match="allow_binary: must be true or false"):
        rules_import({"channel_rules": [{"pattern": "bin:*", "allow_binary": "yes"}]}, actor="test")
    with pytest.raises(RulesFileError, match="Binary data cannot match a JSON Schema"):
        rules_import(
            {"channel_rules": [{"pattern": "bin:*", "allow_binary": True, "publish_schema": {"type": "object"}}]},
            actor="test",
        )
