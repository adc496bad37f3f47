# syntax=docker/dockerfile:1
# The gateway image: Centrifugo, the Django callbacks (gunicorn) and supervisord in one image, with
# the role chosen at run time by GATEWAY_ROLE (docker/entrypoint.sh):
#   all (default)  Centrifugo :8000 + callbacks :3000 in one container (docker-compose.yml)
#   centrifugo     Centrifugo only, calling the callbacks at CALLBACK_URL
#   callback       the callbacks (and the admin) only
# Redis and the database are separate services. Secrets come from the environment at run time
# (or NAME_FILE, a mounted secret file): nothing secret is baked into a layer.
#
#   docker build -t realtime-gateway .
#   docker run --rm --env-file .env -p 8000:8000 -p 3000:3000 realtime-gateway

# The official image pins the Centrifugo build the project is tested against (bin/centrifugo).
FROM centrifugo/centrifugo:v6.9.1 AS centrifugo

# ---- build: the pinned Python dependencies in a venv that the final stage copies whole --------
FROM python:3.11.13-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
# requirements.txt is the lock (scripts/lock-requirements.sh): every package pinned with its hashes,
# and pip refuses anything unpinned or whose file does not match. Every runtime dependency (psycopg,
# hiredis, msgspec included) ships a manylinux wheel, so this stage needs no compiler.
RUN /opt/venv/bin/pip install --no-cache-dir --require-hashes -r /tmp/requirements.txt

# ---- frontend: centrifuge-js from npm for the admin's live view (frontend/package-lock.json pins it
# with integrity hashes; scripts/build-frontend.sh does the same for `make run`). Only its browser
# build reaches the image; --ignore-scripts: no package's install script runs.
FROM node:22.12.0-bookworm-slim AS frontend
WORKDIR /frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

# ---- runtime --------------------------------------------------------------------------------
FROM python:3.11.13-slim-bookworm AS runtime
# tini is PID 1: it forwards SIGTERM to supervisord (which stops Centrifugo, then gunicorn, each
# gracefully) and reaps zombies. Pinned to bookworm's 0.19.0-1; the * takes whichever binary
# rebuild (+bN) the architecture has.
RUN apt-get update \
    && apt-get install -y --no-install-recommends 'tini=0.19.0-1*' \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin gateway

COPY --from=centrifugo /usr/local/bin/centrifugo /usr/local/bin/centrifugo
COPY --from=build /opt/venv /opt/venv

# Non-secret values only. The gateway's defaults (ports, BIND_ADDRESS, GATEWAY_ROLE) are set by
# docker/entrypoint.sh from realtime/config.py; the settings module is here too for collectstatic.
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=realtime.settings.production \
    VAR_DIR=/app/var \
    STATIC_ROOT=/app/staticfiles

WORKDIR /app
# .dockerignore is an allow-list: only the application, its config and the entry point come in.
COPY . .
# Served from the project's own static files (no CDN), collected with the admin's below.
COPY --from=frontend /frontend/node_modules/centrifuge/dist/centrifuge.js \
    /frontend/node_modules/centrifuge/dist/centrifuge.js.map /app/control/static/control/vendor/

# collectstatic imports the production settings, which refuse to load without their secrets: the
# throwaway values below exist for this one command only (not ENV, so not in the image config).
# The code and static files stay root-owned: readable by all, writable by none. Only VAR_DIR
# (supervisord's socket and pid file; the SQLite file when DATABASE_URL is unset) is the gateway's.
RUN DJANGO_SECRET_KEY=build-time-placeholder-not-a-secret-long-enough-for-django \
    CENTRIFUGO_TOKEN_HMAC_SECRET_KEY=build-time-placeholder-not-a-secret \
    CENTRIFUGO_PROXY_SECRET=build-time-placeholder-not-a-secret \
    python manage.py collectstatic --no-input -v 0 \
    && python -m compileall -q . \
    && chmod -R a+rX /app \
    && mkdir -p "$VAR_DIR" \
    && chown gateway:gateway "$VAR_DIR"

# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001

# 8000: Centrifugo (client transports, /health, server API); 3000: the callbacks and the admin.
EXPOSE 8000 3000

# Checks /health of what this role runs (see `healthcheck` in docker/entrypoint.sh).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/app/docker/entrypoint.sh", "healthcheck"]

ENTRYPOINT ["/usr/bin/tini", "--", "/app/docker/entrypoint.sh"]
