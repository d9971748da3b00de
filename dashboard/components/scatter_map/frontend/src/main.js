// The embedding map: every point of a run is held here (one Arrow payload per run, keyed by its hash);
// classifier, datasets, level, colour, legend toggles, highlight, search, hover, zoom and box/lasso
// selection are applied in the browser. Python gets back a small JSON state (selection as a polygon
// in map coordinates plus the payload hash, zoom, hidden legend entries, clicks) — never point data.
//
// What a change costs here (the budget is software WebGL on two cores): the payload's columns are used
// where they lie (typed arrays over the received bytes); each level's points (faces, or one per video)
// are laid out once, with their spatial index; a change of colour, marker, classifier, dataset or legend
// rewrites two small codes per point (colour slot, marker) through lookup tables and draws ONE frame.
// Hidden points get size 0 (nothing to rasterise); a highlighted set is drawn last and larger.
import createScatterplot from 'regl-scatterplot';
import { tableFromIPC } from 'apache-arrow';
import { onRender, setComponentValue, setFrameHeight } from './streamlit.js';
import { drawContours } from './density.js';
import { createDirectRenderer } from './renderer.js';

const GLYPHS = ['●', '✕', '◆', '■', '✚', '▲', '★', '⬟', '✡', '▼', '✦', '⧗', '⋈', '◀', '▶', '✳'];
// point size (px) by the number of points in view: marker shapes at BIG_SIZE up to BIG_LIMIT points
const SIZES = [[200000, 6], [500000, 3], [Infinity, 2]];
const HIGHLIGHT_EXTRA = 4;        // px added to highlighted points (drawn last, over the others)
const DIMMED = 0.3;               // opacity of the other points while a highlight is shown
const OTHER_COLOUR = '#bbbbbb';   // a colour value without a legend entry

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

// Read by the browser tests and the benchmark: `drawn` is set once the frame holding every shown point
// has been rendered (the GPU finished it), `marks` says where the last change's time went (ms).
const monitor = {
  drawn: 0, loadedHash: null, payloadBytes: 0, renders: 0, drawSeq: 0, selected: 0, highlighted: 0,
  lastDrawMs: 0, frames: 0, marks: {},
};
window.__dfatlasMap = monitor;

const cache = new Map();          // payload hash -> decoded data (one run per map, kept while the page lives)
let data = null;                  // the decoded payload shown now
let layer = null;                 // the level's points now drawn (see layerOf)
let args = {};
let mode = 'panZoom';
let density = false;
let hidden = { colour: new Set(), marker: new Set() };
let selection = null;             // {kind, polygon|true/pred|query|videos, hash}
let selectedRows = [];            // layer rows of the selection (for highlight and linked views)
let highlightKey = '';            // what the highlighted set was computed from
let focus = null;                 // {video}: a one-off highlight from a command
let lastCommand = null;
let appliedInitial = false;
let request = 0;                  // counts requests for the payload (a reloaded frame asks again)
let requestedHash = null;
let suppressSelect = false;
let pendingLasso = false;
let clickSeq = 0;
let click = null;
let zoom = null;
let sizeNow = SIZES[0][1];
let styleKey = '';                // the colours and sizes last set
let orderSet = false;             // a draw order (highlight last) is set
let fitView = null;               // the camera of the whole map (a zoom there is no zoom)
let hoverVideo = null;
const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel('dfatlas-map') : null;
const frameId = Math.random().toString(36).slice(2);

const renderer = createDirectRenderer(canvas);
const renderFrame = renderer.render;
renderer.render = (drawFn, target) => { monitor.frames += 1; renderFrame(drawFn, target); };

