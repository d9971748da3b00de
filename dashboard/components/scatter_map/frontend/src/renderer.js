// A renderer for regl-scatterplot that draws straight into the visible canvas.
//
// regl-scatterplot's own renderer draws every frame into a float framebuffer on a second, window-sized
// canvas (4x multisampled), blits it onto that canvas and copies the result onto the visible canvas with
// a 2D drawImage. With software WebGL (SwiftShader: headless Chromium, machines without a GPU) that copy
// is a read-back of the whole window per frame, and it cost more than drawing 70,000 points. This one
// keeps one WebGL context per map, sized to the plot, with the same clear colour and the same blending
// (premultiplied colours over a transparent canvas), and draws nothing twice.
import createRegl from 'regl';

const EXTENSIONS = ['OES_texture_float', 'OES_element_index_uint', 'WEBGL_color_buffer_float', 'EXT_float_blend'];
const CLEAR = { color: [0, 0, 0, 0], depth: 1 };

export function createDirectRenderer(canvas) {
  // preserveDrawingBuffer: the drawn pixels stay readable (tests read them; exports copy them)
  const gl = canvas.getContext('webgl', { antialias: false, preserveDrawingBuffer: true, alpha: true, premultipliedAlpha: true });
  const extensions = EXTENSIONS.filter((name) => gl.getExtension(name));
  const regl = createRegl({ gl, extensions });
  const drawFns = new Set();
  const frame = regl.frame(() => { for (const fn of drawFns) fn(); });
  let destroyed = false;
  return {
    canvas,
    regl,
    gamma: 1,
    get isSupported() { return extensions.length === EXTENSIONS.length; },
    get isDestroyed() { return destroyed; },
    render(draw) {
      regl.clear(CLEAR);
      draw();
    },
    // The plot sizes its canvas itself (regl-scatterplot's width/height 'auto'); nothing to resize here.
    resize() {},
    refresh() { regl.poll(); },
    onFrame(fn) { drawFns.add(fn); return () => drawFns.delete(fn); },
    destroy() { destroyed = true; frame.cancel(); regl.destroy(); },
  };
}
