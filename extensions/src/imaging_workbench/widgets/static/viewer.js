// CaseViewer front end: three planes drawn from voxels held in the browser.
// Plain ES module for anywidget; no imports, nothing fetched at run time.
//
// Data: the kernel answers our "ready" with the three planes through the current position,
// then the volume in chunks of slices (int16 or float32, (z, y, x) C order), then the label
// mask the same way (uint8). Windowing is a lookup table; drawing a 512x512 plane is a loop.

const PLANES = ["axial", "coronal", "sagittal"];
const OPPOSITE = { L: "R", R: "L", P: "A", A: "P", S: "I", I: "S" };
const TRAIT_OF = { axial: "slice", coronal: "coronal", sagittal: "sagittal" };

// ---- voxel store, one per model (shared by every view of it) -------------------------------

class Store {
  constructor(model) {
    this.model = model;
    this.views = new Set();
    this.reset();
  }
  reset() {
    const [nz, ny, nx] = this.model.get("shape");
    this.nz = nz; this.ny = ny; this.nx = nx;
    this.vol = null; this.loaded = new Uint8Array(nz); this.nLoaded = 0;
    this.planes = null; // {index:[z,y,x], data:[axial, coronal, sagittal]}
    this.mask = null; this.maskLoaded = new Uint8Array(nz); this.maskPlanes = null; this.maskVersion = -1;
  }
  typed(buffer) {
    const b = buffer.buffer ? buffer : new DataView(buffer);
    const Ctor = this.model.get("dtype") === "float32" ? Float32Array : Int16Array;
    return new Ctor(b.buffer, b.byteOffset, b.byteLength / Ctor.BYTES_PER_ELEMENT);
  }
  bytes(buffer) {
    const b = buffer.buffer ? buffer : new DataView(buffer);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }
  onMessage(msg, buffers) {
    const n = this.nz * this.ny * this.nx;
    if (msg.type === "planes") {
      this.planes = { index: msg.index, data: buffers.map((b) => this.typed(b)) };
    } else if (msg.type === "chunk") {
      if (!this.vol) this.vol = this.model.get("dtype") === "float32" ? new Float32Array(n) : new Int16Array(n);
      this.vol.set(this.typed(buffers[0]), msg.z0 * this.ny * this.nx);
      for (let z = msg.z0; z < msg.z1; z++) if (!this.loaded[z]) { this.loaded[z] = 1; this.nLoaded++; }
    } else if (msg.type === "mask_planes" || msg.type === "mask_chunk") {
      if (msg.version !== this.maskVersion) {
        this.maskVersion = msg.version; this.mask = new Uint8Array(n); this.maskLoaded = new Uint8Array(this.nz);
        this.maskPlanes = null;
      }
      if (msg.type === "mask_planes") this.maskPlanes = { index: msg.index, data: buffers.map((b) => this.bytes(b)) };
      else {
        this.mask.set(this.bytes(buffers[0]), msg.z0 * this.ny * this.nx);
        this.maskLoaded.fill(1, msg.z0, msg.z1);
      }
    } else if (msg.type === "mask_clear") {
      this.mask = null; this.maskPlanes = null; this.maskVersion = msg.version;
    } else return;
    for (const view of this.views) view.dataArrived(msg);
  }
  complete() { return this.nLoaded === this.nz && this.nz > 0; }
}

// anywidget hands initialize() and render() different proxies of one model: key by our own id.
const stores = new Map();

// ---- sampling one plane out of the store -------------------------------------------------

// Geometry of a plane: columns/rows are voxel axes; `flip` puts superior at the top.
function planeGeometry(plane, model) {
  const [nz, ny, nx] = model.get("shape");
  const [sz, sy, sx] = model.get("spacing");
  const letters = model.get("axis_letters");
  if (plane === "axial") return { cols: nx, rows: ny, cmm: sx, rmm: sy, h: letters[0], v: letters[1], flip: false };
  const flip = letters[2] === "S";
  if (plane === "coronal") return { cols: nx, rows: nz, cmm: sx, rmm: sz, h: letters[0], v: letters[2], flip };
  return { cols: ny, rows: nz, cmm: sy, rmm: sz, h: letters[1], v: letters[2], flip };
}

