"""What the kill-switch commands share: one line per closure, and validation errors as text."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from control.models import ChannelClosure


def closure_line(closure: ChannelClosure) -> str:
    closed = "+".join(a for a, on in (("publish", closure.close_publish), ("subscribe", closure.close_subscribe)) if on)
    state = "closed" if closure.enabled else "reopened"
    return (
        f"#{closure.pk}\t{closure.pattern}\t{state}\t{closed}\t{closure.updated_at.isoformat(timespec='milliseconds')}"
        f"\t{closure.actor}\t{closure.reason}"
    )


def validation_text(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items())
    return " ".join(exc.messages)
