// The live loss curve: training loss per tick as a line, validation loss per epoch as dots, on a
// shared axis of epochs.
export function drawCurves(canvas, { ticks, val }) {
  const ctx = canvas.getContext("2d");
  const [w, h, left, bottom, pad] = [canvas.width, canvas.height, 52, 28, 10];
  ctx.clearRect(0, 0, w, h);
  const points = ticks.concat(val);
  if (points.length === 0) return;
  // The first ticks' losses are several times the rest: start the axis after the first tenth.
  const settled = points.filter(([x]) => x >= 0.1);
  const ys = (settled.length ? settled : points).map(([, y]) => y);
  const [yMin, yMax] = [Math.min(...ys), Math.max(...ys)];
  const xMax = Math.max(1, ...points.map(([x]) => x));
  const sx = (x) => left + (x / xMax) * (w - left - pad);
  const sy = (y) => pad + (1 - (y - yMin) / Math.max(yMax - yMin, 1e-6)) * (h - pad - bottom);
  ctx.strokeStyle = "#999";
  ctx.fillStyle = "#444";
  ctx.font = "11px sans-serif";
  ctx.beginPath();
  ctx.moveTo(left, pad);
  ctx.lineTo(left, h - bottom);
  ctx.lineTo(w - pad, h - bottom);
  ctx.stroke();
  for (const y of [yMin, (yMin + yMax) / 2, yMax]) ctx.fillText(y.toFixed(1), 4, sy(y) + 4);
  for (let e = 0; e <= xMax; e += Math.max(1, Math.round(xMax / 10))) ctx.fillText(String(e), sx(e) - 3, h - bottom + 14);
  ctx.fillText("epoch", w - 44, h - 4);
  ctx.save();
  ctx.beginPath();
  ctx.rect(left, pad - 2, w - left - pad + 2, h - pad - bottom + 4);
  ctx.clip();
  ctx.strokeStyle = "#1f6fb4";
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  ticks.forEach(([x, y], i) => (i ? ctx.lineTo(sx(x), sy(y)) : ctx.moveTo(sx(x), sy(y))));
  ctx.stroke();
  ctx.fillStyle = "#d2691e";
  for (const [x, y] of val) {
    ctx.beginPath();
    ctx.arc(sx(x), sy(y), 4, 0, 2 * Math.PI);
    ctx.fill();
  }
  ctx.restore();
  ctx.fillStyle = "#1f6fb4";
  ctx.fillText("train", w - 110, pad + 10);
  ctx.fillStyle = "#d2691e";
  ctx.fillText("validation", w - 70, pad + 10);
}