// Voxel (x, y, z) for (col, row-in-voxel-order) of a plane at index `k`.
function voxelOf(plane, col, row, k) {
  if (plane === "axial") return [col, row, k];
  if (plane === "coronal") return [col, k, row];
  return [k, col, row];
}

// Fill `out` (Uint32 RGBA, rows top to bottom) with the windowed plane.
function fillPlane(view, plane, out) {
  const st = view.store, m = view.model;
  const g = planeGeometry(plane, m);
  const k = m.get(TRAIT_OF[plane]);
  const { nx, ny } = st;
  const axisIdx = PLANES.indexOf(plane);
  // Source: the whole volume where this plane is loaded, else the first planes if they match.
  let src = null, base = 0, cstride = 1, rstride = 0, have = true;
  const haveSlices = plane === "axial" ? st.loaded[k] : st.complete();
  if (st.vol && haveSlices) {
    src = st.vol;
    if (plane === "axial") { base = k * ny * nx; cstride = 1; rstride = nx; }
    else if (plane === "coronal") { base = k * nx; cstride = 1; rstride = ny * nx; }
    else { base = k; cstride = nx; rstride = ny * nx; }
  } else if (st.planes && st.planes.index[axisIdx] === k) {
    src = st.planes.data[axisIdx]; base = 0; cstride = 1; rstride = g.cols;
  } else have = false;
  // Overlay source, same logic.
  let msrc = null, mbase = 0, mc = 1, mr = 0;
  if (st.mask && m.get("visible_segments").length) {
    const mHave = plane === "axial" ? st.maskLoaded[k] : st.maskLoaded.every((v) => v === 1);
    if (mHave) {
      msrc = st.mask;
      if (plane === "axial") { mbase = k * ny * nx; mc = 1; mr = nx; }
      else if (plane === "coronal") { mbase = k * nx; mc = 1; mr = ny * nx; }
      else { mbase = k; mc = nx; mr = ny * nx; }
    } else if (st.maskPlanes && st.maskPlanes.index[axisIdx] === k) {
      msrc = st.maskPlanes.data[axisIdx]; mbase = 0; mc = 1; mr = g.cols;
    }
  }
  if (!have) { out.fill(0xff202020); return false; }
  const lut = view.lut(), isInt = src instanceof Int16Array;
  const lo = view.lo, scale = 255 / view.win;
  const { cols, rows, flip } = g;
  const colors = msrc ? view.overlayTable() : null;
  for (let r = 0; r < rows; r++) {
    const vr = flip ? rows - 1 - r : r;
    let s = base + vr * rstride, o = r * cols;
    let ms = mbase + vr * mr;
    for (let c = 0; c < cols; c++, s += cstride, o++) {
      let px;
      if (isInt) px = lut[src[s] + 32768];
      else {
        let gr = (src[s] - lo) * scale; gr = gr < 0 ? 0 : gr > 255 ? 255 : gr | 0;
        px = 0xff000000 | (gr << 16) | (gr << 8) | gr;
      }
      if (msrc) {
        const lab = msrc[ms]; ms += mc;
        if (lab && colors[lab]) {
          const [cr, cg, cb, a] = colors[lab];
          const pr = px & 255, pg = (px >> 8) & 255, pb = (px >> 16) & 255;
          px = 0xff000000 | ((pb + (cb - pb) * a) << 16) | ((pg + (cg - pg) * a) << 8) | (pr + (cr - pr) * a);
        }
      }
      out[o] = px;
    }
  }
  return true;
}

// ---- one view (one place the widget is displayed) ------------------------------------------

