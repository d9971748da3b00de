// The marker shapes (one per class, in the order of data_catalog.taxonomy.MARKER_SYMBOLS) as one small
// texture of signed distances: 4 x 4 cells of CELL px, each the point's own square (-1..1, y up) with a
// margin. The point fragment shader (marker.fs.glsl) reads one texel per pixel and anti-aliases the
// distance at the point's size. Why a texture and not a shape function per class: software WebGL
// (SwiftShader) runs every branch of a shader for every pixel, so a chain of sixteen shape functions cost
// 2-4x a plain disc per frame; one texel read costs about as much as the disc.
//
// Shapes: a regular polygon or star with n points (iq's sdStar: m = 2 a polygon, m = n the pointiest
// star), a disc, a cross of two bars, an hourglass; each rotated and shifted to sit centred.

export const CELL = 32;
export const MARGIN = 3;                 // px of each cell outside the point's square (no bleeding)
export const GRID = 4;
const SIZE = CELL * GRID;

const STAR = 0; const DISC = 1; const BARS = 2; const HOURGLASS = 3;
const Q = Math.PI / 4; const H = Math.PI / 2;
// [kind, points n, sharpness m, outer radius, rotation, vertical offset]
export const SHAPES = [
  [DISC, 4, 2, 0.9, 0, 0],                 // circle
  [BARS, 4, 2, 0.9, Q, 0],                 // x
  [STAR, 4, 2, 0.98, 0, 0],                // diamond
  [STAR, 4, 2, 1.1, Q, 0],                 // square
  [BARS, 4, 2, 0.9, 0, 0],                 // cross
  [STAR, 3, 2, 0.98, 0, 0.25],             // triangle-up
  [STAR, 5, 5 / 1.9, 0.97, 0, 0.05],       // star
  [STAR, 5, 2, 0.92, 0, 0.06],             // pentagon
  [STAR, 6, 3, 0.95, 0, 0],                // hexagram
  [STAR, 3, 2, 0.98, Math.PI, 0.25],       // triangle-down
  [STAR, 4, 2.6, 0.98, 0, 0],              // star-square
  [HOURGLASS, 4, 2, 0.85, 0, 0],           // hourglass
  [HOURGLASS, 4, 2, 0.85, H, 0],           // bowtie
  [STAR, 3, 2, 0.98, H, 0.25],             // triangle-left
  [STAR, 3, 2, 0.98, -H, 0.25],            // triangle-right
  [STAR, 6, 5, 0.95, 0, 0],                // asterisk
];

function star(x, y, n, m, r) {
  const an = Math.PI / n; const en = Math.PI / m;
  const bn = ((Math.atan2(x, y) % (2 * an)) + 2 * an) % (2 * an) - an;
  const l = Math.hypot(x, y);
  let sx = l * Math.cos(bn) - r * Math.cos(an);
  let sy = l * Math.abs(Math.sin(bn)) - r * Math.sin(an);
  const t = Math.min(Math.max(-(sx * Math.cos(en) + sy * Math.sin(en)), 0), r * Math.sin(an) / Math.sin(en));
  sx += Math.cos(en) * t; sy += Math.sin(en) * t;
  return Math.hypot(sx, sy) * Math.sign(sx);
}

export function distance(shape, px, py) {
  const [kind, n, m, r, turn, dy] = SHAPES[shape] || SHAPES[0];
  const c = Math.cos(turn); const s = Math.sin(turn);
  const x = c * px + s * py; const y = c * py - s * px + dy;
  if (kind === DISC) return Math.hypot(px, py) - r;
  const ax = Math.abs(x); const ay = Math.abs(y);
  if (kind === BARS) return Math.max(Math.min(ax, ay) - 0.22, Math.max(ax, ay) - r);
  if (kind === HOURGLASS) return Math.max(ax - ay, Math.max(ax, ay) - r);
  return star(x, y, n, m, r);
}

// Texel values: 0.5 + distance / 2 (the distance in the point's square, clamped to -1..1).
export function atlasData() {
  const data = new Uint8Array(SIZE * SIZE);
  const inner = CELL - 2 * MARGIN;
  for (let shape = 0; shape < GRID * GRID; shape++) {
    const ox = (shape % GRID) * CELL; const oy = Math.floor(shape / GRID) * CELL;
    for (let j = 0; j < CELL; j++) {
      for (let i = 0; i < CELL; i++) {
        const px = ((i + 0.5 - MARGIN) / inner) * 2 - 1;
        const py = 1 - ((j + 0.5 - MARGIN) / inner) * 2;   // texture rows go down, like gl_PointCoord.y
        const d = Math.max(-1, Math.min(1, distance(shape, px, py)));
        data[(oy + j) * SIZE + ox + i] = Math.round((0.5 + d / 2) * 255);
      }
    }
  }
  return data;
}

const textures = new WeakMap();

// The atlas texture of a regl context (made once per context).
export function markerAtlas(regl) {
  let tex = textures.get(regl);
  if (!tex) {
    tex = regl.texture({ data: atlasData(), width: SIZE, height: SIZE, format: 'alpha', min: 'linear', mag: 'linear',
      wrapS: 'clamp', wrapT: 'clamp' });
    textures.set(regl, tex);
  }
  return tex;
}
