"""The operator controls' admin pages; each page lives in its own module."""

from control import closures_admin  # noqa: F401  (registers the channel kill switch)