class View {
  constructor(model, el, store) {
    this.model = model; this.el = el; this.store = store;
    this.zoom = { axial: 1, coronal: 1, sagittal: 1 };
    this.pan = { axial: [0, 0], coronal: [0, 0], sagittal: [0, 0] };
    this.active = "axial"; this.mode = "wl";
    this._lut = null; this._lutKey = ""; this._ov = null; this._ovKey = "";
    this.metrics = []; this.firstPixels = null; this.pendingEvent = null;
    this.build();
  }

  // DOM -------------------------------------------------------------------------------------
  build() {
    const el = this.el, m = this.model;
    el.innerHTML = "";
    this.root = document.createElement("div");
    this.root.className = "wb-viewer";
    this.root.tabIndex = 0;
    // Keys belong to the viewer, not to JupyterLab's notebook shortcuts.
    this.root.setAttribute("data-lm-suppress-shortcuts", "true");
    this.root.setAttribute("data-p-suppress-shortcuts", "true");
    this.root.__wb = this;
    el.appendChild(this.root);
    this.errorBox = div("wb-error", this.root);
    this.header = div("wb-header", this.root);
    this.toolbar = div("wb-toolbar", this.root);
    this.grid = div("wb-grid", this.root);
    this.readout = div("wb-readout", this.root);
    this.readout.textContent = "\u00a0";
    this.buildToolbar();
    this.cells = {};
    for (const p of PLANES) this.cells[p] = this.buildPlane(p);
    this.syncAll();
    this.root.addEventListener("keydown", (e) => this.onKey(e));
  }

  buildToolbar() {
    const tb = this.toolbar, m = this.model;
    this.presetSel = document.createElement("select");
    this.presetSel.className = "wb-preset";
    this.presetSel.title = "window/level preset";
    this.presetSel.addEventListener("change", () => {
      const name = this.presetSel.value, wl = m.get("presets")[name];
      if (wl) { m.set({ preset: name, window: wl[0], level: wl[1] }); this.save(); }
    });
    tb.appendChild(this.presetSel);
    this.wlText = span("wb-wl", tb);
    this.modeBtns = {};
    for (const [mode, label, tip] of [["wl", "W/L", "drag: window (left-right) and level (up-down)"],
                                      ["pan", "Pan", "drag to pan (or shift+drag)"],
                                      ["zoom", "Zoom", "drag up/down to zoom (or ctrl+wheel)"]]) {
      const b = button(label, tip, tb, () => this.setMode(mode));
      b.classList.add("wb-mode"); this.modeBtns[mode] = b;
    }
    button("Reset", "reset zoom and pan (double-click a plane)", tb, () => this.resetView());
    this.segBox = span("wb-segments", tb);
    this.opacity = document.createElement("input");
    Object.assign(this.opacity, { type: "range", min: 0, max: 1, step: 0.05, title: "overlay opacity" });
    this.opacity.className = "wb-opacity";
    this.opacity.addEventListener("input", () => { m.set("overlay_opacity", +this.opacity.value); this.save(); });
    tb.appendChild(this.opacity);
    this.setMode("wl");
  }

  buildPlane(plane) {
    const cell = div(`wb-plane wb-${plane}`, this.grid);
    const canvas = document.createElement("canvas");
    canvas.className = `wb-canvas wb-canvas-${plane}`;
    cell.appendChild(canvas);
    const labels = {};
    for (const pos of ["top", "bottom", "left", "right"]) labels[pos] = span(`wb-orient wb-orient-${pos}`, cell);
    const info = span("wb-info", cell);
    const slider = document.createElement("input");
    slider.type = "range"; slider.className = `wb-slider wb-slider-${plane}`; slider.min = 0;
    slider.addEventListener("input", (e) => this.setIndex(plane, +slider.value, e));
    cell.appendChild(slider);
    const off = document.createElement("canvas");
    const c = { cell, canvas, labels, info, slider, off, image: null };
    this.attachPointer(plane, c);
    return c;
  }

