// The Webcam tab's browser mode: the camera, the face detector and the emotion model all run in
// this page; no frame leaves it. MediaPipe Tasks Vision finds the faces on every camera frame (the
// server's own BlazeFace file), the worker classifies them (ONNX Runtime Web, the model's ONNX
// export and temperature), the tracker follows and smooths them, and a canvas over the mirrored
// preview draws boxes and labels. As the peers do, the overlay follows every frame while each
// face's emotion is recomputed as often as the model allows: one classification in flight at a time.
import { FaceDetector, FilesetResolver } from "/live/vendor/tasks-vision/vision_bundle.mjs";
import { Tracker } from "/live/app/tracker.mjs";

const STATS_KEPT = 600; // the last 20 s at 30 fps, for the readout and the benchmark

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  Object.assign(node, attrs);
  if (text) node.textContent = text;
  return node;
}

function percentile(values, q) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

class Live {
  constructor(root) {
    this.root = root;
    this.model = null;
    this.running = false;
    this.busy = false; // a classification in flight
    this.requests = 0;
    this.pending = new Map();
    this.stats = { drawn: 0, detected: 0, classified: 0, lag: [], age: [], classifyMs: [], started: 0 };
    root.replaceChildren();
    this.note = el("p", { className: "ekspresi-live-note" },
      "Runs in this browser: the camera, the face detector and the model are all here, and no frame leaves this page.");
    this.button = el("button", { className: "ekspresi-live-start", type: "button" }, "Start camera");
    this.status = el("span", { className: "ekspresi-live-status" }, "loading the detector and the model…");
    this.canvas = el("canvas", { className: "ekspresi-live-canvas", width: 640, height: 480 });
    this.timeline = el("canvas", { className: "ekspresi-live-timeline", width: 640, height: 120 });
    this.readout = el("p", { className: "ekspresi-live-readout" });
    this.video = el("video", { muted: true, playsInline: true, autoplay: true });
    this.video.style.display = "none";
    this.status.style.marginLeft = "0.75em";
    root.append(this.note, this.button, this.status, this.canvas, this.timeline, this.readout, this.video);
    this.button.addEventListener("click", () => (this.running ? this.stop() : this.start()));
    this.ready = this.init();
  }

  async init() {
    this.config = await (await fetch("/live/config.json")).json();
    this.tracker = new Tracker(this.config.tracking);
    const fileset = await FilesetResolver.forVisionTasks(this.config.vendor.tasks_vision);
    const options = (mode) => ({ baseOptions: { modelAssetPath: this.config.detector.file, delegate: "CPU" },
                                 runningMode: mode, minDetectionConfidence: this.config.detector.min_confidence });
    this.detector = await FaceDetector.createFromOptions(fileset, options("VIDEO"));
    this.stillDetector = await FaceDetector.createFromOptions(fileset, options("IMAGE"));
    this.worker = new Worker("/live/app/classify_worker.mjs", { type: "module" });
    this.worker.onmessage = ({ data }) => this.answer(data);
    this.worker.postMessage({ type: "config", config: this.config });
    await this.setModel(this.model || this.config.default);
  }

  answer(data) {
    const done = this.pending.get(data.id);
    if (!done) return;
    this.pending.delete(data.id);
    if (data.type === "error") done.reject(new Error(data.message));
    else done.resolve(data);
  }

