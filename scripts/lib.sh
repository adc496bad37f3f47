# Shared helpers for the scripts in this folder (sourced, not run).
# shellcheck shell=bash
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT

step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
note() { printf '    %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# as_root CMD...: run as root, through sudo when we are not root.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "'$*' needs root; run it as root or install sudo"; fi
}

# load_dev_env: fill unset variables from var/dev.env (created by dev-secrets.sh).
load_dev_env() {
  local file="${VAR_DIR:-$ROOT/var}/dev.env" key value file_var
  [ -f "$file" ] || return 0
  while IFS='=' read -r key value; do
    case "$key" in ''|'#'*) continue ;; esac
    file_var="${key}_FILE"  # a secret given as NAME_FILE is not also filled in as NAME (both is refused)
    if [ -z "${!key:-}" ] && [ -z "${!file_var:-}" ]; then export "$key=$value"; fi
  done < "$file"
}