  // state sync ---------------------------------------------------------------------------------
  syncAll() {
    const m = this.model;
    const err = m.get("error");
    this.errorBox.textContent = err;
    this.errorBox.style.display = err ? "block" : "none";
    const [nz] = m.get("shape");
    const empty = !nz;
    this.toolbar.style.display = this.grid.style.display = this.readout.style.display = empty ? "none" : "";
    this.header.textContent = m.get("title");
    this.root.dataset.state = empty ? (err ? "error" : "empty") : "ready";
    this.syncPresets(); this.syncSegments();
    const size = m.get("size");
    for (const p of PLANES) {
      const c = this.cells[p], g = planeGeometry(p, m);
      const dpr = window.devicePixelRatio || 1;
      c.canvas.width = Math.round(size * dpr); c.canvas.height = Math.round(size * dpr);
      c.canvas.style.width = c.canvas.style.height = size + "px";
      c.cell.style.width = size + "px";
      c.off.width = Math.max(1, g.cols); c.off.height = Math.max(1, g.rows);
      c.image = c.off.getContext("2d").createImageData(Math.max(1, g.cols), Math.max(1, g.rows));
      c.slider.max = Math.max(0, (p === "axial" ? m.get("shape")[0] : p === "coronal" ? m.get("shape")[1] : m.get("shape")[2]) - 1);
      const flipTop = g.flip ? g.v : OPPOSITE[g.v];
      c.labels.left.textContent = OPPOSITE[g.h] || ""; c.labels.right.textContent = g.h || "";
      c.labels.top.textContent = flipTop || ""; c.labels.bottom.textContent = OPPOSITE[flipTop] || "";
    }
    if (!empty) { this.redraw(); this.markProgress(); }
  }

  syncPresets() {
    const m = this.model, names = Object.keys(m.get("presets"));
    this.presetSel.innerHTML = "";
    for (const n of [...names, "custom"]) {
      const o = document.createElement("option"); o.value = n; o.textContent = n; this.presetSel.appendChild(o);
    }
    this.syncWindowText();
  }

  syncWindowText() {
    const m = this.model;
    const wl = m.get("presets")[m.get("preset")];
    const custom = !wl || Math.abs(wl[0] - m.get("window")) > 1e-6 || Math.abs(wl[1] - m.get("level")) > 1e-6;
    this.presetSel.value = custom ? "custom" : m.get("preset");
    this.wlText.textContent = `W ${fmt(m.get("window"))} L ${fmt(m.get("level"))}`;
  }

  syncSegments() {
    const m = this.model, vis = new Set(m.get("visible_segments"));
    this.segBox.innerHTML = "";
    for (const s of m.get("segments")) {
      const lab = document.createElement("label");
      lab.className = "wb-seg"; lab.title = `segment ${s.number}`;
      const cb = document.createElement("input");
      cb.type = "checkbox"; cb.checked = vis.has(s.number); cb.dataset.segment = s.number;
      cb.addEventListener("change", () => {
        const cur = new Set(m.get("visible_segments"));
        if (cb.checked) cur.add(s.number); else cur.delete(s.number);
        m.set("visible_segments", [...cur].sort((a, b) => a - b)); this.save();
      });
      const sw = span("wb-swatch", lab); sw.style.background = s.color;
      lab.prepend(cb); lab.appendChild(document.createTextNode(s.label));
      this.segBox.appendChild(lab);
    }
    const any = m.get("segments").length > 0;
    this.opacity.style.display = any ? "" : "none";
    this.opacity.value = m.get("overlay_opacity");
  }

  // drawing -----------------------------------------------------------------------------------
  lut() {
    const m = this.model, w = m.get("window"), l = m.get("level");
    this.win = Math.max(w, 1e-6); this.lo = l - this.win / 2;
    const key = `${w}/${l}`;
    if (this._lutKey !== key) {
      if (!this._lut) this._lut = new Uint32Array(65536);
      const lut = this._lut, lo = this.lo, scale = 255 / this.win;
      for (let i = 0; i < 65536; i++) {
        let g = (i - 32768 - lo) * scale; g = g < 0 ? 0 : g > 255 ? 255 : g | 0;
        lut[i] = 0xff000000 | (g << 16) | (g << 8) | g;
      }
      this._lutKey = key;
    }
    return this._lut;
  }

