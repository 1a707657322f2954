#!/usr/bin/env bash
# The package as users get it: `npm pack` this checkout, install the tarball into an empty project,
# and run the CLI from there through npx: `clipfit models` and `clipfit encode` with the shipped
# default model (models/) and OpenAI's BPE (assets/). Dependencies come from the npm registry; the
# project denies onnxruntime-node's install script (it would fetch CUDA libraries) as ours does,
# because npm reads allowScripts from the installing project only. clipfit's own `prepare` (tsc, a
# devDependency) must not run either: the tarball carries dist/.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/clipfit-pack-smoke.XXXXXX")"
trap 'rm -rf "$work"' EXIT

cd "$repo"
tarball="$(npm pack --silent --pack-destination "$work" | tail -n 1)"
echo "packed $tarball ($(du -h "$work/$tarball" | cut -f1))"
# What the CLI reads at run time must be in the tarball.
listing="$(tar -tzf "$work/$tarball")"
for f in bin/clipfit.js dist/app/cli/main.js models/ViT-T-8-64-icons/open_clip_model.safetensors \
  models/ViT-T-8-64-icons/open_clip_config.json assets/bpe_simple_vocab_16e6.txt.gz assets/LICENSE-openai-clip.txt \
  src/models/clip/configs/ViT-B-32.json src/server/web/index.html; do
  grep -qx "package/$f" <<<"$listing" || { echo "pack-smoke: $f is missing from the tarball" >&2; exit 1; }
done

mkdir "$work/app"
cd "$work/app"
node -e '
  const pkg = require(process.argv[1]);
  require("fs").writeFileSync("package.json", JSON.stringify({ name: "clipfit-smoke", private: true, allowScripts: { ...pkg.allowScripts, clipfit: false } }, null, 2));
' "$repo/package.json"
npm install --no-audit --no-fund "$work/$tarball"
if ls node_modules/onnxruntime-node/bin/napi-v*/linux/x64/ 2>/dev/null | grep -q providers_cuda; then
  echo "pack-smoke: onnxruntime-node's install script ran (CUDA provider present) despite allowScripts" >&2
  exit 1
fi

npx --no-install clipfit models | tee models.txt
grep -q 'ViT-T-8-64::icons' models.txt
grep -q 'ViT-B-32::openai' models.txt
npx --no-install clipfit encode --text "a red dress" --out x.npy
node -e '
  const b = require("fs").readFileSync("x.npy");
  const header = b.subarray(10, 10 + b.readUInt16LE(8)).toString();
  if (!/\(1, \d+\)/.test(header)) { console.error("pack-smoke: unexpected x.npy header " + header); process.exit(1); }
  console.log("x.npy " + header.trim());
'
echo "pack-smoke: ok"
