"""Baseline: the publish callback as a naive DRF project would write it (startproject defaults,
DRF defaults, a Serializer, json.dumps, one XADD), served by gunicorn's default sync worker."""