  overlayTable() {
    const m = this.model, a = m.get("overlay_opacity");
    const key = JSON.stringify([m.get("segments"), m.get("visible_segments"), a]);
    if (this._ovKey !== key) {
      const t = new Array(256).fill(null), vis = new Set(m.get("visible_segments"));
      for (const s of m.get("segments")) {
        if (!vis.has(s.number)) continue;
        const h = s.color.replace("#", "");
        t[s.number] = [parseInt(h.slice(0, 2), 16), parseInt(h.slice(2, 4), 16), parseInt(h.slice(4, 6), 16), a];
      }
      this._ov = t; this._ovKey = key;
    }
    return this._ov;
  }

  renderPlane(plane) {
    const c = this.cells[plane];
    if (!c.image) return;
    const out = new Uint32Array(c.image.data.buffer);
    c.hasPixels = fillPlane(this, plane, out);
    c.off.getContext("2d").putImageData(c.image, 0, 0);
    this.present(plane);
  }

  // Screen placement of a plane: destination rectangle in canvas pixels.
  placement(plane) {
    const c = this.cells[plane], g = planeGeometry(plane, this.model);
    const W = c.canvas.width, H = c.canvas.height;
    const wmm = g.cols * g.cmm, hmm = g.rows * g.rmm;
    const s = Math.min(W / wmm, H / hmm) * this.zoom[plane];
    const dw = wmm * s, dh = hmm * s;
    const [px, py] = this.pan[plane];
    return { g, s, dw, dh, dx: (W - dw) / 2 + px, dy: (H - dh) / 2 + py, W, H };
  }

  present(plane) {
    const c = this.cells[plane], m = this.model, ctx = c.canvas.getContext("2d");
    const P = this.placement(plane), g = P.g;
    ctx.fillStyle = "#000"; ctx.fillRect(0, 0, P.W, P.H);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(c.off, 0, 0, g.cols, g.rows, P.dx, P.dy, P.dw, P.dh);
    // crosshair: the other two planes' positions
    const [z, y, x] = [m.get("slice"), m.get("coronal"), m.get("sagittal")];
    const [hc, vr] = plane === "axial" ? [x, y] : plane === "coronal" ? [x, z] : [y, z];
    const row = g.flip ? g.rows - 1 - vr : vr;
    const cx = P.dx + (hc + 0.5) * P.dw / g.cols, cy = P.dy + (row + 0.5) * P.dh / g.rows;
    const dpr = window.devicePixelRatio || 1;
    ctx.lineWidth = dpr;
    ctx.strokeStyle = "rgba(255, 200, 0, 0.55)";
    ctx.setLineDash([4 * dpr, 4 * dpr]);
    ctx.beginPath(); ctx.moveTo(cx, 0); ctx.lineTo(cx, P.H); ctx.moveTo(0, cy); ctx.lineTo(P.W, cy); ctx.stroke();
    ctx.setLineDash([]);
    this.drawScaleBar(ctx, P, dpr);
    const n = plane === "axial" ? m.get("shape")[0] : plane === "coronal" ? m.get("shape")[1] : m.get("shape")[2];
    const k = m.get(TRAIT_OF[plane]);
    c.info.textContent = `${plane} ${k + 1}/${n}` + (c.hasPixels ? "" : " (loading)");
    c.slider.value = k;
    this.root.dataset[plane] = k;
  }

