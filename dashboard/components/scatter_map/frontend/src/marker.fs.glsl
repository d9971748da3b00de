
precision highp float;

// One marker shape per true class (shapeIndex, in the order of data_catalog.taxonomy.MARKER_SYMBOLS):
// signed distances in the point's own square (-1..1, y up), filled, anti-aliased over one pixel.
uniform float antiAliasing;

varying vec4 color;
varying float finalPointSize;
varying float shapeIndex;

float ngon(vec2 p, float n, float r, float rot) {
  float a = atan(p.x, p.y) + rot;
  float b = 6.2831853 / n;
  return cos(floor(0.5 + a / b) * b - a) * length(p) - r;
}

float star(vec2 p, float r, float n, float m) {
  float an = 3.141593 / n;
  float en = 3.141593 / m;
  vec2 acs = vec2(cos(an), sin(an));
  vec2 ecs = vec2(cos(en), sin(en));
  float bn = mod(atan(p.x, p.y), 2.0 * an) - an;
  p = length(p) * vec2(cos(bn), abs(sin(bn)));
  p -= r * acs;
  p += ecs * clamp(-dot(p, ecs), 0.0, r * acs.y / ecs.y);
  return length(p) * sign(p.x);
}

float bars(vec2 p, float w) {
  return max(min(abs(p.x), abs(p.y)) - w, max(abs(p.x), abs(p.y)) - 0.9);
}

float shape(vec2 p, float s) {
  if (s < 0.5) return length(p) - 0.9;                                      // circle
  if (s < 1.5) return bars(mat2(0.7071, 0.7071, -0.7071, 0.7071) * p * 1.15, 0.2);  // x
  if (s < 2.5) return (abs(p.x) + abs(p.y) - 0.98) * 0.7071;                // diamond
  if (s < 3.5) return max(abs(p.x), abs(p.y)) - 0.78;                       // square
  if (s < 4.5) return bars(p, 0.24);                                        // cross
  if (s < 5.5) return ngon(p + vec2(0.0, 0.2), 3.0, 0.48, 3.141593 / 3.0);  // triangle-up
  if (s < 6.5) return star(p + vec2(0.0, 0.05), 0.98, 5.0, 3.0);            // star
  if (s < 7.5) return ngon(p, 5.0, 0.78, 3.141593 / 5.0);                   // pentagon
  if (s < 8.5) return star(p, 0.98, 6.0, 3.0);                              // hexagram
  if (s < 9.5) return ngon(p - vec2(0.0, 0.2), 3.0, 0.48, 0.0);             // triangle-down
  if (s < 10.5) return star(p, 0.98, 4.0, 2.6);                             // star-square
  if (s < 11.5) return max(abs(p.x) - abs(p.y), max(abs(p.x), abs(p.y)) - 0.85);  // hourglass
  if (s < 12.5) return max(abs(p.y) - abs(p.x), max(abs(p.x), abs(p.y)) - 0.85);  // bowtie
  if (s < 13.5) return ngon(vec2(p.y, -p.x) - vec2(0.0, 0.2), 3.0, 0.48, 0.0);    // triangle-left
  if (s < 14.5) return ngon(vec2(-p.y, p.x) - vec2(0.0, 0.2), 3.0, 0.48, 0.0);    // triangle-right
  vec2 q = mat2(0.5, 0.866, -0.866, 0.5) * p;                               // asterisk
  vec2 r = mat2(0.5, -0.866, 0.866, 0.5) * p;
  return max(min(abs(p.x), min(abs(q.x), abs(r.x))) - 0.16, length(p) - 0.95);
}

void main() {
  vec2 p = vec2(gl_PointCoord.x * 2.0 - 1.0, 1.0 - gl_PointCoord.y * 2.0);
  float d = shape(p, shapeIndex) * finalPointSize * 0.5;
  float alpha = clamp(0.5 - d / max(antiAliasing, 0.5), 0.0, 1.0);
  if (alpha <= 0.0) discard;
  gl_FragColor = vec4(color.rgb, alpha * color.a);
}
