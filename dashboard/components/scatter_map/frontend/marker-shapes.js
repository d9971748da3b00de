// The product's own layer on regl-scatterplot: its point shader draws discs only, so this build step
// (1) hands every point's w value (its marker class) from the vertex shader to the fragment shader as a
// cell of the marker atlas, (2) replaces the point fragment shader by src/marker.fs.glsl, which draws the
// cell's shape, and (3) gives the point draw command the atlas texture (src/marker-atlas.js) as a uniform.
// regl-scatterplot is pinned (package-lock), and the build fails loudly when the code it replaces has changed.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const VS_VARYING = 'varying float finalPointSize;\n\nvoid main() {\n  vec4 state = texture2D(stateTex, stateIndex);';
const VS_END = '  gl_PointSize = finalPointSize;\n}';
const FS_START = 'const FRAGMENT_SHADER$1 = `';
const UNIFORM = '        antiAliasing: getAntiAliasing,\n        resolution: getResolution,';
const ATLAS = fileURLToPath(new URL('./src/marker-atlas.js', import.meta.url));

// The atlas layout (src/marker-atlas.js) as GLSL constants.
const LAYOUT = { CELL: 32, MARGIN: 3, GRID: 4 };
const SHAPE_FS = readFileSync(new URL('./src/marker.fs.glsl', import.meta.url), 'utf8')
  .replace('precision highp float;', `precision highp float;\n#define CELL ${LAYOUT.CELL.toFixed(1)}\n`
    + `#define MARGIN ${LAYOUT.MARGIN.toFixed(1)}\n#define ATLAS ${(LAYOUT.CELL * LAYOUT.GRID).toFixed(1)}`);
if (/[`$\\]/.test(SHAPE_FS)) throw new Error('marker-shapes: the shader holds a backtick, $ or backslash (it goes into a JS template string)');

function replaceOnce(code, from, to, what) {
  const at = code.indexOf(from);
  if (at < 0 || code.indexOf(from, at + from.length) >= 0) {
    throw new Error(`marker-shapes: regl-scatterplot's ${what} is not where it was (upgrade? re-check the shader)`);
  }
  return code.slice(0, at) + to + code.slice(at + from.length);
}

export function markerShapes() {
  return {
    name: 'dfatlas-marker-shapes',
    async transform(code, id) {
      if (!id.replace(/\\/g, '/').endsWith('regl-scatterplot/dist/regl-scatterplot.esm.js')) return null;
      const atlas = await import(ATLAS);
      for (const [k, v] of Object.entries(LAYOUT)) {
        if (atlas[k] !== v) throw new Error(`marker-shapes: ${k} is ${atlas[k]} in src/marker-atlas.js, ${v} here`);
      }
      let out = replaceOnce(code, VS_VARYING,
        'varying float finalPointSize;\nvarying vec2 markerCell;\n\nvoid main() {\n  vec4 state = texture2D(stateTex, stateIndex);',
        'point vertex shader');
      out = replaceOnce(out, VS_END, '  gl_PointSize = finalPointSize;\n'
        + '  float shape = finalPointSize < 4.5 ? 0.0 : floor(state.w + 0.5);\n'
        + `  markerCell = vec2(mod(shape, ${LAYOUT.GRID}.0), floor(shape / ${LAYOUT.GRID}.0)) * ${LAYOUT.CELL}.0 / ${LAYOUT.CELL * LAYOUT.GRID}.0;\n}`,
        'point size line');
      const start = out.indexOf(FS_START);
      const end = out.indexOf('`;', start);
      if (start < 0 || !out.slice(start, end).includes('float sdf = length(c) * finalPointSize;')) {
        throw new Error("marker-shapes: regl-scatterplot's point fragment shader is not where it was");
      }
      out = out.slice(0, start) + FS_START + SHAPE_FS + out.slice(end);
      out = replaceOnce(out, UNIFORM, UNIFORM.replace('\n', '\n        markerAtlas: () => markerAtlas(renderer.regl),\n'),
        'point draw uniforms');
      out = `import { markerAtlas } from ${JSON.stringify(ATLAS)};\n${out}`;
      return { code: out, map: null };
    },
  };
}