  drawScaleBar(ctx, P, dpr) {
    const target = P.W / 4 / P.s; // mm that a quarter of the width spans
    const p10 = Math.pow(10, Math.floor(Math.log10(target)));
    const mm = [5, 2, 1].map((f) => f * p10).find((v) => v <= target) || p10;
    const len = mm * P.s, x1 = P.W - 10 * dpr, x0 = x1 - len, yb = P.H - 12 * dpr;
    ctx.strokeStyle = "#fff"; ctx.lineWidth = 2 * dpr;
    ctx.beginPath(); ctx.moveTo(x0, yb); ctx.lineTo(x1, yb);
    ctx.moveTo(x0, yb - 4 * dpr); ctx.lineTo(x0, yb + 4 * dpr); ctx.moveTo(x1, yb - 4 * dpr); ctx.lineTo(x1, yb + 4 * dpr);
    ctx.stroke();
    ctx.fillStyle = "#fff"; ctx.font = `${11 * dpr}px sans-serif`; ctx.textAlign = "right";
    ctx.fillText(`${mm >= 10 ? mm : +mm.toFixed(1)} mm`, x1, yb - 6 * dpr);
    this.scaleBarMm = mm;
  }

  redraw(planes = PLANES) {
    for (const p of planes) this.renderPlane(p);
    for (const p of PLANES) if (!planes.includes(p)) this.present(p);
    this.syncWindowText();
    this.noteDrawn();
  }

  noteDrawn() {
    const now = performance.now();
    if (this.firstPixels === null && PLANES.some((p) => this.cells[p].hasPixels)) {
      this.firstPixels = now;
      (window.__wbFirstPixels = window.__wbFirstPixels || []).push(performance.timeOrigin + now);
    }
    if (this.pendingEvent !== null) {
      this.metrics.push({ event: this.pendingEvent, drawn: now });
      if (this.metrics.length > 5000) this.metrics.shift();
      this.pendingEvent = null;
    }
  }

  dataArrived(msg) {
    const st = this.store, m = this.model;
    if (msg.type === "planes") this.redraw();
    else if (msg.type === "chunk") {
      const z = m.get("slice");
      if (msg.z0 <= z && z < msg.z1 && !this.cells.axial.hasPixels) this.redraw(["axial"]);
      if (st.complete()) this.redraw();
    } else if (msg.type === "mask_chunk") {
      if (st.maskLoaded.every((v) => v === 1)) this.redraw();
    } else this.redraw();
    this.markProgress();
  }

  // Loading progress as data attributes (tests and benchmarks wait on them). Also called on
  // render: in Voila the voxels can all arrive before the view exists.
  markProgress() {
    const st = this.store, d = this.root.dataset;
    d.chunks = st.nLoaded;
    if (st.complete()) d.loaded = "1";
    if (st.mask && st.maskLoaded.every((v) => v === 1)) d.maskVersion = st.maskVersion;
  }

  // interaction -------------------------------------------------------------------------------
  setIndex(plane, k, event) {
    const m = this.model, [nz, ny, nx] = m.get("shape");
    const n = plane === "axial" ? nz : plane === "coronal" ? ny : nx;
    k = Math.max(0, Math.min(n - 1, Math.round(k)));
    if (k === m.get(TRAIT_OF[plane])) return;
    this.pendingEvent = event && event.timeStamp ? event.timeStamp : performance.now();
    m.set(TRAIT_OF[plane], k); // the change handler redraws
    this.save();
  }

  setMode(mode) {
    this.mode = mode;
    for (const [k, b] of Object.entries(this.modeBtns)) b.classList.toggle("wb-active", k === mode);
  }

  resetView(plane) {
    for (const p of plane ? [plane] : PLANES) { this.zoom[p] = 1; this.pan[p] = [0, 0]; this.present(p); }
  }

  save() {
    // Send at the end of this event, never later: a delayed send lets the kernel's echo of an
    // older value arrive first and undo the user's change. Drawing never waits for the kernel.
    if (this._savePending) return;
    this._savePending = true;
    queueMicrotask(() => { this._savePending = false; this.model.save_changes(); });
  }

  onKey(e) {
    const p = this.active, k = this.model.get(TRAIT_OF[p]);
    const step = { ArrowUp: 1, ArrowRight: 1, PageUp: 10, ArrowDown: -1, ArrowLeft: -1, PageDown: -10 }[e.key];
    if (step !== undefined) this.setIndex(p, k + step, e);
    else if (e.key === "Home") this.setIndex(p, 0, e);
    else if (e.key === "End") this.setIndex(p, 1e9, e);
    else if (e.key === "+" || e.key === "=") { this.zoom[p] *= 1.25; this.present(p); }
    else if (e.key === "-") { this.zoom[p] /= 1.25; this.present(p); }
    else if (e.key === "r") this.resetView();
    else return;
    e.preventDefault(); e.stopPropagation();
  }