  ask(message, transfer = []) {
    const id = ++this.requests;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...message, id }, transfer);
    });
  }

  async setModel(name) {
    const known = name in this.config.models || (this.config.ensemble && name === this.config.ensemble.name);
    if (!known) {
      this.status.textContent = `${name} is not available in the browser`;
      return false;
    }
    this.model = name;
    this.status.textContent = `loading ${name}…`;
    const loaded = new Promise((resolve) => {
      const listen = ({ data }) => {
        if (data.type === "loaded" && data.model === name) {
          this.worker.removeEventListener("message", listen);
          resolve();
        }
      };
      this.worker.addEventListener("message", listen);
    });
    this.worker.postMessage({ type: "load", model: name });
    await loaded;
    if (this.model === name) {
      this.tracker.tracks.forEach((t) => { t.probs = null; t.classifiedAt = -Infinity; });
      this.status.textContent = `${name}, in this browser`;
    }
    return true;
  }

  async start() {
    await this.ready;
    this.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    this.video.srcObject = this.stream;
    await this.video.play();
    this.canvas.width = this.video.videoWidth;
    this.canvas.height = this.video.videoHeight;
    this.running = true;
    this.button.textContent = "Stop camera";
    this.stats.started = performance.now();
    this.video.requestVideoFrameCallback((now, meta) => this.frame(now, meta));
  }

  stop() {
    this.running = false;
    this.button.textContent = "Start camera";
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    this.stream = null;
  }

  frame(now, meta) {
    if (!this.running) return;
    const t = performance.now();
    const faces = this.detector.detectForVideo(this.video, t).detections;
    const boxes = faces.map((d) => {
      const b = d.boundingBox;
      return [Math.round(b.originX), Math.round(b.originY), Math.round(b.width), Math.round(b.height)];
    });
    const tracks = this.tracker.match(boxes);
    this.stats.detected++;
    if (tracks.length && !this.busy) this.classify(tracks);
    this.draw(tracks);
    const captured = meta.captureTime ?? meta.expectedDisplayTime ?? now;
    this.keep(this.stats.lag, performance.now() - captured);
    for (const track of tracks) if (track.probs) this.keep(this.stats.age, performance.now() - track.classifiedAt);
    this.stats.drawn++;
    if (this.stats.drawn % 15 === 0) this.report();
    this.video.requestVideoFrameCallback((n, m) => this.frame(n, m));
  }

  keep(list, value) {
    list.push(value);
    if (list.length > STATS_KEPT) list.shift();
  }

  async classify(tracks) {
    this.busy = true;
    const model = this.model;
    try {
      const bitmap = await createImageBitmap(this.video);
      const mirrored = this.stats.classified % 2 === 1; // the live rule: mirrored every other time
      const answer = await this.ask({ type: "classify", model, mode: "live", mirrored, frame: bitmap,
                                      boxes: tracks.map((t) => t.box) }, [bitmap]);
      if (model === this.model) {
        const t = performance.now();
        tracks.forEach((track, i) => this.tracker.classify(track, answer.probs[i], t));
        this.stats.classified++;
        this.keep(this.stats.classifyMs, answer.ms);
      }
    } catch (err) {
      this.status.textContent = `classification failed: ${err.message}`;
    } finally {
      this.busy = false;
    }
  }

  draw(tracks) {
    const ctx = this.canvas.getContext("2d");
    const w = this.canvas.width;
    ctx.save();
    ctx.setTransform(-1, 0, 0, 1, w, 0); // mirrored, like the camera preview
    ctx.drawImage(this.video, 0, 0, w, this.canvas.height);
    ctx.restore();
    const names = this.classNames();
    ctx.lineWidth = 3;
    ctx.font = "18px sans-serif";
    for (const track of tracks) {
      const [x, y, bw, bh] = track.box;
      const left = w - x - bw;
      let text = `#${track.id} …`;
      let colour = "rgb(200,200,200)";
      if (track.probs) {
        const top = track.probs.indexOf(Math.max(...track.probs));
        text = `#${track.id} ${names[top]} ${Math.round(100 * track.probs[top])}%`;
        colour = this.config.colours[names[top]] || colour;
      }
      ctx.strokeStyle = colour;
      ctx.strokeRect(left, y, bw, bh);
      const tw = ctx.measureText(text).width + 8;
      const ty = y - 26 >= 0 ? y - 26 : y + bh;
      ctx.fillStyle = colour;
      ctx.fillRect(left, ty, tw, 26);
      ctx.fillStyle = "black";
      ctx.fillText(text, left + 4, ty + 19);
    }
  }

  classNames() {
    const name = this.config.models[this.model] ? this.model : this.config.ensemble.members[0];
    return this.config.models[name].class_names;
  }

  report() {
    const seconds = (performance.now() - this.stats.started) / 1000;
    const fps = this.stats.drawn / Math.max(seconds, 1e-3);
    const p95 = (v) => (percentile(v, 0.95) ?? 0).toFixed(0);
    this.readout.textContent = `${fps.toFixed(1)} frames a second drawn · lag p95 ${p95(this.stats.lag)} ms · ` +
      `emotion age p95 ${p95(this.stats.age)} ms · model ${(percentile(this.stats.classifyMs, 0.5) ?? 0).toFixed(0)} ms ` +
      `per call (${this.model}, ${this.model in this.config.models ? this.config.models[this.model].live.views : "none"} views, ` +
      "mirrored every other call)";
    this.drawTimeline();
  }

  drawTimeline() {
    const ctx = this.timeline.getContext("2d");
    const { width, height } = this.timeline;
    ctx.clearRect(0, 0, width, height);
    const history = this.tracker.history;
    if (history.length < 2) return;
    const names = this.classNames();
    const newest = history[history.length - 1][0];
    const span = this.config.tracking.history_s;
    names.forEach((name, k) => {
      ctx.strokeStyle = this.config.colours[name];
      ctx.lineWidth = 2;
      ctx.beginPath();
      history.forEach(([t, probs], i) => {
        const x = width * (1 - (newest - t) / span);
        const y = height * (1 - probs[k]);
        if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      });
      ctx.stroke();
    });
  }

  // For the parity test and the benchmark: the browser's answer on a still image, at its own boxes
  // and, given `boxes`, at those (the server's), with the model's served views as /predict uses.
  async analyseStill(url, model, boxes = null) {
    await this.ready;
    if (model && model !== this.model) await this.setModel(model);
    const blob = await (await fetch(url)).blob();
    const bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
    const own = this.stillDetector.detect(bitmap).detections.map((d) => {
      const b = d.boundingBox;
      return [Math.round(b.originX), Math.round(b.originY), Math.round(b.width), Math.round(b.height)];
    });
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(bitmap, 0, 0);
    const frame = { rgba: ctx.getImageData(0, 0, bitmap.width, bitmap.height).data, width: bitmap.width, height: bitmap.height };
    const at = boxes || own;
    const answer = await this.ask({ type: "classify", model: this.model, mode: "served", mirrored: false, frame, boxes: at });
    return { boxes: own, probs: answer.probs, class_names: this.classNames() };
  }

  summary() {
    const seconds = (performance.now() - this.stats.started) / 1000;
    return { fps: this.stats.drawn / Math.max(seconds, 1e-3), drawn: this.stats.drawn, classified: this.stats.classified,
             lag_p50: percentile(this.stats.lag, 0.5), lag_p95: percentile(this.stats.lag, 0.95),
             age_p95: percentile(this.stats.age, 0.95), age_max: this.stats.age.length ? Math.max(...this.stats.age) : null,
             classify_ms_p50: percentile(this.stats.classifyMs, 0.5), model: this.model,
             faces: this.tracker.tracks.map((t) => ({ id: t.id, box: t.box, probs: t.probs && Array.from(t.probs) })) };
  }

  resetStats() {
    Object.assign(this.stats, { drawn: 0, detected: 0, classified: 0, lag: [], age: [], classifyMs: [],
                                started: performance.now() });
  }
}

// Called by the Webcam tab's HTML block (demo/web/page.py) with its element.
export function mount(root) {
  const live = new Live(root);
  window.ekspresiLive = live;
  return live;
}
