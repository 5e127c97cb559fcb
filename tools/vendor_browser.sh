#!/usr/bin/env bash
# The browser's libraries for the live webcam's browser mode, pinned and served by the app itself
# (no CDN): `npm pack` at exact versions, then the smallest set of files the page loads (the ES
# module builds and one WebAssembly flavour each: SIMD, which every current browser has) into
# demo/web/browser/vendor/, with SHA256SUMS. Rerun to reproduce the committed files byte for byte.
set -euo pipefail
TASKS_VISION=1.1.0   # @mediapipe/tasks-vision, Apache-2.0
ORT_WEB=1.31.1       # onnxruntime-web, MIT
cd "$(dirname "$0")/.."
out=demo/web/browser/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "@mediapipe/tasks-vision@$TASKS_VISION" "onnxruntime-web@$ORT_WEB" >/dev/null)
mkdir -p "$work/mp" "$work/ort"
tar xzf "$work/mediapipe-tasks-vision-$TASKS_VISION.tgz" -C "$work/mp"
tar xzf "$work/onnxruntime-web-$ORT_WEB.tgz" -C "$work/ort"
rm -rf "$out/tasks-vision" "$out/onnxruntime-web"
mkdir -p "$out/tasks-vision" "$out/onnxruntime-web"
cp "$work/mp/package/vision_bundle.mjs" "$work/mp/package/wasm/vision_wasm_internal.js" \
   "$work/mp/package/wasm/vision_wasm_internal.wasm" "$out/tasks-vision/"
cp "$work/ort/package/dist/ort.wasm.min.mjs" "$work/ort/package/dist/ort-wasm-simd-threaded.mjs" \
   "$work/ort/package/dist/ort-wasm-simd-threaded.wasm" "$out/onnxruntime-web/"
cat > "$out/VERSIONS.json" <<JSON
{"@mediapipe/tasks-vision": "$TASKS_VISION", "onnxruntime-web": "$ORT_WEB"}
JSON
(cd "$out" && sha256sum tasks-vision/* onnxruntime-web/* > SHA256SUMS)
cat "$out/SHA256SUMS"
