// The emotion model in a worker, so the page keeps drawing while a face is classified: ONNX Runtime
// Web (WebAssembly) on the model's ONNX export, every face of a frame in one call, then the model's
// temperature; the ensemble averages its members as demo/pipeline/classify.py's Ensemble does.
import * as ort from "/live/vendor/onnxruntime-web/ort.wasm.min.mjs";
import { applyTemperature, cropFace, prepare, views, VIEW_COUNT } from "/live/app/preprocess.mjs";

let config = null;
const sessions = new Map();
let canvas = null;

function session(name) {
  if (!sessions.has(name)) {
    sessions.set(name, ort.InferenceSession.create(config.models[name].file, { executionProviders: ["wasm"] }));
  }
  return sessions.get(name);
}

// One model's calibrated probabilities for the crops: its live or served views (or those given).
async function predictModel(name, crops, mode, mirrored, viewSet) {
  const model = config.models[name];
  const shape = model.input_shape;
  const chosen = viewSet || model[mode].views;
  const temperature = model.temperatures[chosen];
  const size = shape[0] * shape[1] * shape[2];
  const count = VIEW_COUNT[chosen];
  const batch = new Float32Array(count * crops.length * size);
  crops.forEach((crop, f) => {
    let face = prepare(crop, shape);
    if (mirrored) face = views(face, shape, "mirror")[1];
    views(face, shape, chosen).forEach((view, v) => batch.set(view, (v * crops.length + f) * size));
  });
  const s = await session(name);
  const input = new ort.Tensor("float32", batch, [count * crops.length, ...shape]);
  const output = (await s.run({ [s.inputNames[0]]: input }))[s.outputNames[0]].data;
  const classes = model.class_names.length;
  return crops.map((_, f) => {
    const mean = new Float64Array(classes);
    for (let v = 0; v < count; v++)
      for (let k = 0; k < classes; k++) mean[k] += output[(v * crops.length + f) * classes + k] / count;
    return applyTemperature(mean, temperature);
  });
}

async function predict(name, crops, mode, mirrored) {
  const ensemble = config.ensemble;
  if (ensemble && name === ensemble.name) {
    // Ensemble.live_views is "none": each member plain on a stream, its served views on a still.
    const each = [];
    for (const member of ensemble.members) {
      each.push(await predictModel(member, crops, mode, mirrored, mode === "live" ? "none" : null));
    }
    return crops.map((_, f) => {
      const mean = each[0][f].map((_, k) => each.reduce((a, probs) => a + probs[f][k], 0) / each.length);
      return applyTemperature(mean, ensemble.temperature);
    });
  }
  return predictModel(name, crops, mode, mirrored, null);
}

function pixels(frame) {
  if (!(frame instanceof ImageBitmap)) return frame; // {rgba, width, height}
  if (!canvas || canvas.width !== frame.width || canvas.height !== frame.height) {
    canvas = new OffscreenCanvas(frame.width, frame.height);
  }
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(frame, 0, 0);
  frame.close();
  return { rgba: ctx.getImageData(0, 0, canvas.width, canvas.height).data, width: canvas.width, height: canvas.height };
}

self.onmessage = async ({ data }) => {
  try {
    if (data.type === "config") {
      config = data.config;
      ort.env.wasm.wasmPaths = config.vendor.onnxruntime;
      ort.env.wasm.numThreads = self.crossOriginIsolated ? 2 : 1;
      return;
    }
    if (data.type === "load") {
      const names = config.ensemble && data.model === config.ensemble.name ? config.ensemble.members : [data.model];
      await Promise.all(names.map(session));
      self.postMessage({ type: "loaded", model: data.model });
      return;
    }
    if (data.type === "classify") {
      const start = performance.now();
      const { rgba, width, height } = pixels(data.frame);
      const crops = data.boxes.map((box) => cropFace(rgba, width, height, box, config.crop));
      const probs = crops.length ? await predict(data.model, crops, data.mode, data.mirrored) : [];
      self.postMessage({ type: "probs", id: data.id, probs: probs.map((p) => Array.from(p)),
                         ms: performance.now() - start });
    }
  } catch (err) {
    self.postMessage({ type: "error", id: data.id, message: String(err && err.message || err) });
  }
};