const scatterplot = createScatterplot({
  canvas,
  renderer,
  pointSize: SIZES[0][1],
  pointSizeSelected: 2,
  pointOutlineWidth: 1,
  opacity: 0.85,
  pointColor: ['#999999'],
  colorBy: 'valueA',
  sizeBy: 'valueA',
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
  // one record batch (the server writes one): the typed arrays over the received bytes, no copy
  const values = (name) => (col(name).data.length === 1 ? col(name).data[0].values : col(name).toArray());
  const n = table.numRows;
  const x = values('x');
  const y = values('y');
  const [x0, y0, x1, y1] = meta.bounds;
  const scale = 1.9 / Math.max(x1 - x0, y1 - y0, 1e-9);
  const cx = (x0 + x1) / 2;
  const cy = (y0 + y1) / 2;
  const video = col('video').data[0];
  const d = {
    hash, meta, n, x, y, scale, cx, cy,
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
// carries each point's classes (`face`: identity at face level; a video's first face at video level,
// which holds the video's prediction), the point arrays handed to regl-scatterplot (their colour slot
// and marker are rewritten in place) and, after the first draw, the spatial index.
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
    highlighted: new Uint8Array(n), nHighlighted: 0, spatialIndex: null, extremes: [lo, hi, blo, bhi] };
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
  const source = {
    pred: [pred, d.meta.labels], true: [d.truth, d.meta.labels], correct: [ok, d.meta.correct],
    database: [d.dataset, d.meta.databases],
  }[cfg.colour] || [pred, d.meta.labels];
  const [colourSrc, colourVocab] = source;
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
  return { pred, colourSrc, colourSlot, colourHidden, markerSrc, shape, markerHidden, dsShown, slots: legend.length + 1 };
}

// The highlighted set (config.highlight {datasets, videos} and a focused video): drawn last and larger.
function markHighlight(L) {
  const h = args.config.highlight || {};
  const videos = new Set([...(h.videos || []), ...(focus ? [focus.video] : [])]);
  const datasets = new Set(h.datasets || []);
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
  monitor.highlighted = m;
  return true;
}

function hexRgba(hex, alpha) {
  const h = hex.replace('#', '');
  const full = h.length === 3 ? h.split('').map((c) => c + c).join('') : h;
  return [0, 2, 4].map((i) => parseInt(full.slice(i, i + 2), 16) / 255).concat([alpha]);
}

// Colour slots: the legend's entries, 'other', then hidden (size 0), then the same colours highlighted.
function style(t, highlighted) {
  const colours = [...args.config.colour_legend.map((e) => e.color), OTHER_COLOUR];
  const base = colours.map((c) => hexRgba(c, highlighted ? DIMMED : 1));
  const top = colours.map((c) => hexRgba(c, 1));
  const size = sizeNow;
  return {
    pointColor: [...base, [0, 0, 0, 0], ...top],
    pointSize: [...colours.map(() => size), 0, ...colours.map(() => size + HIGHLIGHT_EXTRA)],
  };
}

function redraw() {
  if (!data) return;
  const t0 = performance.now();
  const L = layerOf(args.config.level === 'video' ? 'video' : 'frame');
  const t = tables();
  const d = data;
  const newHighlight = markHighlight(L);
  const hiddenSlot = t.slots;
  let m = 0;
  for (let i = 0; i < L.n; i++) {
    const f = L.face ? L.face[i] : i;
    const cc = t.colourSrc[f];
    const mc = t.markerSrc[f];
    const p = L.points[i];
    p[3] = t.shape[mc];
    if (f < 0 || !t.dsShown[d.dataset[f]] || t.colourHidden[cc] || t.markerHidden[mc]) {
      L.shown[i] = 0; p[2] = hiddenSlot;
    } else {
      L.shown[i] = 1; m++;
      p[2] = L.highlighted[i] ? t.colourSlot[cc] + hiddenSlot + 1 : t.colourSlot[cc];
    }
  }
  L.nShown = m;
  const fresh = layer !== L;
  layer = L;
  sizeNow = sizeFor(m);
  const t1 = performance.now();
  // regl-scatterplot redraws after a set() in its next animation frame: set the colours and sizes first and
  // draw the points once that has passed; the selection goes in with the points. A change renders ONE
  // frame (draw() resolves once it is rendered), and one pixel read back waits for the GPU to finish it.
  const props = style(t, L.nHighlighted > 0);
  const key = JSON.stringify(props);
  const styled = key === styleKey ? Promise.resolve() : scatterplot.set(props);
  styleKey = key;
  selectedRows = matches(selection);
  monitor.selected = selectedRows.length;
  const seq = ++monitor.drawSeq;
  monitor.drawn = 0;
  styled.then(() => (seq === monitor.drawSeq ? scatterplot.draw(L.points, {
    zDataType: 'categorical', wDataType: 'categorical', preventFilterReset: true,
    spatialIndex: L.spatialIndex || undefined, select: selectedRows,
  }) : null)).then(() => {
    if (seq !== monitor.drawSeq) return;
    const gl = renderer.regl._gl;
    gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, new Uint8Array(4));
    const t2 = performance.now();
    if (!L.spatialIndex) L.spatialIndex = scatterplot.get('spatialIndex');
    // the draw order holds for these points (a draw of another level resets it)
    const ordered = L.nHighlighted > 0;
    if ((fresh || newHighlight) && (ordered || orderSet)) {
      scatterplot.set({ pointOrder: ordered ? drawOrder(L) : null });
      orderSet = ordered;
    }
    monitor.drawn = m;
    monitor.lastDrawMs = t2 - t0;
    monitor.marks = { prepareMs: t1 - t0, drawMs: t2 - t1 };
    drawDensity();
    updateStatus();
  });
  renderLegend();
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
  if (size === sizeNow) return;
  sizeNow = size;
  const props = style(null, layer.nHighlighted > 0);
  styleKey = JSON.stringify(props);
  scatterplot.set(props);
}

