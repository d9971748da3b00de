// The embedding map: every point of a run is held here (one Arrow payload per run, keyed by its hash);
// classifier, datasets, level, colour, legend toggles, highlight, search, hover, zoom and box/lasso
// selection are applied in the browser. Python gets back a small JSON state (selection as a polygon
// in map coordinates plus the payload hash, zoom, hidden legend entries, clicks) — never point data.
//
// What a change costs here (the budget is software WebGL on two cores, where every frame redraws every
// point): the payload's columns are used where they lie (typed arrays over the received bytes); each
// level's points (faces, or one per video) are laid out once; a change of colour, marker, classifier,
// dataset, legend, selection or highlight rewrites two small codes per point (colour slot, marker)
// through lookup tables and renders ONE frame. Hidden points get size 0; the selection dims the other
// points; a highlighted set is drawn last and larger. Lasso, box, hover and clicks are handled here on
// a 2D overlay, so drawing a lasso or moving the mouse renders no WebGL frame at all.
import createScatterplot from 'regl-scatterplot';
import { tableFromIPC } from 'apache-arrow';
import { onRender, setComponentValue, setFrameHeight } from './streamlit.js';
import { drawContours } from './density.js';
import { createDirectRenderer } from './renderer.js';

const GLYPHS = ['●', '✕', '◆', '■', '✚', '▲', '★', '⬟', '✡', '▼', '✦', '⧗', '⋈', '◀', '▶', '✳'];
// point size (px) by the number of points in view: marker shapes at 6 px up to 200k points
const SIZES = [[200000, 6], [500000, 3], [Infinity, 2]];
const HIGHLIGHT_EXTRA = 4;        // px added to highlighted points (drawn last, over the others)
const OPACITY = 0.85;
const DIMMED = 0.15;              // opacity of the points outside the selection (or the highlight)
const OTHER_COLOUR = '#bbbbbb';   // a colour value without a legend entry
const CLICK_PX = 4;               // a press never moving this far (px) is a click
const PICK_PX = 8;                // a click or hover finds the nearest shown point within this

const el = (id) => document.getElementById(id);
const plot = el('plot');
const canvas = el('canvas');
const overlay = el('overlay');
const status = el('status');
const tooltip = el('tooltip');

