"""The gateway's own Django stack plus bench-only routes (a no-op publish, a plain-Django publish)."""
