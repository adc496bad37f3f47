"""Rules that operators edit in the admin. Callbacks never read these tables per request: the
compiled copy in `partitions.store` is reloaded when `RuleSetVersion` changes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from partitions.patterns import Pattern, PatternError
from partitions.rules import Access, PartitionKey, split_ids

ACCESS_CHOICES = [(a.value, a.value.capitalize()) for a in Access]
ID_LIST_HELP = "Separated by commas or spaces; used when access is 'users' or 'roles'."


def schema_problem(schema: object) -> str | None:
    from jsonschema import Draft202012Validator, SchemaError

    if not isinstance(schema, dict | bool):
        return "a schema is an object (or true/false)"
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return exc.message
    return None


def validate_pattern(value: str) -> None:
    try:
        Pattern.parse(value)
    except PatternError as exc:
        raise ValidationError(str(exc)) from None


KEEP = object()  # RuleField.missing: an import leaves the rule's value as it is


@dataclass(frozen=True, slots=True)
class RuleField:
    """One setting of a channel rule, declared once: the admin form and its fieldsets, the rules
    file (partitions.rules_io: export and import) and the compiled rule (partitions.selectors)
    all read CHANNEL_RULE_FIELDS. A new field is a model field plus one line there."""

    name: str  # the model field
    section: str = ""  # the admin fieldset ("": the first, untitled one)
    group: str = ""  # the mapping it sits in, in a rules file ("": the rule itself)
    key: str = ""  # its key there (default: the field's name)
    missing: Any = KEEP  # what an import sets when the key is absent
    omit: tuple[Any, ...] = ()  # values an export leaves out
    needs: str = ""  # exported only when this other field is
    ids: bool = False  # a list of ids in a rules file, comma-separated text in the model
    required: bool = False  # its group, when given, must have it
    compiled: bool = False  # copied as it is into the compiled rule's `options`

    @property
    def file_key(self) -> str:
        return self.key or self.name


_SUB = "Subscribe"
_OPTIONS = "Subscription options (empty: Centrifugo's default)"
_PUB = "Publish"
_CHECKS = "Publication checks"
_WORKERS = "Backend workers"
_OVERRIDE: dict[str, Any] = {"section": _OPTIONS, "group": "subscription", "missing": None, "omit": (None,)}

CHANNEL_RULE_FIELDS: tuple[RuleField, ...] = (
    RuleField("pattern"),
    RuleField("priority"),
    RuleField("enabled"),
    RuleField("description", missing="", omit=("",)),
    RuleField("subscribe_access", _SUB, "subscribe", "access", missing="nobody"),
    RuleField("subscribe_users", _SUB, "subscribe", "users", missing="", ids=True),
    RuleField("subscribe_roles", _SUB, "subscribe", "roles", missing="", ids=True),
    RuleField("presence", **_OVERRIDE),
    RuleField("join_leave", **_OVERRIDE),
    RuleField("force_push_join_leave", **_OVERRIDE),
    RuleField("force_recovery", **_OVERRIDE),
    RuleField("force_positioning", **_OVERRIDE),
    RuleField("publish_access", _PUB, "publish", "access", missing="nobody"),
    RuleField("publish_users", _PUB, "publish", "users", missing="", ids=True),
    RuleField("publish_roles", _PUB, "publish", "roles", missing="", ids=True),
    RuleField("max_payload_bytes", _CHECKS, missing=None, omit=(None,)),
    RuleField("publish_schema", _CHECKS, missing=None, omit=(None,)),
    RuleField("allow_binary", _CHECKS, missing=False, omit=(False,)),
    RuleField("publish_rate_limit", _CHECKS, "publish_rate_limit", "count", None, (None, 0), required=True),
    RuleField("publish_rate_window", _CHECKS, "publish_rate_limit", "per_seconds", 60, needs="publish_rate_limit"),
    RuleField("log_join_leave", _WORKERS, "workers", "join_leave", False, (False,), compiled=True),
    RuleField("enrich", _WORKERS, "workers", "enrich", False, (False,), compiled=True),
)
# How a rules file writes each group of fields (for the error that names a malformed one).
CHANNEL_RULE_GROUPS = {
    "subscribe": "{access: authenticated}",
    "publish": "{access: authenticated}",
    "subscription": "{presence: true}",
    "publish_rate_limit": "{count: N, per_seconds: S}",
    "workers": "{join_leave: true, enrich: true}",
}


class ChannelRule(models.Model):
    pattern = models.CharField(
        max_length=255,
        unique=True,
        validators=[validate_pattern],
        help_text="Full channel name, `*` for any run of characters, `{user}` for the owner's id: "
        "chat:*, orders:eu:*, inbox:{user}, news:global",
    )
    priority = models.IntegerField(default=100, help_text="Lower is checked first; the first enabled match decides.")
    enabled = models.BooleanField(default=True)
    description = models.CharField(max_length=255, blank=True)
    subscribe_access = models.CharField(max_length=16, choices=ACCESS_CHOICES, default=Access.AUTHENTICATED)
    subscribe_users = models.TextField(blank=True, help_text=ID_LIST_HELP)
    subscribe_roles = models.TextField(blank=True, help_text=ID_LIST_HELP)
    publish_access = models.CharField(max_length=16, choices=ACCESS_CHOICES, default=Access.AUTHENTICATED)
    publish_users = models.TextField(blank=True, help_text=ID_LIST_HELP)
    publish_roles = models.TextField(blank=True, help_text=ID_LIST_HELP)
    max_payload_bytes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Reject publications whose data is larger than this."
    )
    publish_schema = models.JSONField(
        null=True, blank=True, help_text="A JSON Schema (draft 2020-12) the publication data must satisfy."
    )
    allow_binary = models.BooleanField(
        default=False,
        help_text="Accept publications that are not JSON (stored with enc=binary, delivered byte for byte). "
        "Subscribe to such channels with protobuf clients only: a JSON client cannot receive raw bytes.",
    )
    log_join_leave = models.BooleanField(
        default=False,
        help_text="Write a join entry to the message log when a client subscribes, and a leave entry when it "
        "is gone (unsubscribe, disconnect, network cut), ordered with the channel's messages, for backend "
        "workers. Costs a Redis write per subscribe.",
    )
    enrich = models.BooleanField(
        default=False,
        help_text='Subscribers receive the client\'s payload under "data" together with server-set fields the '
        "client cannot forge: the sender's user id and name, the server time and the log entry id.",
    )
    publish_rate_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="At most this many publications per user (per client when anonymous)..."
    )
    publish_rate_window = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(1), MaxValueValidator(86_400)], help_text="...per this many seconds."
    )
    # Subscription options Centrifugo applies (subscribe result `override`); empty = server default.
    presence = models.BooleanField(null=True, blank=True, help_text="Track who is subscribed (presence).")
    join_leave = models.BooleanField(null=True, blank=True, help_text="Send join/leave events to subscribers.")
    force_push_join_leave = models.BooleanField(
        null=True, blank=True, help_text="Push join/leave events without the client asking."
    )
    force_recovery = models.BooleanField(null=True, blank=True, help_text="Recover missed publications on resubscribe.")
    force_positioning = models.BooleanField(null=True, blank=True, help_text="Check stream position continuity.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "pattern"]

    def __str__(self) -> str:
        return self.pattern

    def clean(self) -> None:
        errors: dict[str, str] = {}
        for action in ("subscribe", "publish"):
            access = getattr(self, f"{action}_access")
            if access == Access.USERS and not split_ids(getattr(self, f"{action}_users")):
                errors[f"{action}_users"] = f"List at least one user id, or pick another {action} access."
            if access == Access.ROLES and not split_ids(getattr(self, f"{action}_roles")):
                errors[f"{action}_roles"] = f"List at least one role, or pick another {action} access."
            if access == Access.OWNER and "{user}" not in (self.pattern or ""):
                errors[f"{action}_access"] = "'owner' needs a pattern with the {user} placeholder, e.g. inbox:{user}."
        if self.publish_schema is not None:
            problem = schema_problem(self.publish_schema)
            if problem:
                errors["publish_schema"] = f"Not a valid JSON Schema: {problem}"
            elif self.allow_binary:
                errors["allow_binary"] = "Binary data cannot match a JSON Schema: clear the schema or this box."
        if errors:
            raise ValidationError(errors)


# What an operator sets on a partition rule (admin form, list and the rules file alike).
PARTITION_RULE_FIELDS = (
    "pattern",
    "priority",
    "enabled",
    "stream",
    "partitions",
    "key",
    "max_length",
    "max_age_seconds",
    "store",
)


class PartitionRule(models.Model):
    pattern = models.CharField(
        max_length=255, unique=True, validators=[validate_pattern], help_text="Same syntax as channel rules."
    )
    priority = models.IntegerField(default=100, help_text="Lower is checked first.")
    enabled = models.BooleanField(default=True)
    stream = models.SlugField(max_length=100, help_text="Stream name; keys are <prefix>:stream:{<stream>:<partition>}.")
    partitions = models.PositiveIntegerField(default=8, validators=[MinValueValidator(1), MaxValueValidator(1024)])
    key = models.CharField(
        max_length=16,
        choices=[(k.value, k.value.capitalize()) for k in PartitionKey],
        default=PartitionKey.CHANNEL,
        help_text="What picks the partition: per-channel order, per-user order, or one partition.",
    )
    max_length = models.PositiveIntegerField(
        null=True, blank=True, help_text="Approximate cap on entries per partition (XADD MAXLEN ~)."
    )
    max_age_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Drop entries older than this on write (XTRIM MINID ~)."
    )
    store = models.BooleanField(default=True, help_text="Untick to publish without storing.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "pattern"]

    def __str__(self) -> str:
        return f"{self.pattern} -> {self.stream}"


class RuleSetVersion(models.Model):
    """One row, bumped in the same transaction as any rule change; every process polls it."""

    version = models.BigIntegerField(default=0)
    changed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"rule set v{self.version}"


class RuleChange(models.Model):
    """The audit trail: every create, change and delete of a rule, by whom, from where."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=150, help_text="Admin user, or the command that made the change.")
    action = models.CharField(max_length=16)  # created | changed | deleted
    kind = models.CharField(max_length=16)  # channel | partition
    pattern = models.CharField(max_length=255)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.kind} rule {self.pattern}"
