// A line graph of a range query in plain SVG: one polyline per series (broken where a
// series has no sample for more than a step and a half), time on x, value on y.

const NS = "http://www.w3.org/2000/svg";
export const COLORS = ["#1f6fd1", "#c2410c", "#15803d", "#a21caf", "#b45309", "#0e7490",
  "#be123c", "#4d7c0f", "#6d28d9", "#334155"];

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

/** About `count` round tick values covering [lo, hi]. */
export function ticks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

function fmt(v) {
  const a = Math.abs(v);
  if (a >= 1e9) return `${+(v / 1e9).toPrecision(3)}G`;
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
  return String(+v.toPrecision(4));
}

function clock(t, span) {
  const d = new Date(t * 1000);
  const hm = d.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", second: span < 600 ? "2-digit" : undefined });
  return span > 86400 ? `${d.getMonth() + 1}/${d.getDate()} ${hm}` : hm;
}

/**
 * series: [{name, points: [[seconds, value], ...]}]; start, end, step in seconds.
 * Returns an <svg> that scales to its container's width.
 */
export function lineChart(series, { start, end, step, width = 960, height = 320 }) {
  const m = { top: 12, right: 16, bottom: 28, left: 64 };
  const w = width - m.left - m.right;
  const h = height - m.top - m.bottom;
  let lo = Infinity, hi = -Infinity;
  for (const s of series) for (const [, v] of s.points) if (isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (lo === Infinity) { lo = 0; hi = 1; }
  if (lo === hi) { lo -= Math.abs(lo) * 0.1 || 1; hi += Math.abs(hi) * 0.1 || 1; }
  const x = (t) => m.left + ((t - start) / (end - start || 1)) * w;
  const y = (v) => m.top + h - ((v - lo) / (hi - lo)) * h;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img",
    "aria-label": `Graph of ${series.length} series from ${new Date(start * 1000).toLocaleString()} to ${new Date(end * 1000).toLocaleString()}` });
  const grid = svg("g", { class: "grid" });
  for (const v of ticks(lo, hi)) {
    grid.append(svg("line", { x1: m.left, x2: m.left + w, y1: y(v), y2: y(v) }));
    grid.append(svg("text", { x: m.left - 6, y: y(v) + 4, "text-anchor": "end" }, fmt(v)));
  }
  const span = end - start;
  for (const t of ticks(start, end, Math.max(2, Math.floor(w / 120)))) {
    grid.append(svg("line", { x1: x(t), x2: x(t), y1: m.top, y2: m.top + h }));
    grid.append(svg("text", { x: x(t), y: height - 8, "text-anchor": "middle" }, clock(t, span)));
  }
  root.append(grid);
  root.append(svg("rect", { x: m.left, y: m.top, width: w, height: h, class: "frame" }));
  series.forEach((s, i) => {
    const g = svg("g", { class: "series", stroke: COLORS[i % COLORS.length], fill: COLORS[i % COLORS.length] });
    g.append(svg("title", {}, s.name));
    let run = [];
    const flush = () => {
      if (run.length === 1) g.append(svg("circle", { cx: run[0][0], cy: run[0][1], r: 2.5 }));
      else if (run.length > 1) g.append(svg("polyline", { points: run.map((p) => p.join(",")).join(" "), fill: "none" }));
      run = [];
    };
    let last = null;
    for (const [t, v] of s.points) {
      if (!isFinite(v)) { flush(); last = null; continue; }
      if (last !== null && t - last > step * 1.5) flush();
      run.push([+x(t).toFixed(1), +y(v).toFixed(1)]);
      last = t;
    }
    flush();
    root.append(g);
  });
  return root;
}