function updateStatus() {
  if (!layer) return;
  const unit = layer.level === 'video' ? 'videos' : 'faces';
  const sel = selectedRows.length ? ` · ${selectedRows.length.toLocaleString()} selected` : '';
  const hl = layer.nHighlighted ? ` · ${layer.nHighlighted.toLocaleString()} highlighted` : '';
  status.textContent = `${layer.nShown.toLocaleString()} ${unit} drawn${sel}${hl}`;
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
    const want = new Set(sel.videos || []);
    const videoHit = new Uint8Array(d.videoNames.length);
    d.videoNames.forEach((v, i) => { if (want.has(String(v))) videoHit[i] = 1; });
    for (let i = 0; i < L.n; i++) if (L.shown[i] && videoHit[d.video[faceOf(L, i)]]) out.push(i);
  }
  return out;
}

function reapplySelection() {
  selectedRows = matches(selection);
  monitor.selected = selectedRows.length;
  suppressSelect = true;
  if (selectedRows.length) scatterplot.select(selectedRows, { preventEvent: true });
  else scatterplot.deselect({ preventEvent: true });
  suppressSelect = false;
}

function zoomToRows(rows) {
  if (!rows.length) return;
  scatterplot.zoomToPoints(rows, { padding: 0.3, transition: false });
}

function setSelection(sel, { zoomTo = false, broadcast = true } = {}) {
  selection = sel;
  reapplySelection();
  if (zoomTo) zoomToRows(selectedRows);
  updateStatus();
  if (broadcast) share('selection');
  emit();
}

scatterplot.subscribe('lassoEnd', ({ coordinates }) => {
  pendingLasso = false;
  if (!data || coordinates.length < 3) return;
  const polygon = coordinates.map(([gx, gy]) => toData(gx, gy).map((v) => +v.toFixed(5)));
  setSelection({ kind: mode === 'rectangle' ? 'box' : 'lasso', polygon, hash: data.hash });
});
scatterplot.subscribe('lassoStart', () => { pendingLasso = true; });
scatterplot.subscribe('select', ({ points }) => {
  if (suppressSelect || pendingLasso || !data || points.length !== 1 || !layer.shown[points[0]]) return;
  // A click on one point: the component says which (the video drill-down opens from it) and selects its video.
  const f = faceOf(layer, points[0]);
  const video = String(data.videoNames[data.video[f]]);
  click = { video, dataset: data.meta.datasets[data.dataset[f]], seq: ++clickSeq };
  setSelection({ kind: 'videos', videos: [video], hash: data.hash });
});
scatterplot.subscribe('deselect', () => {
  if (suppressSelect || !selection) return;
  setSelection(null);
});
scatterplot.subscribe('pointover', (i) => {
  if (!data || !layer || i >= layer.n || !layer.shown[i]) return;
  const L = layer;
  const d = data;
  const f = faceOf(L, i);
  const t = tables();
  const names = args.config.class_names || {};
  const name = (l) => names[l] || l;
  const clf = d.score[args.config.classifier] ? args.config.classifier : d.meta.classifiers[0];
  const score = d.score[clf][f];
  const unit = L.face ? `video (${L.count[i]} faces)` : 'face';
  tooltip.textContent = `${printable(d.videoNames[d.video[f]])} — ${unit}\ntrue: ${name(d.meta.labels[d.truth[f]])} · `
    + `predicted: ${name(d.meta.labels[t.pred[f]])}${Number.isFinite(score) && !L.face ? ` · real-score ${score.toFixed(3)}` : ''}`;
  tooltip.style.whiteSpace = 'pre';
  const [sx, sy] = scatterplot.getScreenPosition(i) || [0, 0];
  tooltip.style.left = `${Math.min(sx + 12, canvas.clientWidth - 260)}px`;
  tooltip.style.top = `${sy + 12}px`;
  tooltip.hidden = false;
  hoverVideo = String(d.videoNames[d.video[f]]);
  share('hover');
});
scatterplot.subscribe('pointout', () => { tooltip.hidden = true; hoverVideo = null; share('hover'); });

