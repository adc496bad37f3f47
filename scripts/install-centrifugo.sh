#!/usr/bin/env bash
# Puts Centrifugo v6.9.1 at bin/centrifugo, once. With Go: `go install` through the Go module
# proxy (a few minutes on 2 cores the first time; the module cache makes it fast later). Without
# Go: the official release archive, checked against the checksums file published with it.
set -o errexit -o pipefail -o nounset
source "$(dirname "$0")/lib.sh"

VERSION=6.9.1
BIN="$ROOT/bin/centrifugo"
if [ -x "$BIN" ] && "$BIN" version 2>/dev/null | grep -q "v$VERSION "; then exit 0; fi
mkdir -p "$ROOT/bin"

if command -v go >/dev/null; then
  step "Building Centrifugo v$VERSION with $(go version | cut -d' ' -f3) (first time: ~3-5 min, ~300 MB of modules)"
  GOBIN="$ROOT/bin" go install \
    -ldflags "-s -w -X github.com/centrifugal/centrifugo/v6/internal/build.Version=$VERSION" \
    "github.com/centrifugal/centrifugo/v6@v$VERSION"
else
  # No Go: the release archive, verified against the release's own checksums file over HTTPS.
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) arch=linux_amd64 ;;
    Linux-aarch64) arch=linux_arm64 ;;
    Darwin-x86_64) arch=darwin_amd64 ;;
    Darwin-arm64) arch=darwin_arm64 ;;
    *) die "no Go and no Centrifugo release for $(uname -s)-$(uname -m): install Go >= 1.26" ;;
  esac
  base="https://github.com/centrifugal/centrifugo/releases/download/v$VERSION"
  archive="centrifugo_${VERSION}_${arch}.tar.gz"
  step "Downloading Centrifugo v$VERSION ($arch)"
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  curl -fsSL --retry 3 -o "$tmp/$archive" "$base/$archive"
  curl -fsSL --retry 3 -o "$tmp/checksums.txt" "$base/centrifugo_${VERSION}_checksums.txt"
  (cd "$tmp" && grep " $archive\$" checksums.txt | sha256sum -c --quiet -) || die "checksum mismatch for $archive"
  tar -xzf "$tmp/$archive" -C "$tmp" centrifugo
  install -m 0755 "$tmp/centrifugo" "$BIN"
fi
"$BIN" version >&2
