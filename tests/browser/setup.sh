#!/usr/bin/env bash
# tests/browser/setup.sh SRC_DIR DEST_DIR: the browser test's fixture (ctest "browser_setup").
# Installs the pinned playwright-core of SRC_DIR/package-lock.json into DEST_DIR with `npm ci`
# (no install scripts, so no browser download ever: the test drives Debian's /usr/bin/chromium),
# skipped when DEST_DIR already holds exactly that lock. Fails when node, npm or chromium is
# missing (scripts/deps installs them).
set -euo pipefail
src=$1 dest=$2
for tool in node npm /usr/bin/chromium; do
  command -v "$tool" >/dev/null || { echo "browser setup: $tool is missing (run scripts/deps)" >&2; exit 1; }
done
mkdir -p "$dest"
cp "$src/package.json" "$src/package-lock.json" "$dest/"
if ! cmp -s "$src/package-lock.json" "$dest/node_modules/.callpipe-lock.json" 2>/dev/null; then
  (cd "$dest" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  cp "$src/package-lock.json" "$dest/node_modules/.callpipe-lock.json"
fi
echo "browser setup: playwright-core $(node -p "require('$dest/node_modules/playwright-core/package.json').version"), $(/usr/bin/chromium --version 2>/dev/null | head -1)"