// A name on one line, as data_catalog.names.printable writes it: a file name holding a newline or a
// bidi override must not draw a second 'true: …' line or reorder the tooltip.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;
const SHORT = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
const printable = (v) => String(v).replace(UNPRINTABLE,
  (c) => SHORT[c] || `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

// Read by the browser tests and the benchmark: `drawn` is set once the frame holding every shown point
// has been rendered and the GPU has finished it; `marks` says where the last change's time went (ms);
// `frames` counts WebGL frames.
const monitor = {
  drawn: 0, loadedHash: null, payloadBytes: 0, renders: 0, drawSeq: 0, selected: 0, highlighted: 0,
  lastDrawMs: 0, frames: 0, marks: {}, hovered: -1,
  times: { loaded: Date.now() },   // epoch ms: script loaded, payload received, decoded, first and last drawn
};
window.__dfatlasMap = monitor;

const cache = new Map();          // payload hash -> decoded data (one run per map, kept while the page lives)
let data = null;                  // the decoded payload shown now
let layer = null;                 // the level's points now drawn (see layerOf)
let args = {};
let mode = 'lasso';               // 'panZoom' | 'lasso' | 'rectangle'
let density = false;
let hidden = { colour: new Set(), marker: new Set() };
let selection = null;             // {kind, polygon|true/pred|query|videos, hash}
let selectedRows = [];            // layer rows of the selection
let highlightKey = '';            // what the highlighted set was computed from
let focus = null;                 // {video}: a highlight from a command
let highlightOn = false;          // the toolbar's highlight of config.highlight_sets
let lastCommand = null;
let appliedInitial = false;
let request = 0;                  // counts requests for the payload (a reloaded frame asks again); sent with
                                  // this frame's own id, so a new frame's first request is never taken for an old one's
let requestedHash = null;
let clickSeq = 0;
let click = null;
let zoom = null;
let fitView = null;               // the camera of the whole map (a zoom there is no zoom)
let sizeNow = SIZES[0][1];
let styleKey = '';                // the colours and sizes last set
let orderSet = false;             // a draw order (highlight last) is set
let orderLayer = null;            // ... for these points
let drawChain = Promise.resolve(); // the draws, one after the other
let hoverRow = -1;                // the layer row under the mouse (or shown for the linked map)
let drag = null;                  // a lasso or box being drawn: {path: [[x, y] CSS px]}
let press = null;                 // where a mouse button went down: {x, y}
const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel('dfatlas-map') : null;
const frameId = Math.random().toString(36).slice(2);

const renderer = createDirectRenderer(canvas);
const renderFrame = renderer.render;
renderer.render = (drawFn, target) => { monitor.frames += 1; renderFrame(drawFn, target); };

const scatterplot = createScatterplot({
  canvas,
  renderer,
  pointSize: SIZES[0][1],
  opacity: 0.85,
  pointColor: ['#999999'],
  colorBy: 'valueA',
  sizeBy: 'valueA',
  opacityBy: 'valueA',
  mouseMode: 'panZoom',           // lasso and box are drawn here, not by regl-scatterplot
  deselectOnDblClick: false,
  deselectOnEscape: false,
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
  // one record batch (the server writes one): the typed arrays over the received bytes, no copy
  const values = (name) => (col(name).data.length === 1 ? col(name).data[0].values : col(name).toArray());
  const n = table.numRows;
  const [x0, y0, x1, y1] = meta.bounds;
  const video = col('video').data[0];
  const d = {
    hash, meta, n, x: values('x'), y: values('y'),
    scale: 1.9 / Math.max(x1 - x0, y1 - y0, 1e-9), cx: (x0 + x1) / 2, cy: (y0 + y1) / 2,
    dataset: values('dataset'), truth: values('true'), video: video.values, videoNames: video.dictionary.toArray(),
    pred: {}, vpred: {}, ok: {}, vok: {}, score: {}, layers: {},
    labelCode: new Map(meta.labels.map((l, i) => [l, i])),
  };
  for (const c of meta.classifiers) {
    d.pred[c] = values(`pred:${c}`); d.vpred[c] = values(`vpred:${c}`);
    d.ok[c] = values(`ok:${c}`); d.vok[c] = values(`vok:${c}`); d.score[c] = values(`score:${c}`);
  }
  return d;
}

// The points of one level, laid out once: map (x, y) and GL (gx, gy) positions, the face row that
// carries each point's classes (`face`: null at face level; a video's first face at video level, which
// holds the video's prediction) and the point arrays handed to regl-scatterplot (their colour slot and
// marker are rewritten in place); after the first draw, the spatial index.
// At video level a point is the mean map position of its video's faces (the same rule as
// dashboard.components.scatter_map.selection.video_positions); the faces stay reachable at face level.
function layerOf(level) {
  const d = data;
  if (d.layers[level]) return d.layers[level];
  let n; let x; let y; let face = null; let count = null;
  if (level === 'video') {
    n = d.videoNames.length;
    const sx = new Float64Array(n); const sy = new Float64Array(n);
    count = new Int32Array(n);
    face = new Int32Array(n).fill(-1);
    for (let i = 0; i < d.n; i++) {
      const v = d.video[i];
      sx[v] += d.x[i]; sy[v] += d.y[i]; count[v] += 1;
      if (face[v] < 0) face[v] = i;
    }
    x = new Float32Array(n); y = new Float32Array(n);
    for (let v = 0; v < n; v++) { x[v] = sx[v] / Math.max(count[v], 1); y[v] = sy[v] / Math.max(count[v], 1); }
  } else {
    n = d.n; x = d.x; y = d.y;
  }
  const gx = new Float32Array(n); const gy = new Float32Array(n);
  const points = new Array(n);
  let lo = 0; let hi = 0; let blo = 0; let bhi = 0;
  for (let i = 0; i < n; i++) {
    gx[i] = (x[i] - d.cx) * d.scale; gy[i] = (y[i] - d.cy) * d.scale;
    points[i] = [gx[i], gy[i], 0, 0];
    if (gx[i] < gx[lo]) lo = i;
    if (gx[i] > gx[hi]) hi = i;
    if (gy[i] < gy[blo]) blo = i;
    if (gy[i] > gy[bhi]) bhi = i;
  }
  const L = { level, n, x, y, gx, gy, face, count, points, shown: new Uint8Array(n), nShown: 0,
    selected: new Uint8Array(n), highlighted: new Uint8Array(n), nHighlighted: 0, spatialIndex: null,
    extremes: [lo, hi, blo, bhi] };
  d.layers[level] = L;
  return L;
}

const faceOf = (L, i) => (L.face ? L.face[i] : i);

// ---- what is drawn -------------------------------------------------------------------------------

// Per-code lookup tables of the current config: colour slot, hidden flags, marker shape, shown datasets.
function tables() {
  const cfg = args.config;
  const d = data;
  const video = cfg.level === 'video';
  const clf = d.pred[cfg.classifier] ? cfg.classifier : d.meta.classifiers[0];
  const pred = video ? d.vpred[clf] : d.pred[clf];
  const ok = video ? d.vok[clf] : d.ok[clf];
  const [colourSrc, colourVocab] = {
    pred: [pred, d.meta.labels], true: [d.truth, d.meta.labels], correct: [ok, d.meta.correct],
    database: [d.dataset, d.meta.databases],
  }[cfg.colour] || [pred, d.meta.labels];
  const legend = cfg.colour_legend;
  const slotOf = new Map(legend.map((e, i) => [e.id, i]));
  const colourSlot = new Int16Array(colourVocab.length);
  const colourHidden = new Uint8Array(colourVocab.length);
  colourVocab.forEach((v, i) => {
    colourSlot[i] = slotOf.has(v) ? slotOf.get(v) : legend.length;
    colourHidden[i] = hidden.colour.has(v) ? 1 : 0;
  });
  const markerSrc = cfg.marker === 'pred' ? pred : d.truth;
  const symbolOf = new Map(cfg.marker_legend.map((e) => [e.id, e.symbol]));
  const shape = new Uint8Array(d.meta.labels.length);
  const markerHidden = new Uint8Array(d.meta.labels.length);
  d.meta.labels.forEach((l, i) => {
    shape[i] = symbolOf.get(l) || 0;
    markerHidden[i] = hidden.marker.has(l) ? 1 : 0;
  });
  const dsShown = new Uint8Array(d.meta.datasets.length);
  const wanted = new Set(cfg.datasets);
  d.meta.datasets.forEach((name, i) => { dsShown[i] = wanted.has(name) ? 1 : 0; });
  return { pred, clf, colourSrc, colourSlot, colourHidden, markerSrc, shape, markerHidden, dsShown,
    colours: legend.length + 1 };
}

// The highlighted set (config.highlight {datasets, videos}, config.highlight_sets while its toolbar button
// is on, a focused video): drawn last and larger, the other points dimmed.
function markHighlight(L) {
  const h = args.config.highlight || {};
  const offered = highlightOn ? (args.config.highlight_sets || {}).datasets || [] : [];
  const videos = new Set([...(h.videos || []), ...(focus ? [focus.video] : [])].map(String));
  const datasets = new Set([...(h.datasets || []), ...offered]);
  const key = `${L.level}|${[...datasets].join('\u0000')}|${[...videos].join('\u0000')}`;
  if (key === highlightKey && L === layer) return false;
  highlightKey = key;
  L.highlighted.fill(0);
  let m = 0;
  if (videos.size || datasets.size) {
    const d = data;
    const dsHit = new Uint8Array(d.meta.datasets.length);
    d.meta.datasets.forEach((name, i) => { dsHit[i] = datasets.has(name) ? 1 : 0; });
    const videoHit = new Uint8Array(d.videoNames.length);
    if (videos.size) d.videoNames.forEach((v, i) => { videoHit[i] = videos.has(String(v)) ? 1 : 0; });
    for (let i = 0; i < L.n; i++) {
      const f = faceOf(L, i);
      if (dsHit[d.dataset[f]] || videoHit[d.video[f]]) { L.highlighted[i] = 1; m++; }
    }
  }
  L.nHighlighted = m;
  return true;
}

function hexRgba(hex, alpha) {
  const h = hex.replace('#', '');
  const full = h.length === 3 ? h.split('').map((c) => c + c).join('') : h;
  return [0, 2, 4].map((i) => parseInt(full.slice(i, i + 2), 16) / 255).concat([alpha]);
}

// Colour slots (the point's z; colour, size and opacity are looked up by it): the legend's colours and
// 'other' (C of them), then hidden (size 0), then the C colours highlighted (larger), then dimmed.
function style(colourCount) {
  const colours = [...args.config.colour_legend.map((e) => e.color), OTHER_COLOUR].slice(0, colourCount);
  const rgba = colours.map((c) => hexRgba(c, 1));
  const size = sizeNow;
  const each = (v) => colours.map(() => v);
  return {
    pointColor: [...rgba, [0, 0, 0, 0], ...rgba, ...rgba],
    pointSize: [...each(size), 0, ...each(size + HIGHLIGHT_EXTRA), ...each(size)],
    opacity: [...each(OPACITY), 0, ...each(1), ...each(DIMMED)],
  };
}

function redraw() {
  if (!data) return;
  const t0 = performance.now();
  const L = layerOf(args.config.level === 'video' ? 'video' : 'frame');
  const t = tables();
  const d = data;
  const fresh = layer !== L;
  layer = L;
  const newHighlight = markHighlight(L);
  // 1: which points are shown, their marker
  let m = 0;
  for (let i = 0; i < L.n; i++) {
    const f = L.face ? L.face[i] : i;
    const mc = t.markerSrc[f];
    L.points[i][3] = t.shape[mc];
    const shown = f >= 0 && t.dsShown[d.dataset[f]] && !t.colourHidden[t.colourSrc[f]] && !t.markerHidden[mc];
    L.shown[i] = shown ? 1 : 0;
    m += L.shown[i];
  }
  L.nShown = m;
  // 2: the selection among them, then every point's colour slot
  selectedRows = matches(selection);
  L.selected.fill(0);
  for (const i of selectedRows) L.selected[i] = 1;
  monitor.selected = selectedRows.length;
  monitor.highlighted = L.nHighlighted;
  const C = t.colours;
  const dimOthers = selectedRows.length > 0 || L.nHighlighted > 0;
  for (let i = 0; i < L.n; i++) {
    const p = L.points[i];
    if (!L.shown[i]) { p[2] = C; continue; }
    const slot = t.colourSlot[t.colourSrc[L.face ? L.face[i] : i]];
    if (L.highlighted[i]) p[2] = C + 1 + slot;
    else if (dimOthers && !L.selected[i]) p[2] = 2 * C + 1 + slot;
    else p[2] = slot;
  }
  sizeNow = sizeFor(m);
  const t1 = performance.now();
  // regl-scatterplot redraws after a set() in its next animation frame: set the colours and sizes first and
  // draw the points once that has passed. A change renders ONE frame (draw() resolves once it is
  // rendered), and one pixel read back waits for the GPU to finish it. Draws run one after the other
  // (regl-scatterplot refuses a draw during a draw); a draw overtaken by a newer change is skipped.
  const props = style(C);
  const seq = ++monitor.drawSeq;
  monitor.drawn = 0;
  drawChain = drawChain.then(async () => {
    if (seq !== monitor.drawSeq) return;
    const key = JSON.stringify(props);
    if (key !== styleKey) { styleKey = key; await scatterplot.set(props); }
    if (seq !== monitor.drawSeq) return;
    await scatterplot.draw(L.points, {
      zDataType: 'categorical', wDataType: 'categorical', preventFilterReset: true,
      spatialIndex: L.spatialIndex || undefined,
    });
    const gl = renderer.regl._gl;
    gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, new Uint8Array(4));
    const t2 = performance.now();
    if (!L.spatialIndex) L.spatialIndex = scatterplot.get('spatialIndex');
    // the draw order holds for these points (a draw of another level resets it)
    const ordered = L.nHighlighted > 0;
    if ((fresh || newHighlight || orderLayer !== L) && (ordered || orderSet)) {
      scatterplot.set({ pointOrder: ordered ? drawOrder(L) : null });
      orderSet = ordered;
      orderLayer = L;
    }
    if (seq !== monitor.drawSeq) return;
    monitor.times.lastDrawn = Date.now();
    if (!monitor.times.drawn) monitor.times.drawn = monitor.times.lastDrawn;
    monitor.drawn = m;
    monitor.lastDrawMs = t2 - t0;
    monitor.marks = { prepareMs: t1 - t0, drawMs: t2 - t1 };
    drawDensity();
    paintOverlay();
    updateStatus();
  }).catch((err) => { console.error('dfatlas map: draw failed', err); });
  renderLegend();
  updateToolbar();
}

// Highlighted points last (regl-scatterplot draws in this order), the others in the payload's shuffled order.
function drawOrder(L) {
  const order = new Array(L.n);
  let k = 0;
  for (let i = 0; i < L.n; i++) if (!L.highlighted[i]) order[k++] = i;
  for (let i = 0; i < L.n; i++) if (L.highlighted[i]) order[k++] = i;
  return order;
}

const sizeFor = (nInView) => SIZES.find(([limit]) => nInView <= limit)[1];

function updatePointSize(nInView) {
  const size = sizeFor(nInView);
  if (size === sizeNow || !layer) return;
  sizeNow = size;
  const props = style(args.config.colour_legend.length + 1);
  styleKey = JSON.stringify(props);
  scatterplot.set(props);
}

function updateStatus() {
  if (!layer) return;
  const unit = layer.level === 'video' ? 'videos' : 'faces';
  const sel = selection ? ` · ${selectedRows.length.toLocaleString()} selected` : '';
  const hl = layer.nHighlighted ? ` · ${layer.nHighlighted.toLocaleString()} highlighted` : '';
  status.textContent = `${layer.nShown.toLocaleString()} ${unit} drawn${sel}${hl}`;
}

// ---- legend ----------------------------------------------------------------------------------------

function renderLegend() {
  const cfg = args.config;
  const box = el('legend');
  box.replaceChildren();
  const section = (title, entries, set, glyph) => {
    const part = document.createElement('div');  // colour and marker: beside each other under a narrow map
    part.className = 'section';
    const h = document.createElement('h4');
    h.textContent = title;
    part.append(h);
    box.append(part);
    for (const e of entries) {
      const row = document.createElement('div');
      row.className = 'entry' + (set.has(e.id) ? ' off' : '');
      row.dataset.legend = `${set === hidden.colour ? 'colour' : 'marker'}:${e.id}`;
      row.title = 'click to hide or show';
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
      part.append(row);
    }
  };
  section(`Colour: ${cfg.colour_title}`, cfg.colour_legend, hidden.colour, () => '●');
  section(`Marker: ${cfg.marker_title || 'true class'}`, cfg.marker_legend, hidden.marker, (e) => GLYPHS[e.symbol] || '●');
}

// ---- selection -----------------------------------------------------------------------------------

const toData = (glx, gly) => [glx / data.scale + data.cx, gly / data.scale + data.cy];

function insidePolygon(px, py, poly) {
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i];
    const [xj, yj] = poly[j];
    if ((yi > py) !== (yj > py) && px < ((xj - xi) * (py - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

// Shown layer rows matching a selection description (the same rules as selection.py).
function matches(sel) {
  if (!sel || !data || !layer) return [];
  const L = layer;
  const d = data;
  const out = [];
  if (sel.kind === 'lasso' || sel.kind === 'box') {
    const poly = sel.polygon || [];
    if (poly.length < 3) return out;
    let xmin = Infinity; let xmax = -Infinity; let ymin = Infinity; let ymax = -Infinity;
    for (const [px, py] of poly) { xmin = Math.min(xmin, px); xmax = Math.max(xmax, px); ymin = Math.min(ymin, py); ymax = Math.max(ymax, py); }
    for (let i = 0; i < L.n; i++) {
      if (!L.shown[i]) continue;
      const px = L.x[i]; const py = L.y[i];
      if (px < xmin || px > xmax || py < ymin || py > ymax) continue;
      if (insidePolygon(px, py, poly)) out.push(i);
    }
  } else if (sel.kind === 'cell') {
    const t = d.labelCode.get(sel.true);
    const p = d.labelCode.get(sel.pred);
    if (t === undefined || p === undefined) return out;
    const pred = tables().pred;
    for (let i = 0; i < L.n; i++) {
      const f = faceOf(L, i);
      if (L.shown[i] && d.truth[f] === t && pred[f] === p) out.push(i);
    }
  } else if (sel.kind === 'search') {
    const q = String(sel.query || '').trim().toLowerCase();
    if (!q) return out;
    const names = args.config.class_names || {};
    const classHit = new Uint8Array(d.meta.labels.length);
    d.meta.labels.forEach((l, i) => { classHit[i] = l.toLowerCase() === q || (names[l] || '').toLowerCase() === q ? 1 : 0; });
    const videoHit = new Uint8Array(d.videoNames.length);
    d.videoNames.forEach((v, i) => { if (String(v).toLowerCase().includes(q)) videoHit[i] = 1; });
    for (let i = 0; i < L.n; i++) {
      const f = faceOf(L, i);
      if (L.shown[i] && (videoHit[d.video[f]] || classHit[d.truth[f]])) out.push(i);
    }
  } else if (sel.kind === 'videos') {
    const want = new Set((sel.videos || []).map(String));
    const videoHit = new Uint8Array(d.videoNames.length);
    d.videoNames.forEach((v, i) => { if (want.has(String(v))) videoHit[i] = 1; });
    for (let i = 0; i < L.n; i++) if (L.shown[i] && videoHit[d.video[faceOf(L, i)]]) out.push(i);
  }
  return out;
}

function zoomToRows(rows) {
  if (!rows.length) return;
  scatterplot.zoomToPoints(rows, { padding: 0.3, transition: false });
}

function setSelection(sel, { zoomTo = false, broadcast = true } = {}) {
  selection = sel;
  redraw();
  if (zoomTo) zoomToRows(selectedRows);
  if (broadcast) share('selection');
  emit();
}

// ---- pointer: lasso, box, clicks and hover, on the overlay --------------------------------------

// GL -> CSS pixel mapping (an axis-aligned affine map) from the screen positions of the layer's extreme points.
function screenMapping() {
  const L = layer;
  const [lo, hi, blo, bhi] = L.extremes;
  const p = scatterplot.getScreenPosition(lo); const q = scatterplot.getScreenPosition(hi);
  const u = scatterplot.getScreenPosition(blo); const w = scatterplot.getScreenPosition(bhi);
  const dx = L.gx[hi] - L.gx[lo] || 1;
  const dy = L.gy[bhi] - L.gy[blo] || 1;
  const a = (q[0] - p[0]) / dx || 1;
  const c = (w[1] - u[1]) / dy || -1;
  return { a, b: p[0] - a * L.gx[lo], c, e: u[1] - c * L.gy[blo] };
}

const toScreen = (m, gx, gy) => [m.a * gx + m.b, m.c * gy + m.e];
const screenToData = (m, sx, sy) => toData((sx - m.b) / m.a, (sy - m.e) / m.c);

// The nearest shown point within PICK_PX of (sx, sy) CSS px, or -1.
function nearestShown(sx, sy) {
  const L = layer;
  if (!L) return -1;
  const m = screenMapping();
  const qx = (sx - m.b) / m.a; const qy = (sy - m.e) / m.c;
  const rx = PICK_PX / Math.abs(m.a); const ry = PICK_PX / Math.abs(m.c);
  let best = -1; let bestD = PICK_PX * PICK_PX;
  for (let i = 0; i < L.n; i++) {
    const dx = L.gx[i] - qx;
    if (dx > rx || dx < -rx || !L.shown[i]) continue;
    const dy = L.gy[i] - qy;
    if (dy > ry || dy < -ry) continue;
    const dd = (dx * m.a) ** 2 + (dy * m.c) ** 2;
    if (dd <= bestD) { bestD = dd; best = i; }
  }
  return best;
}

const inCanvas = (ev) => ev.target === canvas;
const relative = (ev) => { const r = canvas.getBoundingClientRect(); return [ev.clientX - r.left, ev.clientY - r.top]; };

// Capturing listeners on the window come first: in lasso and box mode the camera never sees a press (no
// pan), and without a pressed button regl-scatterplot never sees the mouse move (its hover would redraw
// every point); its own click and double-click selection is replaced by ours.
window.addEventListener('mousedown', (ev) => {
  if (!inCanvas(ev) || ev.button !== 0 || !data || !layer) return;
  const [x, y] = relative(ev);
  press = { x, y, far: 0 };
  if (mode === 'panZoom') return;
  ev.stopPropagation();
  ev.preventDefault();
  drag = { path: [[x, y]] };
  plot.classList.add('drawing');
}, true);

window.addEventListener('mousemove', (ev) => {
  if (press) {
    const [x, y] = relative(ev);
    press.far = Math.max(press.far, Math.abs(x - press.x) + Math.abs(y - press.y));
  }
  if (drag) {
    ev.stopPropagation();
    const [x, y] = relative(ev);
    const [lx, ly] = drag.path[drag.path.length - 1];
    if (Math.abs(x - lx) + Math.abs(y - ly) >= 2) { drag.path.push([x, y]); paintOverlay(); }
    return;
  }
  if (ev.buttons) return;          // a pan: the camera's
  ev.stopPropagation();
  if (inCanvas(ev)) scheduleHover(relative(ev)); else if (hoverRow >= 0) setHover(-1);
}, true);

window.addEventListener('mouseup', (ev) => {
  if (!press) return;
  const start = press;
  press = null;
  const [x, y] = relative(ev);
  const moved = Math.max(start.far, Math.abs(x - start.x) + Math.abs(y - start.y)) >= CLICK_PX;
  if (drag) {
    ev.stopPropagation();
    const path = drag.path;
    drag = null;
    plot.classList.remove('drawing');
    if (moved) {
      finishShape(path, [x, y]);
      return;
    }
    paintOverlay();
  }
  if (!moved) clickAt(start.x, start.y);
}, true);

for (const type of ['click', 'dblclick']) {
  canvas.addEventListener(type, (ev) => {
    ev.stopPropagation();
    if (type === 'dblclick' && selection) setSelection(null);
  }, true);
}
window.addEventListener('keyup', (ev) => { if (ev.key === 'Escape' && selection) setSelection(null); });

function finishShape(path, end) {
  if (!data || !layer) return;
  const m = screenMapping();
  let screen = path.concat([end]);
  if (mode === 'rectangle') {
    const [x0, y0] = path[0];
    const [x1, y1] = end;
    screen = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]];
  }
  if (screen.length < 3) return;
  const polygon = screen.map(([sx, sy]) => screenToData(m, sx, sy).map((v) => +v.toFixed(5)));
  setSelection({ kind: mode === 'rectangle' ? 'box' : 'lasso', polygon, hash: data.hash });
}

// A click on one point: the component says which (the video drill-down opens from it, see the Python
// module's docstring) and selects its video; a click on nothing clears nothing.
function clickAt(sx, sy) {
  const i = nearestShown(sx, sy);
  if (i < 0) return;
  const f = faceOf(layer, i);
  const video = String(data.videoNames[data.video[f]]);
  click = { video, dataset: data.meta.datasets[data.dataset[f]], level: layer.level, seq: ++clickSeq };
  setSelection({ kind: 'videos', videos: [video], hash: data.hash });
}

let hoverAt = null;
function scheduleHover(pos) {
  const pending = hoverAt;
  hoverAt = pos;
  if (!pending) requestAnimationFrame(() => { const [x, y] = hoverAt; hoverAt = null; setHover(nearestShown(x, y)); });
}

function setHover(i, { broadcast = true } = {}) {
  if (i === hoverRow) return;
  hoverRow = i;
  monitor.hovered = i;
  paintOverlay();
  if (i < 0 || !layer) {
    tooltip.hidden = true;
    if (broadcast) share('hover');
    return;
  }
  const L = layer;
  const d = data;
  const f = faceOf(L, i);
  const t = tables();
  const names = args.config.class_names || {};
  const name = (l) => names[l] || l;
  const score = d.score[t.clf][f];
  const unit = L.face ? `video (${L.count[i]} faces)` : 'face';
  tooltip.textContent = `${printable(d.videoNames[d.video[f]])} — ${unit}\ntrue: ${name(d.meta.labels[d.truth[f]])} · `
    + `predicted: ${name(d.meta.labels[t.pred[f]])}${Number.isFinite(score) && !L.face ? ` · real-score ${score.toFixed(3)}` : ''}`;
  tooltip.style.whiteSpace = 'pre';
  const [sx, sy] = toScreen(screenMapping(), L.gx[i], L.gy[i]);
  tooltip.style.left = `${Math.max(0, Math.min(sx + 12, canvas.clientWidth - 260))}px`;
  tooltip.style.top = `${sy + 12}px`;
  tooltip.hidden = !broadcast;     // a hover shown for the linked map: the ring only
  if (broadcast) share('hover');
}

// The lasso or box being drawn, the selection's polygon and the hovered point's ring (2D, no WebGL frame).
function paintOverlay() {
  const dpr = devicePixelRatio;
  if (overlay.width !== Math.round(overlay.clientWidth * dpr)) overlay.width = Math.round(overlay.clientWidth * dpr);
  if (overlay.height !== Math.round(overlay.clientHeight * dpr)) overlay.height = Math.round(overlay.clientHeight * dpr);
  const ctx = overlay.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, overlay.clientWidth, overlay.clientHeight);
  if (!layer) return;
  const m = screenMapping();
  const stroke = (pts, close, dash) => {
    if (pts.length < 2) return;
    ctx.beginPath();
    ctx.moveTo(pts[0][0], pts[0][1]);
    for (const [x, y] of pts.slice(1)) ctx.lineTo(x, y);
    if (close) ctx.closePath();
    ctx.setLineDash(dash);
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = 'rgba(30, 30, 50, 0.85)';
    ctx.stroke();
    ctx.setLineDash([]);
  };
  if (selection && (selection.kind === 'lasso' || selection.kind === 'box')) {
    stroke((selection.polygon || []).map(([x, y]) => toScreen(m, (x - data.cx) * data.scale, (y - data.cy) * data.scale)), true, [5, 4]);
  }
  if (drag) {
    if (mode === 'rectangle') {
      const [x0, y0] = drag.path[0];
      const [x1, y1] = drag.path[drag.path.length - 1];
      stroke([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], true, []);
    } else stroke(drag.path, false, []);
  }
  if (hoverRow >= 0 && hoverRow < layer.n) {
    const [x, y] = toScreen(m, layer.gx[hoverRow], layer.gy[hoverRow]);
    ctx.beginPath();
    ctx.arc(x, y, sizeNow / 2 + 4, 0, 2 * Math.PI);
    ctx.lineWidth = 2;
    ctx.strokeStyle = '#31333f';
    ctx.stroke();
  }
}

// ---- linked views (Compare): hover and selection by video id, between maps of one group ------------

function share(what) {
  if (!channel || !args.group || !data || !layer) return;
  const msg = { from: frameId, group: args.group, what };
  if (what === 'hover') msg.video = hoverRow >= 0 ? String(data.videoNames[data.video[faceOf(layer, hoverRow)]]) : null;
  else {
    const vids = new Set();
    for (const i of selectedRows) vids.add(String(data.videoNames[data.video[faceOf(layer, i)]]));
    msg.videos = selection ? [...vids] : null;
  }
  channel.postMessage(msg);
}

if (channel) {
  channel.onmessage = ({ data: msg }) => {
    if (!data || !layer || !args.group || msg.group !== args.group || msg.from === frameId) return;
    if (msg.what === 'hover') {
      const rows = msg.video ? matches({ kind: 'videos', videos: [msg.video] }) : [];
      setHover(rows.length ? rows[0] : -1, { broadcast: false });
    } else if (msg.what === 'selection') {
      setSelection(msg.videos ? { kind: 'videos', videos: msg.videos, hash: data.hash, linked: true } : null,
        { broadcast: false });
    }
  };
}

// ---- density ---------------------------------------------------------------------------------------

function drawDensity() {
  const contours = el('contours');
  contours.width = contours.clientWidth * devicePixelRatio;
  contours.height = contours.clientHeight * devicePixelRatio;
  const ctx = contours.getContext('2d');
  ctx.clearRect(0, 0, contours.width, contours.height);
  if (!density || !layer || !layer.nShown) return;
  const { a, b, c, e } = screenMapping();
  drawContours(ctx, layer.shown, layer.gx, layer.gy, (gx) => (a * gx + b) * devicePixelRatio,
    (gy) => (c * gy + e) * devicePixelRatio, contours.width, contours.height);
}

// The camera as map coordinates of its target and its distance (what the URL's zoom holds).
function currentView() {
  const target = scatterplot.get('cameraTarget');
  const distance = scatterplot.get('cameraDistance');
  const [cx, cy] = toData(target[0], target[1]);
  return [+cx.toFixed(4), +cy.toFixed(4), +(Array.isArray(distance) ? distance[0] : distance).toFixed(4)];
}

let viewTimer = null;
scatterplot.subscribe('view', () => {
  tooltip.hidden = true;
  if (layer) paintOverlay();
  clearTimeout(viewTimer);
  viewTimer = setTimeout(() => {
    if (!data || !layer) return;
    const view = currentView();
    updatePointSize(countInView());
    drawDensity();
    const next = fitView && view.every((v, i) => Math.abs(v - fitView[i]) < 1e-3) ? null : view;
    if (JSON.stringify(next) !== JSON.stringify(zoom)) { zoom = next; emit(); }
  }, 350);
});

function countInView() {
  const L = layer;
  const { a, b, c, e } = screenMapping();
  const w = canvas.clientWidth; const h = canvas.clientHeight;
  // the view's rectangle in GL coordinates
  const gx0 = Math.min(-b / a, (w - b) / a); const gx1 = Math.max(-b / a, (w - b) / a);
  const gy0 = Math.min(-e / c, (h - e) / c); const gy1 = Math.max(-e / c, (h - e) / c);
  let n = 0;
  for (let i = 0; i < L.n; i++) {
    if (L.shown[i] && L.gx[i] >= gx0 && L.gx[i] <= gx1 && L.gy[i] >= gy0 && L.gy[i] <= gy1) n++;
  }
  return n;
}

// ---- toolbar ---------------------------------------------------------------------------------------

function setMode(next) {
  mode = next;
  for (const b of document.querySelectorAll('#toolbar button[data-mode]')) b.classList.toggle('on', b.dataset.mode === next);
}
for (const b of document.querySelectorAll('#toolbar button[data-mode]')) b.addEventListener('click', () => setMode(b.dataset.mode));
el('density').addEventListener('click', () => { density = !density; el('density').classList.toggle('on', density); drawDensity(); emit(); });
el('reset').addEventListener('click', () => fitAll());

// A resized frame (the page's layout settling, a window resize, the legend moving under a narrow map) keeps
// regl-scatterplot's camera, so a map shown whole would be cut off: fit it again unless the user zoomed.
let refitPending = false;
new ResizeObserver(() => {
  if (refitPending) return;
  refitPending = true;
  requestAnimationFrame(() => { refitPending = false; if (data && !zoom) fitAll(); });
}).observe(canvas);
el('highlight').addEventListener('click', () => { highlightOn = !highlightOn; redraw(); emit(); });

// The toolbar's highlight button: shown when the page offers sets to highlight (config.highlight_sets).
function updateToolbar() {
  const sets = args.config.highlight_sets || {};
  const button = el('highlight');
  button.hidden = !(sets.datasets && sets.datasets.length);
  button.textContent = `Highlight ${sets.label || 'sets'}`;
  button.classList.toggle('on', highlightOn && !button.hidden);
}
el('search').addEventListener('change', (ev) => {
  const q = ev.target.value;
  setSelection(q.trim() ? { kind: 'search', query: q, hash: data && data.hash } : null, { zoomTo: true });
});
setMode('lasso');

// For the browser tests: screen positions (CSS px) of the shown points of one true class.
monitor.screenPoints = (label, limit = 5000) => {
  if (!data || !layer) return [];
  const code = data.labelCode.get(label);
  const m = screenMapping();
  const out = [];
  for (let i = 0; i < layer.n && out.length < limit; i++) {
    if (layer.shown[i] && data.truth[faceOf(layer, i)] === code) out.push(toScreen(m, layer.gx[i], layer.gy[i]));
  }
  return out;
};

// ... and of the shown points that are (or are not) highlighted.
monitor.highlightPoints = (highlighted = true, limit = 2000) => {
  if (!layer) return [];
  const m = screenMapping();
  const out = [];
  for (let i = 0; i < layer.n && out.length < limit; i++) {
    if (layer.shown[i] && Boolean(layer.highlighted[i]) === highlighted) out.push(toScreen(m, layer.gx[i], layer.gy[i]));
  }
  return out;
};

// ---- Streamlit -----------------------------------------------------------------------------------

function emit() {
  setComponentValue({
    have: data ? data.hash : null, req: `${frameId}:${request}`, selection, zoom, density, click, highlight_on: highlightOn,
    hidden_colour: [...hidden.colour], hidden_marker: [...hidden.marker], drawn: layer ? layer.nShown : 0,
  });
}

function applyInitial(state) {
  hidden = { colour: new Set(state.hidden_colour || []), marker: new Set(state.hidden_marker || []) };
  density = Boolean(state.density);
  el('density').classList.toggle('on', density);
  highlightOn = Boolean(state.highlight_on);
  if (state.selection && state.selection.hash === data.hash) selection = state.selection;
  if (state.selection && state.selection.kind === 'search') el('search').value = state.selection.query || '';
  zoom = state.zoom || null;
}

// The whole map in view (the payload is normalised into [-0.95, 0.95] on its longer side).
function fitAll() {
  if (!data) return;
  const [x0, y0, x1, y1] = data.meta.bounds;
  const w = (x1 - x0) * data.scale; const h = (y1 - y0) * data.scale;
  scatterplot.zoomToArea({ x: -w / 2, y: -h / 2, width: w, height: h }, { transition: false })
    .then(() => { fitView = currentView(); });
}

function applyZoom() {
  if (!zoom) return;
  const gx = (zoom[0] - data.cx) * data.scale;
  const gy = (zoom[1] - data.cy) * data.scale;
  scatterplot.set({ cameraTarget: [gx, gy], cameraDistance: zoom[2] });
}

// One-off commands from Python (each once, by its `seq`): `select` sets (or with null clears) the
// selection and `zoom` zooms to it; `focus` {video} highlights that video (drawn last, larger) and zooms
// to it, `focus: null` ends that.
function applyCommand(cmd) {
  if (!cmd || (lastCommand && lastCommand.seq === cmd.seq)) return;
  lastCommand = cmd;
  if (cmd.focus !== undefined) {
    focus = cmd.focus && cmd.focus.video ? { video: String(cmd.focus.video) } : null;
    if (cmd.select === undefined) redraw();
    if (focus) zoomToRows(matches({ kind: 'videos', videos: [focus.video] }));
  }
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
    if (!cache.has(hash)) {
      monitor.times.received = Date.now();
      const t = performance.now();
      cache.set(hash, decode(next.payload, hash));
      monitor.decodeMs = performance.now() - t;
      monitor.times.decoded = Date.now();
    }
  }
  if (!cache.has(hash)) {
    // Python believes this frame holds the run's points, but it was reloaded: ask once more. Ask again
    // when Python says it answered this frame's last request and no points came: that render was
    // replaced by a later one before it reached this frame (a rerun right behind it).
    const lost = next.answered === `${frameId}:${request}`;
    if (requestedHash !== hash || lost) { requestedHash = hash; request += 1; emit(); }
    status.textContent = 'loading points…';
    return;
  }
  const fresh = !data || data.hash !== hash;
  data = cache.get(hash);
  for (const old of [...cache.keys()]) if (old !== hash) cache.delete(old);
  if (fresh) { layer = null; highlightKey = ''; focus = null; hoverRow = -1; }
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
    }
  }
  applyCommand(next.command);
});
