// The embedding map: every point of a run is held here (one Arrow payload per run, keyed by its hash);
// classifier, datasets, level, colour, legend toggles, highlight, search, hover, zoom and box/lasso
// selection are applied in the browser. Python gets back a small JSON state (selection as a polygon
// in map coordinates plus the payload hash, zoom, hidden legend entries, clicks) — never point data.
import createScatterplot from 'regl-scatterplot';
import { tableFromIPC } from 'apache-arrow';
import { onRender, setComponentValue, setFrameHeight } from './streamlit.js';
import { drawContours } from './density.js';

const GLYPHS = ['●', '✕', '◆', '■', '✚', '▲', '★', '⬟', '✡', '▼', '✦', '⧗', '⋈', '◀', '▶', '✳'];
const BIG_SIZE = 7;          // px, whenever at most 200k points are in view
const SMALL_SIZE = 3;
const BIG_LIMIT = 200000;

const el = (id) => document.getElementById(id);
const canvas = el('canvas');
const status = el('status');
const tooltip = el('tooltip');

// A name on one line, as data_catalog.names.printable writes it: a file name holding a newline or a
// bidi override must not draw a second 'true: …' line or reorder the tooltip.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;
const SHORT = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
const printable = (v) => String(v).replace(UNPRINTABLE,
  (c) => SHORT[c] || `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
const monitor = { drawn: 0, loadedHash: null, payloadBytes: 0, renders: 0, drawSeq: 0, selected: 0, lastDrawMs: 0 };
window.__dfatlasMap = monitor;    // read by the browser tests and the benchmark

const cache = new Map();          // payload hash -> decoded data (one run per map, kept while the page lives)
let data = null;                  // the decoded payload shown now
let args = {};
let visible = new Int32Array(0);  // drawn point -> source row (face or video)
let mode = 'panZoom';
let density = false;
let hidden = { colour: new Set(), marker: new Set() };
let selection = null;             // {kind, polygon|true/pred|query|video, hash}
let selectedRows = [];            // source rows of the selection (for highlight and linked views)
let lastCommand = null;
let appliedInitial = false;
let request = 0;                  // counts requests for the payload (a reloaded frame asks again)
let requestedHash = null;
let suppressSelect = false;
let pendingLasso = false;
let clickSeq = 0;
let click = null;
let zoom = null;
let pointSize = BIG_SIZE;
const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel('dfatlas-map') : null;
const frameId = Math.random().toString(36).slice(2);

const scatterplot = createScatterplot({
  canvas,
  pointSize: BIG_SIZE,
  pointSizeSelected: 2,
  pointOutlineWidth: 1,
  opacity: 0.85,
  pointColor: ['#999999'],
  colorBy: 'valueA',
  sizeBy: null,
  lassoType: 'freeform',
  lassoOnLongPress: false,
  lassoClearEvent: 'deselect',
  deselectOnDblClick: true,
  deselectOnEscape: true,
  backgroundColor: [1, 1, 1, 1],
  performanceMode: false,
  pointScaleMode: 'constant',
  showReticle: false,
});

// ---- payload ------------------------------------------------------------------------------------

function decode(bytes, hash) {
  const table = tableFromIPC(bytes);
  const meta = JSON.parse(table.schema.metadata.get('dfatlas'));
  const col = (name) => table.getChild(name);
  const values = (name) => col(name).data.length === 1 ? col(name).data[0].values : col(name).toArray();
  const n = table.numRows;
  const x = values('x');
  const y = values('y');
  const [x0, y0, x1, y1] = meta.bounds;
  const scale = 1.9 / Math.max(x1 - x0, y1 - y0, 1e-9);
  const cx = (x0 + x1) / 2;
  const cy = (y0 + y1) / 2;
  const gx = new Float32Array(n);
  const gy = new Float32Array(n);
  for (let i = 0; i < n; i++) { gx[i] = (x[i] - cx) * scale; gy[i] = (y[i] - cy) * scale; }
  const video = col('video').data[0];
  const videoNames = video.dictionary.toArray();
  const d = {
    hash, meta, n, x, y, gx, gy, scale, cx, cy,
    dataset: values('dataset'), truth: values('true'), video: video.values, videoNames,
    pred: {}, vpred: {}, ok: {}, vok: {}, score: {},
  };
  for (const c of meta.classifiers) {
    d.pred[c] = values(`pred:${c}`); d.vpred[c] = values(`vpred:${c}`);
    d.ok[c] = values(`ok:${c}`); d.vok[c] = values(`vok:${c}`); d.score[c] = values(`score:${c}`);
  }
  d.videoLevel = videoLevel(d);
  return d;
}

// One point per video at the mean map position of its faces (the same rule as
// dashboard.components.scatter_map.selection.video_positions); the faces stay reachable at face level.
function videoLevel(d) {
  const nv = d.videoNames.length;
  const sx = new Float64Array(nv);
  const sy = new Float64Array(nv);
  const cnt = new Int32Array(nv);
  const first = new Int32Array(nv).fill(-1);
  for (let i = 0; i < d.n; i++) {
    const v = d.video[i];
    sx[v] += d.x[i]; sy[v] += d.y[i]; cnt[v] += 1;
    if (first[v] < 0) first[v] = i;
  }
  const x = new Float32Array(nv);
  const y = new Float32Array(nv);
  const gx = new Float32Array(nv);
  const gy = new Float32Array(nv);
  for (let v = 0; v < nv; v++) {
    x[v] = sx[v] / Math.max(cnt[v], 1); y[v] = sy[v] / Math.max(cnt[v], 1);
    gx[v] = (x[v] - d.cx) * d.scale; gy[v] = (y[v] - d.cy) * d.scale;
  }
  return { x, y, gx, gy, first, count: cnt };
}

// ---- what is drawn -------------------------------------------------------------------------------

// Per source row (face or video): its colour label, marker label, dataset, video.
function rows() {
  const d = data;
  const clf = args.config.classifier;
  const video = args.config.level === 'video';
  const first = d.videoLevel.first;
  const at = video ? (r) => first[r] : (r) => r;
  const pred = video ? d.vpred[clf] : d.pred[clf];
  const ok = video ? d.vok[clf] : d.ok[clf];
  const colourOf = {
    pred: (f) => d.meta.labels[pred[f]],
    true: (f) => d.meta.labels[d.truth[f]],
    correct: (f) => d.meta.correct[ok[f]],
    database: (f) => d.meta.databases[d.dataset[f]],
  }[args.config.colour] || ((f) => d.meta.labels[pred[f]]);
  return { n: video ? d.videoNames.length : d.n, at, colourOf, video,
    gx: video ? d.videoLevel.gx : d.gx, gy: video ? d.videoLevel.gy : d.gy,
    x: video ? d.videoLevel.x : d.x, y: video ? d.videoLevel.y : d.y, pred, ok };
}

function redraw({ keepCamera = true } = {}) {
  if (!data) return;
  const t0 = performance.now();
  const cfg = args.config;
  const r = rows();
  const d = data;
  const dsIndex = new Map(d.meta.datasets.map((name, i) => [name, i]));
  const shownDs = new Uint8Array(d.meta.datasets.length);
  for (const name of cfg.datasets) if (dsIndex.has(name)) shownDs[dsIndex.get(name)] = 1;
  const colours = cfg.colour_legend;
  const colourIdx = new Map(colours.map((e, i) => [e.id, i]));
  const markerIdx = new Map(cfg.marker_legend.map((e) => [e.id, e.symbol]));
  // marker = true class, or the predicted class when the colour shows the true class (config.marker)
  const markerOf = cfg.marker === 'pred' ? (f) => d.meta.labels[r.pred[f]] : (f) => d.meta.labels[d.truth[f]];
  const keep = new Int32Array(r.n);
  let m = 0;
  for (let i = 0; i < r.n; i++) {
    const f = r.at(i);
    if (f < 0 || !shownDs[d.dataset[f]]) continue;
    if (hidden.colour.size && hidden.colour.has(r.colourOf(f))) continue;
    if (hidden.marker.size && hidden.marker.has(markerOf(f))) continue;
    keep[m++] = i;
  }
  visible = keep.slice(0, m);
  const xs = new Float32Array(m);
  const ys = new Float32Array(m);
  const zs = new Float32Array(m);
  const ws = new Float32Array(m);
  const labels = d.meta.labels;
  const colourCache = new Map();
  for (let k = 0; k < m; k++) {
    const i = visible[k];
    const f = r.at(i);
    xs[k] = r.gx[i]; ys[k] = r.gy[i];
    const c = r.colourOf(f);
    let z = colourCache.get(c);
    if (z === undefined) { z = colourIdx.has(c) ? colourIdx.get(c) : colours.length; colourCache.set(c, z); }
    zs[k] = z;
    const s = markerIdx.get(markerOf(f));
    ws[k] = s === undefined ? 0 : s;
  }
  scatterplot.set({ pointColor: [...colours.map((e) => e.color), '#bbbbbb'], colorBy: 'valueA' });
  updatePointSize(m);
  const seq = ++monitor.drawSeq;
  monitor.drawn = 0;
  scatterplot.draw({ x: xs, y: ys, z: zs, w: ws }, { zDataType: 'categorical', wDataType: 'categorical' })
    .then(() => {
      if (seq !== monitor.drawSeq) return;
      reapplySelection();
      drawDensity();
      monitor.drawn = m;
      monitor.lastDrawMs = performance.now() - t0;
      updateStatus();
    });
  renderLegend();
}

function updatePointSize(nInView) {
  const size = nInView <= BIG_LIMIT ? BIG_SIZE : SMALL_SIZE;
  if (size !== pointSize) { pointSize = size; scatterplot.set({ pointSize: size }); }
}

function updateStatus() {
  const unit = args.config.level === 'video' ? 'videos' : 'faces';
  const sel = selectedRows.length ? ` · ${selectedRows.length.toLocaleString()} selected` : '';
  status.textContent = `${visible.length.toLocaleString()} ${unit} drawn${sel}`;
}

// ---- legend ----------------------------------------------------------------------------------------

function renderLegend() {
  const cfg = args.config;
  const box = el('legend');
  box.replaceChildren();
  const section = (title, entries, set, glyph) => {
    const h = document.createElement('h4');
    h.textContent = title;
    box.append(h);
    for (const e of entries) {
      const row = document.createElement('div');
      row.className = 'entry' + (set.has(e.id) ? ' off' : '');
      row.dataset.legend = `${set === hidden.colour ? 'colour' : 'marker'}:${e.id}`;
      const mark = document.createElement('span');
      mark.textContent = glyph(e);
      mark.style.color = e.color || '#31333f';
      const name = document.createElement('span');
      name.textContent = e.name;       // user strings as text, never HTML
      row.append(mark, name);
      row.addEventListener('click', () => {
        if (set.has(e.id)) set.delete(e.id); else set.add(e.id);
        redraw();
        emit();
      });
      box.append(row);
    }
  };
  section(`Colour: ${cfg.colour_title}`, cfg.colour_legend, hidden.colour, () => '●');
  section(`Marker: ${cfg.marker_title || 'true class'}`, cfg.marker_legend, hidden.marker, (e) => GLYPHS[e.symbol] || '●');
}

// ---- selection -----------------------------------------------------------------------------------

function toData(glx, gly) {
  return [glx / data.scale + data.cx, gly / data.scale + data.cy];
}

function insidePolygon(px, py, poly) {
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i];
    const [xj, yj] = poly[j];
    if ((yi > py) !== (yj > py) && px < ((xj - xi) * (py - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

// Drawn point indices matching a selection description (the same rules as selection.py).
function matches(sel) {
  if (!sel || !data) return [];
  const r = rows();
  const out = [];
  const d = data;
  if (sel.kind === 'lasso' || sel.kind === 'box') {
    const poly = sel.polygon;
    let xmin = Infinity; let xmax = -Infinity; let ymin = Infinity; let ymax = -Infinity;
    for (const [px, py] of poly) { xmin = Math.min(xmin, px); xmax = Math.max(xmax, px); ymin = Math.min(ymin, py); ymax = Math.max(ymax, py); }
    for (let k = 0; k < visible.length; k++) {
      const i = visible[k];
      const px = r.x[i]; const py = r.y[i];
      if (px < xmin || px > xmax || py < ymin || py > ymax) continue;
      if (insidePolygon(px, py, poly)) out.push(k);
    }
  } else if (sel.kind === 'cell') {
    const labels = d.meta.labels;
    for (let k = 0; k < visible.length; k++) {
      const f = r.at(visible[k]);
      if (labels[d.truth[f]] === sel.true && labels[r.pred[f]] === sel.pred) out.push(k);
    }
  } else if (sel.kind === 'search') {
    const q = sel.query.trim().toLowerCase();
    if (!q) return out;
    const names = args.config.class_names || {};
    const classHit = new Set(d.meta.labels.filter((l) => l.toLowerCase() === q || (names[l] || '').toLowerCase() === q));
    const videoHit = new Uint8Array(d.videoNames.length);
    d.videoNames.forEach((v, i) => { if (String(v).toLowerCase().includes(q)) videoHit[i] = 1; });
    for (let k = 0; k < visible.length; k++) {
      const f = r.at(visible[k]);
      if (videoHit[d.video[f]] || classHit.has(d.meta.labels[d.truth[f]])) out.push(k);
    }
  } else if (sel.kind === 'videos') {
    const want = new Set(sel.videos);
    for (let k = 0; k < visible.length; k++) {
      if (want.has(d.videoNames[d.video[r.at(visible[k])]])) out.push(k);
    }
  }
  return out;
}

function reapplySelection() {
  const idx = matches(selection);
  selectedRows = idx.map((k) => visible[k]);
  monitor.selected = idx.length;
  suppressSelect = true;
  if (idx.length) scatterplot.select(idx, { preventEvent: true }); else scatterplot.deselect({ preventEvent: true });
  suppressSelect = false;
}

function setSelection(sel, { zoomTo = false, broadcast = true } = {}) {
  selection = sel;
  reapplySelection();
  if (zoomTo && monitor.selected) {
    scatterplot.zoomToPoints(matches(sel), { padding: 0.3, transition: false });
  }
  updateStatus();
  if (broadcast) share('selection');
  emit();
}

scatterplot.subscribe('lassoEnd', ({ coordinates }) => {
  if (!data || coordinates.length < 3) return;
  const polygon = coordinates.map(([gx, gy]) => toData(gx, gy).map((v) => +v.toFixed(5)));
  pendingLasso = false;
  setSelection({ kind: mode === 'rectangle' ? 'box' : 'lasso', polygon, hash: data.hash });
});
scatterplot.subscribe('lassoStart', () => { pendingLasso = true; });
scatterplot.subscribe('select', ({ points }) => {
  if (suppressSelect || pendingLasso || !data || points.length !== 1) return;
  // A click on one point: the component says which (for the video drill-down) and selects its video.
  const f = rows().at(visible[points[0]]);
  const video = String(data.videoNames[data.video[f]]);
  click = { video, seq: ++clickSeq };
  setSelection({ kind: 'videos', videos: [video], hash: data.hash });
});
scatterplot.subscribe('deselect', () => {
  if (suppressSelect || !selection) return;
  setSelection(null);
});
scatterplot.subscribe('pointover', (k) => {
  if (!data || k >= visible.length) return;
  const r = rows();
  const f = r.at(visible[k]);
  const d = data;
  const names = args.config.class_names || {};
  const name = (l) => names[l] || l;
  const clf = args.config.classifier;
  const score = d.score[clf][f];
  const unit = r.video ? `video (${d.videoLevel.count[visible[k]]} faces)` : 'face';
  tooltip.textContent = `${printable(d.videoNames[d.video[f]])} — ${unit}\ntrue: ${name(d.meta.labels[d.truth[f]])} · `
    + `predicted: ${name(d.meta.labels[r.pred[f]])}${Number.isFinite(score) && !r.video ? ` · real-score ${score.toFixed(3)}` : ''}`;
  tooltip.style.whiteSpace = 'pre';
  const [sx, sy] = scatterplot.getScreenPosition(k) || [0, 0];
  tooltip.style.left = `${Math.min(sx + 12, canvas.clientWidth - 260)}px`;
  tooltip.style.top = `${sy + 12}px`;
  tooltip.hidden = false;
  hoverVideo = String(d.videoNames[d.video[f]]);
  share('hover');
});
scatterplot.subscribe('pointout', () => { tooltip.hidden = true; hoverVideo = null; share('hover'); });
let hoverVideo = null;

// ---- linked views (Compare): hover and selection by video id, between maps of one group ------------

function share(what) {
  if (!channel || !args.group || !data) return;
  const msg = { from: frameId, group: args.group, what };
  if (what === 'hover') msg.video = hoverVideo;
  else {
    const vids = new Set();
    for (const i of selectedRows) vids.add(String(data.videoNames[data.video[rows().at(i)]]));
    msg.videos = selection ? [...vids] : null;
  }
  channel.postMessage(msg);
}

if (channel) {
  channel.onmessage = ({ data: msg }) => {
    if (!data || !args.group || msg.group !== args.group || msg.from === frameId) return;
    if (msg.what === 'hover') {
      if (!msg.video) { scatterplot.hover(-1, { preventEvent: true }); return; }
      const idx = matches({ kind: 'videos', videos: [msg.video] });
      if (idx.length) scatterplot.hover(idx[0], { showReticleOnce: true, preventEvent: true });
    } else if (msg.what === 'selection') {
      setSelection(msg.videos ? { kind: 'videos', videos: msg.videos, hash: data.hash, linked: true } : null,
        { broadcast: false });
    }
  };
}

// ---- density ---------------------------------------------------------------------------------------

function drawDensity() {
  const layer = el('contours');
  layer.width = layer.clientWidth * devicePixelRatio;
  layer.height = layer.clientHeight * devicePixelRatio;
  const ctx = layer.getContext('2d');
  ctx.clearRect(0, 0, layer.width, layer.height);
  if (!density || !visible.length) return;
  const r = rows();
  const { a, b, c, e } = screenMapping();
  drawContours(ctx, visible, r.gx, r.gy, (gx) => (a * gx + b) * devicePixelRatio,
    (gy) => (c * gy + e) * devicePixelRatio, layer.width, layer.height);
}

// GL -> CSS pixel mapping (an axis-aligned affine map) from two drawn points' screen positions.
function screenMapping() {
  const r = rows();
  let lo = 0; let hi = 0; let blo = 0; let bhi = 0;
  for (let k = 0; k < visible.length; k++) {
    const i = visible[k];
    if (r.gx[i] < r.gx[visible[lo]]) lo = k;
    if (r.gx[i] > r.gx[visible[hi]]) hi = k;
    if (r.gy[i] < r.gy[visible[blo]]) blo = k;
    if (r.gy[i] > r.gy[visible[bhi]]) bhi = k;
  }
  const p = scatterplot.getScreenPosition(lo); const q = scatterplot.getScreenPosition(hi);
  const u = scatterplot.getScreenPosition(blo); const w = scatterplot.getScreenPosition(bhi);
  const dx = r.gx[visible[hi]] - r.gx[visible[lo]] || 1;
  const dy = r.gy[visible[bhi]] - r.gy[visible[blo]] || 1;
  const a = (q[0] - p[0]) / dx;
  const c = (w[1] - u[1]) / dy;
  return { a, b: p[0] - a * r.gx[visible[lo]], c, e: u[1] - c * r.gy[visible[blo]] };
}

let viewTimer = null;
scatterplot.subscribe('view', () => {
  tooltip.hidden = true;
  clearTimeout(viewTimer);
  viewTimer = setTimeout(() => {
    if (!data) return;
    const target = scatterplot.get('cameraTarget');
    const distance = scatterplot.get('cameraDistance');
    const [cx, cy] = toData(target[0], target[1]);
    const next = [+cx.toFixed(4), +cy.toFixed(4), +(Array.isArray(distance) ? distance[0] : distance).toFixed(4)];
    countInView();
    drawDensity();
    if (!zoom || next.some((v, i) => v !== zoom[i])) { zoom = next; emit(); }
  }, 350);
});

function countInView() {
  const { a, b, c, e } = screenMapping();
  const r = rows();
  const w = canvas.clientWidth; const h = canvas.clientHeight;
  let n = 0;
  for (let k = 0; k < visible.length; k++) {
    const sx = a * r.gx[visible[k]] + b; const sy = c * r.gy[visible[k]] + e;
    if (sx >= 0 && sx <= w && sy >= 0 && sy <= h) n++;
  }
  updatePointSize(n);
}

// ---- toolbar ---------------------------------------------------------------------------------------

function setMode(next) {
  mode = next;
  scatterplot.set(next === 'panZoom' ? { mouseMode: 'panZoom' } : { mouseMode: 'lasso', lassoType: next });
  for (const b of document.querySelectorAll('#toolbar button[data-mode]')) b.classList.toggle('on', b.dataset.mode === next);
}
for (const b of document.querySelectorAll('#toolbar button[data-mode]')) b.addEventListener('click', () => setMode(b.dataset.mode));
el('density').addEventListener('click', () => { density = !density; el('density').classList.toggle('on', density); drawDensity(); emit(); });
el('reset').addEventListener('click', () => fitAll());
el('search').addEventListener('change', (ev) => {
  const q = ev.target.value;
  setSelection(q.trim() ? { kind: 'search', query: q, hash: data && data.hash } : null, { zoomTo: true });
});
setMode('lasso');

// For the browser tests: screen positions (CSS px) of the drawn points of one true class.
monitor.screenPoints = (label, limit = 5000) => {
  if (!data) return [];
  const r = rows();
  const out = [];
  for (let k = 0; k < visible.length && out.length < limit; k++) {
    if (data.meta.labels[data.truth[r.at(visible[k])]] === label) out.push(scatterplot.getScreenPosition(k));
  }
  return out;
};

// ---- Streamlit -----------------------------------------------------------------------------------

function emit() {
  setComponentValue({
    have: data ? data.hash : null, req: request, selection, zoom, density, click,
    hidden_colour: [...hidden.colour], hidden_marker: [...hidden.marker], drawn: visible.length,
  });
}

function applyInitial(state) {
  hidden = { colour: new Set(state.hidden_colour || []), marker: new Set(state.hidden_marker || []) };
  density = Boolean(state.density);
  el('density').classList.toggle('on', density);
  if (state.selection && state.selection.hash === data.hash) selection = state.selection;
  if (state.search) el('search').value = state.search;
  zoom = state.zoom || null;
}

// The whole map in view (the payload is normalised into [-0.95, 0.95] on its longer side).
function fitAll() {
  if (!data) return;
  const [x0, y0, x1, y1] = data.meta.bounds;
  const w = (x1 - x0) * data.scale; const h = (y1 - y0) * data.scale;
  scatterplot.zoomToArea({ x: -w / 2, y: -h / 2, width: w, height: h }, { transition: false });
}

function applyZoom() {
  if (!zoom) return;
  const gx = (zoom[0] - data.cx) * data.scale;
  const gy = (zoom[1] - data.cy) * data.scale;
  scatterplot.set({ cameraTarget: [gx, gy], cameraDistance: zoom[2] });
}

function applyCommand(cmd) {
  if (!cmd || (lastCommand && lastCommand.seq === cmd.seq)) return;
  lastCommand = cmd;
  if (cmd.select !== undefined) {
    setSelection(cmd.select ? { ...cmd.select, hash: data.hash } : null, { zoomTo: Boolean(cmd.zoom) });
  }
}

onRender((next) => {
  monitor.renders += 1;
  const prev = args;
  args = next;
  setFrameHeight(next.config.height);
  const hash = next.payload_hash;
  if (next.payload && next.payload.byteLength) {
    monitor.payloadBytes += next.payload.byteLength;
    if (!cache.has(hash)) cache.set(hash, decode(next.payload, hash));
  }
  if (!cache.has(hash)) {
    // Python believes this frame holds the run's points, but it was reloaded: ask once more.
    if (requestedHash !== hash) { requestedHash = hash; request += 1; emit(); }
    status.textContent = 'loading points…';
    return;
  }
  const fresh = !data || data.hash !== hash;
  data = cache.get(hash);
  for (const old of [...cache.keys()]) if (old !== hash) cache.delete(old);
  monitor.loadedHash = hash;
  if (!appliedInitial) {
    appliedInitial = true;
    applyInitial(next.view_state || {});
  } else if (fresh) {
    selection = null;
  }
  const same = !fresh && prev.config && JSON.stringify(prev.config) === JSON.stringify(next.config);
  if (!same) {
    redraw();
    if (fresh) {
      if (zoom) applyZoom(); else fitAll();
      emit();
    }
  }
  applyCommand(next.command);
});
