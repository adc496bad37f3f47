"""Operator controls. Every row here that changes what a callback decides (a revocation, a ban, a
channel closure) is written by control.services in the transaction that bumps RuleSetVersion, so
every callback process on every replica picks it up with its next rule poll (partitions.store),
like a rule change: one propagation path, no restart."""

from __future__ import annotations

from django.db import models

from partitions.models import validate_pattern


class AuditEntry(models.Model):
    """Who did what to which user, token or channel, when, and why (rule changes have RuleChange)."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=150, help_text="Admin user, or the command that acted.")
    # token.issued | token.revoked | tokens.revoked | user.disconnected | user.banned |
    # user.unbanned | channel.closed | channel.changed | channel.reopened | liveview.opened
    action = models.CharField(max_length=32, db_index=True)
    target = models.CharField(max_length=255, db_index=True, help_text="A jti, a user id or a channel pattern.")
    reason = models.TextField(blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.target}"


class IssuedToken(models.Model):
    """A token the commands or the admin issued: who, when, for how long, with what meta. Never
    the token itself (it is a bearer credential)."""

    KIND_CONNECTION = "connection"
    KIND_SUBSCRIPTION = "subscription"

    jti = models.CharField(max_length=64, unique=True)
    kind = models.CharField(
        max_length=16, choices=[(KIND_CONNECTION, "connection"), (KIND_SUBSCRIPTION, "subscription")]
    )
    user = models.CharField(max_length=255, db_index=True)
    channel = models.CharField(max_length=255, blank=True)
    issued_at = models.DateTimeField(db_index=True)
    expires_at = models.DateTimeField(db_index=True)
    ttl = models.PositiveIntegerField()
    meta = models.JSONField(null=True, blank=True)
    issued_by = models.CharField(max_length=150)
    revoked_at = models.DateTimeField(null=True, blank=True, db_index=True)
    revoked_by = models.CharField(max_length=150, blank=True)
    revoke_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-issued_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} token {self.jti} for {self.user!r}"


class UserTokenCutoff(models.Model):
    """`revoke_tokens USER --before T`: every token of USER issued (iat) before T is revoked,
    recorded or not (tokens issued elsewhere with the same key included)."""

    user = models.CharField(max_length=255, unique=True)
    before = models.DateTimeField()
    at = models.DateTimeField(auto_now=True)
    actor = models.CharField(max_length=150)
    reason = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"tokens of {self.user!r} issued before {self.before:%Y-%m-%d %H:%M:%S}"


class Ban(models.Model):
    """A user whose connects are refused until unbanned or until `until`."""

    user = models.CharField(max_length=255, unique=True)
    reason = models.TextField(blank=True)
    until = models.DateTimeField(null=True, blank=True, help_text="Empty: until unbanned.")
    at = models.DateTimeField(auto_now_add=True)
    actor = models.CharField(max_length=150)

    def __str__(self) -> str:
        return f"ban of {self.user!r}"


class ChannelClosure(models.Model):
    """The kill switch: channels matching `pattern` are closed for publish (and optionally for
    subscribe: live subscriptions end with their next sub_refresh), whatever the rules say."""

    pattern = models.CharField(max_length=255, validators=[validate_pattern])
    close_publish = models.BooleanField(default=True)
    close_subscribe = models.BooleanField(default=False)
    reason = models.TextField()
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    actor = models.CharField(max_length=150)

    class Meta:
        ordering = ["pattern", "id"]

    def __str__(self) -> str:
        return f"closure of {self.pattern}"
