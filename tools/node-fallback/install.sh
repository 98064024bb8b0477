#!/bin/sh
# Runs at `pnpm install`. Fetches Node 24 from the npm registry only when the system Node is older than 22,
# so that a user who already has a recent Node pays nothing. The binary ends up in .runtime/bin/node (not
# under a node_modules folder, so that tools that copy node_modules do not carry it twice).
set -e
cd "$(dirname "$0")"
version=24.21.0
major=$(/usr/bin/env -i PATH="$(printf %s "$PATH" | tr ':' '\n' | grep -v '/node_modules/\.bin$' | paste -sd: -)" node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -ge 22 ]; then rm -rf .runtime; exit 0; fi
[ -x .runtime/bin/node ] && [ "$(.runtime/bin/node --version)" = "v$version" ] && exit 0
echo "system Node is older than 22: fetching Node $version from the npm registry (once)"
rm -rf .runtime && mkdir -p .runtime/bin
npm install --prefix .runtime/npm --no-save --no-package-lock --no-audit --no-fund --loglevel=error "node@$version" >/dev/null
cp "$(readlink -f .runtime/npm/node_modules/node/bin/node)" .runtime/bin/node
rm -rf .runtime/npm
.runtime/bin/node --version >/dev/null
