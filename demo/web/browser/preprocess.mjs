// A face as the server prepares it, in the browser: the same square crop (demo.pipeline.faces.crop_face),
// grey as Pillow converts RGB to "L", resized as Pillow's BILINEAR resize (antialiased, 8-bit fixed
// point, horizontal pass first), the test-time views of trainer/views.py and the temperature of
// trainer/calibration.py. Pure functions: the worker and the parity tests import them.

// crop_face: a side x side square around the box, enlarged by `scale`, centred a little higher;
// pixels beyond the image repeat its edge. rgba: Uint8ClampedArray of width x height.
export function cropFace(rgba, width, height, box, crop) {
  const [x, y, w, h] = box;
  const side = Math.max(1, pyRound(Math.max(w, h) * crop.scale));
  const cx = x + w / 2;
  const cy = y + h / 2 - crop.shift_up * h;
  const x0 = Math.trunc(pyRound(cx - side / 2));
  const y0 = Math.trunc(pyRound(cy - side / 2));
  const out = new Uint8ClampedArray(side * side * 3);
  for (let r = 0; r < side; r++) {
    const sy = Math.min(height - 1, Math.max(0, y0 + r));
    for (let c = 0; c < side; c++) {
      const sx = Math.min(width - 1, Math.max(0, x0 + c));
      const i = (sy * width + sx) * 4;
      const o = (r * side + c) * 3;
      out[o] = rgba[i];
      out[o + 1] = rgba[i + 1];
      out[o + 2] = rgba[i + 2];
    }
  }
  return { pixels: out, side };
}

// Python's round(): halves to even.
export function pyRound(v) {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

// Pillow's RGB -> L: (R*19595 + G*38470 + B*7471 + 0x8000) >> 16.
export function toGrey(rgb, count) {
  const out = new Uint8ClampedArray(count);
  for (let i = 0; i < count; i++) {
    out[i] = (rgb[3 * i] * 19595 + rgb[3 * i + 1] * 38470 + rgb[3 * i + 2] * 7471 + 0x8000) >> 16;
  }
  return out;
}

const PRECISION_BITS = 32 - 8 - 2;

// Pillow's precompute_coeffs for the bilinear filter (support 1), normalised to 8-bit fixed point.
function coefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1.0);
  const support = 1.0 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const pre = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1.0 / filterscale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0.0;
    for (let x = 0; x < xmax; x++) {
      let t = Math.abs((x + xmin - center + 0.5) * ss);
      const w = t < 1.0 ? 1.0 - t : 0.0;
      pre[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0.0 ? pre[x] / ww : pre[x];
      kk[xx * ksize + x] = v < 0 ? Math.trunc(v * (1 << PRECISION_BITS) - 0.5) : Math.trunc(v * (1 << PRECISION_BITS) + 0.5);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, kk, ksize };
}

function clip8(v) {
  const s = Math.floor(v / (1 << PRECISION_BITS));  // v may exceed 32 bits before the shift
  return s < 0 ? 0 : s > 255 ? 255 : s;
}

// Pillow's Image.resize((outW, outH), BILINEAR) of a one-channel 8-bit image.
export function resizeBilinear(grey, inW, inH, outW, outH) {
  let src = grey;
  let w = inW;
  if (outW !== inW) {
    const { bounds, kk, ksize } = coefficients(inW, outW);
    const tmp = new Uint8ClampedArray(outW * inH);
    for (let y = 0; y < inH; y++) {
      for (let xx = 0; xx < outW; xx++) {
        const xmin = bounds[xx * 2], xmax = bounds[xx * 2 + 1];
        let ss = 1 << (PRECISION_BITS - 1);
        for (let x = 0; x < xmax; x++) ss += src[y * inW + x + xmin] * kk[xx * ksize + x];
        tmp[y * outW + xx] = clip8(ss);
      }
    }
    src = tmp;
    w = outW;
  }
  if (outH !== inH) {
    const { bounds, kk, ksize } = coefficients(inH, outH);
    const out = new Uint8ClampedArray(w * outH);
    for (let yy = 0; yy < outH; yy++) {
      const ymin = bounds[yy * 2], ymax = bounds[yy * 2 + 1];
      for (let x = 0; x < w; x++) {
        let ss = 1 << (PRECISION_BITS - 1);
        for (let y = 0; y < ymax; y++) ss += src[(y + ymin) * w + x] * kk[yy * ksize + y];
        out[yy * w + x] = clip8(ss);
      }
    }
    src = out;
  }
  return src;
}

