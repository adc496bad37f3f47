"""Who a command acts as, for the audit trail: the command, and the login that ran it."""

from __future__ import annotations

import getpass


def command_actor(name: str) -> str:
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return f"command:{name}"
    return f"command:{name} ({login})"
