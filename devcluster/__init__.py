"""The multi-instance topology of docker-compose.multi-instance.yml as local processes: what
`make cluster` runs (`python -m devcluster`) and what tests/cluster starts on free ports. A
development tool: it is not in the image (.dockerignore) and imports nothing from tests/."""
