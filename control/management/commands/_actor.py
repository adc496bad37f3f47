"""Who a command acts as, in the audit trail: `command:<name>`, and the login that ran it."""

from __future__ import annotations

import getpass


def command_actor(name: str) -> str:
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # no such user in the container's passwd
        return f"command:{name}"
    return f"command:{name} ({login})"
