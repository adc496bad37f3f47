"""A channel-rule setting is declared once (partitions.models.CHANNEL_RULE_FIELDS): the admin form,
the rules file (export and import) and the compiled rule all follow that one line (issue 10, item 1)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from partitions import models, services
from partitions.rules import Action
from partitions.rules_io import RulesFileError, rules_dump, rules_import
from partitions.selectors import ruleset_load

pytestmark = pytest.mark.django_db

# The shipped declaration without `description`: as if that column had just been added to the model.
WITHOUT = tuple(f for f in models.CHANNEL_RULE_FIELDS if f.name != "description")
# ...and the one line that declares it: its own admin section, its own group in a rules file, and
# carried into the compiled rule.
NOTE = models.RuleField("description", "Notes", "notes", "text", missing="", omit=("",), compiled=True)
GROUPS = {**models.CHANNEL_RULE_GROUPS, "notes": "{text: ...}"}


def _admin_form(client: Client) -> str:
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw-for-tests-only"))
    return client.get("/admin/partitions/channelrule/add/").content.decode()


def _rule_and_decision() -> tuple[dict[str, object], object]:
    services.rule_save(rule=models.ChannelRule(pattern="notes:*", description="hello"), actor="test")
    dumped = next(r for r in rules_dump()["channel_rules"] if r["pattern"] == "notes:*")
    decision = ruleset_load().decide(Action.SUBSCRIBE, channel="notes:1", user="42", roles=())
    return dumped, decision.rule


def test_issue10_item1_an_undeclared_field_is_nowhere(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "CHANNEL_RULE_FIELDS", WITHOUT)
    assert 'name="description"' not in _admin_form(client)
    dumped, rule = _rule_and_decision()
    assert "description" not in dumped
    assert "description" not in rule.options  # type: ignore[attr-defined]
    with pytest.raises(RulesFileError, match=r"unknown key\(s\) description"):
        rules_import({"channel_rules": [{"pattern": "notes:*", "description": "x"}]}, actor="test")


def test_issue10_item1_a_channel_rule_field_is_one_declaration(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "CHANNEL_RULE_FIELDS", (*WITHOUT, NOTE))
    monkeypatch.setattr(models, "CHANNEL_RULE_GROUPS", GROUPS)
    form = _admin_form(client)
    assert 'name="description"' in form
    assert "Notes</h2>" in form  # its own fieldset
    dumped, rule = _rule_and_decision()
    assert dumped["notes"] == {"text": "hello"}  # exported where the declaration puts it
    assert rule.options["description"] == "hello"  # type: ignore[attr-defined]  # in the compiled rule
    rules_import({"channel_rules": [{**dumped, "notes": {"text": "changed"}}]}, actor="test")  # and back
    assert models.ChannelRule.objects.get(pattern="notes:*").description == "changed"
    assert next(r for r in rules_dump()["channel_rules"] if r["pattern"] == "notes:*") == {
        **dumped,
        "notes": {"text": "changed"},
    }
