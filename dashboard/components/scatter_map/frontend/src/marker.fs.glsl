
precision highp float;

// One marker shape per class: the point's w value picks a cell of the marker atlas (src/marker-atlas.js,
// signed distances), read once per pixel and anti-aliased over one pixel at the point's size. Below
// 4.5 px a shape cannot be told apart: the disc's cell is read.
uniform float antiAliasing;
uniform sampler2D markerAtlas;

varying vec4 color;
varying float finalPointSize;
varying vec2 markerCell;

void main() {
  vec2 uv = markerCell + (MARGIN + gl_PointCoord * (CELL - 2.0 * MARGIN)) / ATLAS;
  float d = texture2D(markerAtlas, uv).a * 2.0 - 1.0;
  float alpha = clamp(0.5 - d * finalPointSize * 0.5 / max(antiAliasing, 0.5), 0.0, 1.0);
  if (alpha <= 0.0) discard;
  gl_FragColor = vec4(color.rgb, alpha * color.a);
}