  // canvas pixel -> voxel (x, y, z) or null
  voxelAt(plane, clientX, clientY) {
    const c = this.cells[plane], r = c.canvas.getBoundingClientRect();
    const dpr = c.canvas.width / r.width;
    const P = this.placement(plane), g = P.g;
    const col = Math.floor(((clientX - r.left) * dpr - P.dx) / P.dw * g.cols);
    const rowDisp = Math.floor(((clientY - r.top) * dpr - P.dy) / P.dh * g.rows);
    if (col < 0 || col >= g.cols || rowDisp < 0 || rowDisp >= g.rows) return null;
    const row = g.flip ? g.rows - 1 - rowDisp : rowDisp;
    return voxelOf(plane, col, row, this.model.get(TRAIT_OF[plane]));
  }

  // voxel (x, y, z) -> client coordinates of its centre on a plane (tests, benchmarks)
  clientOf(plane, x, y, z) {
    const c = this.cells[plane], r = c.canvas.getBoundingClientRect();
    const dpr = c.canvas.width / r.width, P = this.placement(plane), g = P.g;
    const [col, row] = plane === "axial" ? [x, y] : plane === "coronal" ? [x, z] : [y, z];
    const rowDisp = g.flip ? g.rows - 1 - row : row;
    return [r.left + (P.dx + (col + 0.5) * P.dw / g.cols) / dpr, r.top + (P.dy + (rowDisp + 0.5) * P.dh / g.rows) / dpr];
  }

  valueAt(x, y, z) {
    const st = this.store, m = this.model;
    if (st.vol && st.loaded[z]) return st.vol[(z * st.ny + y) * st.nx + x];
    if (st.planes && st.planes.index[0] === z) return st.planes.data[0][y * st.nx + x];
    return null;
  }

  showReadout(v) {
    if (!v) { this.readout.textContent = "\u00a0"; return; }
    const [x, y, z] = v, A = this.model.get("affine");
    const p = [0, 1, 2].map((i) => A[4 * i] * x + A[4 * i + 1] * y + A[4 * i + 2] * z + A[4 * i + 3]);
    const val = this.valueAt(x, y, z), unit = this.model.get("unit");
    const vtxt = val === null ? "…" : `${unit || "value"} ${+(+val).toFixed(unit ? 0 : 2)}`;
    this.readout.textContent = `${vtxt}   (${p.map((q) => q.toFixed(1)).join(", ")}) mm   voxel [${x}, ${y}, ${z}]`;
  }

