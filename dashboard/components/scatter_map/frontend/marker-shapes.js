// The product's own layer on regl-scatterplot: its point shader draws discs only, so this build step
// hands the true-class code (the `w` value of every point) to a fragment shader that draws one marker
// shape per class (signed distance functions). regl-scatterplot is pinned (package-lock), and the build
// fails loudly when the shader text it replaces has changed.
import { readFileSync } from 'node:fs';

const VS_VARYING = 'varying float finalPointSize;\n\nvoid main() {\n  vec4 state = texture2D(stateTex, stateIndex);';
const VS_END = '  gl_PointSize = finalPointSize;\n}';
const FS_START = 'const FRAGMENT_SHADER$1 = `';

const SHAPE_FS = readFileSync(new URL('./src/marker.fs.glsl', import.meta.url), 'utf8');

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
    transform(code, id) {
      if (!id.replace(/\\/g, '/').endsWith('regl-scatterplot/dist/regl-scatterplot.esm.js')) return null;
      let out = replaceOnce(code, VS_VARYING,
        'varying float finalPointSize;\nvarying float shapeIndex;\n\nvoid main() {\n  vec4 state = texture2D(stateTex, stateIndex);\n  shapeIndex = state.w;',
        'point vertex shader');
      out = replaceOnce(out, VS_END, VS_END, 'point size line');
      const start = out.indexOf(FS_START);
      const end = out.indexOf('`;', start);
      if (start < 0 || !out.slice(start, end).includes('float sdf = length(c) * finalPointSize;')) {
        throw new Error("marker-shapes: regl-scatterplot's point fragment shader is not where it was");
      }
      out = out.slice(0, start) + FS_START + SHAPE_FS + out.slice(end);
      return { code: out, map: null };
    },
  };
}
