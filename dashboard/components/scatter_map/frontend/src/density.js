// Density contours drawn above the points (so a million points never hide them): the shown points are
// binned on a screen grid, smoothed, and the edges between log-density bands are stroked.
const GRID = 128;
const BANDS = 6;

function blur(a, n) {
  const out = new Float32Array(a.length);
  const k = [1, 4, 6, 4, 1];
  const tmp = new Float32Array(a.length);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      let s = 0;
      for (let i = -2; i <= 2; i++) { const xx = Math.min(n - 1, Math.max(0, x + i)); s += k[i + 2] * a[y * n + xx]; }
      tmp[y * n + x] = s / 16;
    }
  }
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      let s = 0;
      for (let i = -2; i <= 2; i++) { const yy = Math.min(n - 1, Math.max(0, y + i)); s += k[i + 2] * tmp[yy * n + x]; }
      out[y * n + x] = s / 16;
    }
  }
  return out;
}

// `shown[i]`: point i counts; gx, gy: its GL position; toX, toY: GL -> canvas pixels.
export function drawContours(ctx, shown, gx, gy, toX, toY, width, height) {
  const grid = new Float32Array(GRID * GRID);
  for (let i = 0; i < shown.length; i++) {
    if (!shown[i]) continue;
    const cx = Math.floor((toX(gx[i]) / width) * GRID);
    const cy = Math.floor((toY(gy[i]) / height) * GRID);
    if (cx >= 0 && cx < GRID && cy >= 0 && cy < GRID) grid[cy * GRID + cx] += 1;
  }
  const smooth = blur(blur(grid, GRID), GRID);
  let max = 0;
  for (const v of smooth) max = Math.max(max, v);
  if (max <= 0) return;
  const level = new Int8Array(GRID * GRID);
  const lmax = Math.log1p(max);
  for (let i = 0; i < smooth.length; i++) {
    level[i] = smooth[i] < max * 0.01 ? 0 : Math.ceil((Math.log1p(smooth[i]) / lmax) * BANDS);
  }
  const cw = width / GRID;
  const ch = height / GRID;
  ctx.lineWidth = Math.max(1, Math.round(devicePixelRatio * 1.2));
  ctx.strokeStyle = 'rgba(20, 20, 40, 0.75)';
  ctx.beginPath();
  for (let y = 0; y < GRID; y++) {
    for (let x = 0; x < GRID; x++) {
      const v = level[y * GRID + x];
      if (x + 1 < GRID && level[y * GRID + x + 1] !== v) { ctx.moveTo((x + 1) * cw, y * ch); ctx.lineTo((x + 1) * cw, (y + 1) * ch); }
      if (y + 1 < GRID && level[(y + 1) * GRID + x] !== v) { ctx.moveTo(x * cw, (y + 1) * ch); ctx.lineTo((x + 1) * cw, (y + 1) * ch); }
    }
  }
  ctx.stroke();
}
