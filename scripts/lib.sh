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

# apt_get ARGS...: apt-get as root, non-interactive, waiting while another apt/dpkg process holds
# its lock (a machine that just booted often runs unattended-upgrades or cloud-init's apt) for at
# most APT_LOCK_WAIT seconds (default 300), saying so once. apt's own DPkg::Lock::Timeout does not
# cover `apt-get update`'s lists lock (apt 2.6), so the wait is a retry loop on apt's lock error.
apt_get() {
  local limit="${APT_LOCK_WAIT:-300}" out said=false
  local deadline=$((SECONDS + limit))
  while true; do
    if out="$(as_root env DEBIAN_FRONTEND=noninteractive apt-get "$@" 2>&1)"; then
      return 0  # -qq output on success is dpkg's progress: not worth showing
    fi
    case "$out" in
      *"Could not get lock"* | *"Unable to lock"* | *"Unable to acquire the dpkg frontend lock"*) ;;
      *) printf '%s\n' "$out" >&2; return 1 ;;
    esac
    local holder
    holder="$(printf '%s\n' "$out" | sed -n 's/.*It is held by \(process [0-9]* ([^)]*)\).*/\1/p' | head -n 1)"
    if [ "$SECONDS" -ge "$deadline" ]; then
      die "another apt/dpkg process${holder:+ ($holder)} still holds the package lock after ${limit} s: wait for it to finish (or raise APT_LOCK_WAIT), then run this again"
    fi
    if [ "$said" = false ]; then
      note "another apt/dpkg process${holder:+ ($holder)} holds the package lock; waiting up to ${limit} s for it"
      said=true
    fi
    sleep 2
  done
}
