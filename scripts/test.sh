#!/usr/bin/env bash
# The whole suite: migrations in sync with the models, then pytest (unit and end-to-end tests;
# the end-to-end ones start their own Redis, gunicorn and Centrifugo on free loopback ports).
set -o errexit -o pipefail -o nounset
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$ROOT/bin:$PATH"
export DJANGO_SETTINGS_MODULE=realtime.settings.test

step "Checking that migrations match the models"
python manage.py makemigrations --check --dry-run >/dev/null || die "models changed without a migration: run manage.py makemigrations"
step "Running the test suite"
exec python -m pytest "$@"
