"""The operator controls' admin pages; each page lives in its own module."""

from control import audit_admin, closures_admin  # noqa: F401  (they register their pages)
