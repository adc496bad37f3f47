# Docker/Kubernetes secrets for the shell entry points (sourced by docker/entrypoint.sh and
# scripts/run-gateway.sh, not run). NAME_FILE names a file holding NAME. The rule is the same as
# Django's (realtime.env.env_secret): either NAME or NAME_FILE, never both, because with both set
# Centrifugo and Django could each pick a different one and run with different secrets.
# shellcheck shell=bash disable=SC2034  # SECRET_NAMES and SECRET_ERROR are read by the callers

# The variables that may come from a file: the secrets declared in realtime/config.py.
# shellcheck source=docker/defaults.sh
source "$(dirname "${BASH_SOURCE[0]}")/defaults.sh"
SECRET_NAMES=("${GW_SECRET_NAMES[@]}")

# resolve_secret_files: for each NAME with NAME_FILE set, export NAME with the file's content (leading
# and trailing whitespace stripped, as Django does) and unset NAME_FILE, so every program started
# afterwards (Centrifugo via centrifugo/run.sh, gunicorn, manage.py) sees one plain NAME.
# On the ambiguous case, an unreadable or an empty file it returns 2 with a one-line message naming the
# variables in SECRET_ERROR (the caller prints it its own way): `resolve_secret_files || die "$SECRET_ERROR"`.
SECRET_ERROR=""
resolve_secret_files() {
  local name file_var path value
  for name in "${SECRET_NAMES[@]}"; do
    file_var="${name}_FILE"
    path="${!file_var:-}"
    [ -n "$path" ] || continue
    if [ -n "${!name:-}" ]; then
      SECRET_ERROR="$name and $file_var are both set: set only one of them"
      return 2
    fi
    if [ ! -r "$path" ] || [ -d "$path" ]; then
      SECRET_ERROR="$file_var=$path cannot be read"
      return 2
    fi
    value="$(<"$path")"
    value="${value#"${value%%[![:space:]]*}"}"
    value="${value%"${value##*[![:space:]]}"}"
    if [ -z "$value" ]; then
      SECRET_ERROR="$file_var=$path is empty"
      return 2
    fi
    export "$name=$value"
    unset "$file_var"
  done
}
