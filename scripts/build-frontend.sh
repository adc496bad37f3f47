#!/usr/bin/env bash
# The admin's browser packages from npm (frontend/package-lock.json pins them, with integrity hashes):
# `npm ci`, then the centrifuge-js browser build into control/static/control/vendor/ (gitignored),
# where Django's staticfiles (WhiteNoise) serve it. No CDN: the live view loads it from the gateway.
# Skipped when the lock's digest is unchanged and the build is in place. The Dockerfile's node stage
# runs the same two steps.
set -o errexit -o pipefail -o nounset
source "$(dirname "$0")/lib.sh"

src="$ROOT/frontend"
vendor="$ROOT/control/static/control/vendor"
stamp="$vendor/.package-lock.sha256"
digest="$(sha256sum "$src/package-lock.json" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ] && [ -f "$vendor/centrifuge.js" ]; then exit 0; fi
{ command -v node && command -v npm; } >/dev/null || die "Node.js and npm are needed to install centrifuge-js (frontend/)"
step "Installing the admin's browser packages (npm ci, pinned in frontend/package-lock.json)"
# --ignore-scripts: only files are taken from node_modules, no package's install script runs.
(cd "$src" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
mkdir -p "$vendor"
cp "$src/node_modules/centrifuge/dist/centrifuge.js" "$src/node_modules/centrifuge/dist/centrifuge.js.map" "$vendor/"
echo "$digest" > "$stamp"
note "centrifuge-js $(cd "$src" && node -p 'require("./node_modules/centrifuge/package.json").version') in ${vendor#"$ROOT"/}"