  attachPointer(plane, c) {
    const cv = c.canvas;
    let drag = null;
    cv.addEventListener("wheel", (e) => {
      e.preventDefault();
      this.active = plane;
      if (e.ctrlKey || e.metaKey) { this.zoom[plane] *= e.deltaY < 0 ? 1.1 : 1 / 1.1; this.present(plane); return; }
      this.setIndex(plane, this.model.get(TRAIT_OF[plane]) + (e.deltaY > 0 ? 1 : -1), e);
    }, { passive: false });
    cv.addEventListener("contextmenu", (e) => e.preventDefault());
    cv.addEventListener("pointerdown", (e) => {
      this.active = plane; this.root.focus({ preventScroll: true });
      cv.setPointerCapture(e.pointerId);
      const m = this.model;
      const mode = e.button === 1 || e.button === 2 || e.shiftKey ? "pan" : this.mode;
      drag = { x: e.clientX, y: e.clientY, moved: false, mode, w: m.get("window"), l: m.get("level"),
               zoom: this.zoom[plane], pan: [...this.pan[plane]] };
    });
    cv.addEventListener("pointermove", (e) => {
      this.showReadout(this.voxelAt(plane, e.clientX, e.clientY));
      if (!drag) return;
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) < 3) return;
      drag.moved = true;
      const dpr = cv.width / cv.getBoundingClientRect().width;
      if (drag.mode === "pan") { this.pan[plane] = [drag.pan[0] + dx * dpr, drag.pan[1] + dy * dpr]; this.present(plane); }
      else if (drag.mode === "zoom") { this.zoom[plane] = Math.max(0.1, drag.zoom * Math.exp(-dy / 150)); this.present(plane); }
      else {
        const k = Math.max(drag.w, 1) / 300;
        this.model.set({ window: Math.max(1, drag.w + dx * k), level: drag.l - dy * k, preset: "custom" });
        this.save();
      }
    });
    const end = (e) => {
      if (drag && !drag.moved && e.type === "pointerup" && e.button === 0) {
        const v = this.voxelAt(plane, e.clientX, e.clientY);
        if (v) {
          this.pendingEvent = e.timeStamp;
          this.model.set({ slice: v[2], coronal: v[1], sagittal: v[0] }); this.save();
        }
      }
      drag = null;
    };
    cv.addEventListener("pointerup", end);
    cv.addEventListener("pointercancel", end);
    cv.addEventListener("pointerleave", () => this.showReadout(null));
    cv.addEventListener("dblclick", () => this.resetView(plane));
  }
}

// ---- helpers -----------------------------------------------------------------------------------

function div(cls, parent) { const d = document.createElement("div"); d.className = cls; parent.appendChild(d); return d; }
function span(cls, parent) { const d = document.createElement("span"); d.className = cls; parent.appendChild(d); return d; }
function button(text, title, parent, onClick) {
  const b = document.createElement("button"); b.type = "button"; b.textContent = text; b.title = title;
  b.className = "wb-button"; b.addEventListener("click", onClick); parent.appendChild(b); return b;
}
function fmt(v) { return Math.abs(v) >= 100 ? v.toFixed(0) : +v.toFixed(1); }

// ---- anywidget entry points ----------------------------------------------------------------------

export default {
  initialize({ model }) {
    const store = new Store(model);
    stores.set(model.get("viewer_id"), store);
    const onMsg = (msg, buffers) => store.onMessage(msg, buffers);
    // Ask for the voxels until they start coming: in Voila a message sent while the page's
    // kernel connection is still being set up can be lost. `token` lets the kernel answer once.
    let timer = null;
    const ask = (tries) => {
      clearTimeout(timer);
      if (!model.get("shape")[0] || store.planes || store.nLoaded || tries <= 0) return;
      model.send({ type: "ready", token: store.token });
      timer = setTimeout(() => ask(tries - 1), 1000);
    };
    const onShape = () => { store.reset(); store.token = Math.random().toString(36).slice(2); ask(30); };
    model.on("msg:custom", onMsg);
    model.on("change:shape", onShape);
    store.token = Math.random().toString(36).slice(2);
    ask(30);
    return () => {
      clearTimeout(timer);
      model.off("msg:custom", onMsg); model.off("change:shape", onShape); stores.delete(model.get("viewer_id"));
    };
  },
  render({ model, el }) {
    const store = stores.get(model.get("viewer_id"));
    const view = new View(model, el, store);
    store.views.add(view);
    const handlers = {
      "change:slice": () => view.redraw(["axial"]),
      "change:coronal": () => view.redraw(["coronal"]),
      "change:sagittal": () => view.redraw(["sagittal"]),
      "change:window change:level": () => view.redraw(),
      "change:preset change:presets": () => view.syncWindowText(),
      "change:segments change:visible_segments change:overlay_opacity": () => { view.syncSegments(); view.redraw(); },
      "change:error change:title change:size change:spacing change:axis_letters change:shape": () => view.syncAll(),
    };
    for (const [ev, fn] of Object.entries(handlers)) model.on(ev, fn);
    return () => {
      store.views.delete(view);
      for (const [ev, fn] of Object.entries(handlers)) model.off(ev, fn);
    };
  },
};