// EmotionModel.prepare for one crop: RGB side x side -> Float32Array of h x w x c pixels (0-255).
export function prepare(crop, inputShape) {
  const [h, w, c] = inputShape;
  const n = crop.side * crop.side;
  if (c === 1) {
    return Float32Array.from(resizeBilinear(toGrey(crop.pixels, n), crop.side, crop.side, w, h));
  }
  const out = new Float32Array(h * w * c);
  for (let ch = 0; ch < c; ch++) {
    const plane = new Uint8ClampedArray(n);
    for (let i = 0; i < n; i++) plane[i] = crop.pixels[3 * i + ch];
    const small = resizeBilinear(plane, crop.side, crop.side, w, h);
    for (let i = 0; i < h * w; i++) out[i * c + ch] = small[i];
  }
  return out;
}

export const VIEW_COUNT = { none: 1, mirror: 2, crops: 12 };
const CROP_FRACTION = 11 / 12;

function mirror(face, h, w, c) {
  const out = new Float32Array(face.length);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let k = 0; k < c; k++) out[(y * w + x) * c + k] = face[(y * w + (w - 1 - x)) * c + k];
  return out;
}

// trainer.views._resize_matrix: bilinear weights with half-pixel centres, as cv2.INTER_LINEAR.
function resizeMatrix(src, dst) {
  const m = new Float32Array(dst * src);
  for (let i = 0; i < dst; i++) {
    const pos = Math.min(Math.max((i + 0.5) * src / dst - 0.5, 0), src - 1);
    const low = Math.floor(pos);
    const high = Math.min(low + 1, src - 1);
    const frac = pos - low;
    m[i * src + low] += 1 - frac;
    m[i * src + high] += frac;
  }
  return m;
}

// trainer.views.views for one face: the list of views, each h x w x c float32.
export function views(face, inputShape, viewSet) {
  const [h, w, c] = inputShape;
  const out = [face];
  if (viewSet === "none") return out;
  const mirrored = mirror(face, h, w, c);
  out.push(mirrored);
  if (viewSet === "mirror") return out;
  const crop = pyRound(h * CROP_FRACTION);
  const far = h - crop, mid = Math.floor((h - crop) / 2);
  const corners = [[mid, mid], [0, 0], [0, far], [far, 0], [far, far]];
  const rows = resizeMatrix(crop, h), cols = resizeMatrix(crop, w);
  for (const source of [face, mirrored]) {
    for (const [top, left] of corners) {
      const view = new Float32Array(h * w * c);
      for (let i = 0; i < h; i++)
        for (let l = 0; l < w; l++)
          for (let k = 0; k < c; k++) {
            let s = 0;
            for (let j = 0; j < crop; j++) {
              const r = rows[i * crop + j];
              if (r === 0) continue;
              for (let kk = 0; kk < crop; kk++) {
                const q = cols[l * crop + kk];
                if (q !== 0) s += r * source[((top + j) * w + left + kk) * c + k] * q;
              }
            }
            view[(i * w + l) * c + k] = s;
          }
      out.push(view);
    }
  }
  return out;
}

// trainer.calibration.apply_temperature for one row of probabilities.
export function applyTemperature(probs, temperature) {
  if (temperature === 1.0) return Float32Array.from(probs);
  const logp = Array.from(probs, (p) => Math.log(Math.min(Math.max(p, 1e-12), 1.0)) / temperature);
  const top = Math.max(...logp);
  const e = logp.map((v) => Math.exp(v - top));
  const sum = e.reduce((a, b) => a + b, 0);
  return Float32Array.from(e, (v) => v / sum);
}