// ---- linked views (Compare): hover and selection by video id, between maps of one group ------------

function share(what) {
  if (!channel || !args.group || !data || !layer) return;
  const msg = { from: frameId, group: args.group, what };
  if (what === 'hover') msg.video = hoverVideo;
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
      if (!msg.video) { scatterplot.hover(-1, { preventEvent: true }); return; }
      const rows = matches({ kind: 'videos', videos: [msg.video] });
      if (rows.length) scatterplot.hover(rows[0], { showReticleOnce: true, preventEvent: true });
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

// GL -> CSS pixel mapping (an axis-aligned affine map) from the screen positions of the layer's extreme points.
function screenMapping() {
  const L = layer;
  const [lo, hi, blo, bhi] = L.extremes;
  const p = scatterplot.getScreenPosition(lo); const q = scatterplot.getScreenPosition(hi);
  const u = scatterplot.getScreenPosition(blo); const w = scatterplot.getScreenPosition(bhi);
  const dx = L.gx[hi] - L.gx[lo] || 1;
  const dy = L.gy[bhi] - L.gy[blo] || 1;
  const a = (q[0] - p[0]) / dx;
  const c = (w[1] - u[1]) / dy;
  return { a, b: p[0] - a * L.gx[lo], c, e: u[1] - c * L.gy[blo] };
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

// For the browser tests: screen positions (CSS px) of the shown points of one true class.
monitor.screenPoints = (label, limit = 5000) => {
  if (!data || !layer) return [];
  const code = data.labelCode.get(label);
  const out = [];
  for (let i = 0; i < layer.n && out.length < limit; i++) {
    if (layer.shown[i] && data.truth[faceOf(layer, i)] === code) out.push(scatterplot.getScreenPosition(i));
  }
  return out;
};

// ---- Streamlit -----------------------------------------------------------------------------------

function emit() {
  setComponentValue({
    have: data ? data.hash : null, req: request, selection, zoom, density, click,
    hidden_colour: [...hidden.colour], hidden_marker: [...hidden.marker], drawn: layer ? layer.nShown : 0,
  });
}

function applyInitial(state) {
  hidden = { colour: new Set(state.hidden_colour || []), marker: new Set(state.hidden_marker || []) };
  density = Boolean(state.density);
  el('density').classList.toggle('on', density);
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
// selection, `zoom` zooms to it; `focus` {video} highlights that video and zooms to it.
function applyCommand(cmd) {
  if (!cmd || (lastCommand && lastCommand.seq === cmd.seq)) return;
  lastCommand = cmd;
  if (cmd.focus !== undefined) {
    focus = cmd.focus && cmd.focus.video ? { video: String(cmd.focus.video) } : null;
    redraw();
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
      const t = performance.now();
      cache.set(hash, decode(next.payload, hash));
      monitor.decodeMs = performance.now() - t;
    }
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
  if (fresh) { layer = null; highlightKey = ''; focus = null; }
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
