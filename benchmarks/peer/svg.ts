/**
 * A small line-chart renderer to SVG text, so the suite draws its own charts without a chart
 * dependency: one or more series of (x, y) points, linear or log-10 axes with "nice" ticks,
 * a marker on every point, a legend. Non-finite and (on log axes) non-positive values are
 * left out.
 */

export interface Series {
  readonly name: string;
  readonly points: readonly (readonly [number, number])[];
  /** Labels drawn next to points (same order as points), e.g. the concurrency of each. */
  readonly labels?: readonly string[];
}

export interface ChartSpec {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly xLog?: boolean;
  readonly yLog?: boolean;
  readonly series: readonly Series[];
}

const WIDTH = 720;
const HEIGHT = 440;
const MARGIN = { left: 80, right: 170, top: 40, bottom: 56 };
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#17becf', '#7f7f7f'];
const TICKS_TARGET = 6;

const escape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const num = (n: number): string => (Math.round(n * 10) / 10).toString();

/** Tick label: 1.2k, 3M, 0.5. */
export function shortNumber(n: number): string {
  const abs = Math.abs(n);
  if (abs >= 1e6) return `${+(n / 1e6).toPrecision(3)}M`;
  if (abs >= 1e3) return `${+(n / 1e3).toPrecision(3)}k`;
  return `${+n.toPrecision(3)}`;
}

interface Axis {
  readonly toPixel: (v: number) => number;
  readonly ticks: readonly number[];
}

function axis(values: readonly number[], log: boolean, from: number, to: number): Axis {
  if (log) {
    const lo = Math.floor(Math.log10(Math.min(...values)));
    const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...values))));
    const ticks: number[] = [];
    for (let e = lo; e <= hi; e++) ticks.push(10 ** e);
    return { ticks, toPixel: (v) => from + ((Math.log10(v) - lo) / (hi - lo)) * (to - from) };
  }
  const max = Math.max(...values, 0);
  const min = Math.min(...values, 0);
  const raw = (max - min || 1) / TICKS_TARGET;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw)!;
  const lo = Math.floor(min / step) * step;
  const hi = Math.max(lo + step, Math.ceil(max / step) * step);
  const ticks: number[] = [];
  for (let t = lo; t <= hi + step / 2; t += step) ticks.push(t);
  return { ticks, toPixel: (v) => from + ((v - lo) / (hi - lo)) * (to - from) };
}

export function lineChart(spec: ChartSpec): string {
  const usable = (v: number, log: boolean | undefined): boolean => Number.isFinite(v) && (!log || v > 0);
  const series = spec.series.map((s) => {
    const kept = s.points.map((p, i) => ({ p, label: s.labels?.[i] })).filter(({ p }) => usable(p[0], spec.xLog) && usable(p[1], spec.yLog));
    return { name: s.name, points: kept.map((k) => k.p), labels: kept.map((k) => k.label) };
  });
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const plot = { x0: MARGIN.left, x1: WIDTH - MARGIN.right, y0: HEIGHT - MARGIN.bottom, y1: MARGIN.top };
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escape(spec.title)}</text>`,
  ];
  if (xs.length === 0) {
    out.push(`<text x="${WIDTH / 2}" y="${HEIGHT / 2}" text-anchor="middle">no data</text>`, '</svg>');
    return out.join('\n');
  }
  const x = axis(xs, spec.xLog === true, plot.x0, plot.x1);
  const y = axis(ys, spec.yLog === true, plot.y0, plot.y1);
  for (const t of x.ticks) {
    const px = num(x.toPixel(t));
    out.push(`<line x1="${px}" y1="${plot.y0}" x2="${px}" y2="${plot.y1}" stroke="#e5e5e5"/>`, `<text x="${px}" y="${plot.y0 + 18}" text-anchor="middle">${shortNumber(t)}</text>`);
  }
  for (const t of y.ticks) {
    const py = num(y.toPixel(t));
    out.push(`<line x1="${plot.x0}" y1="${py}" x2="${plot.x1}" y2="${py}" stroke="#e5e5e5"/>`, `<text x="${plot.x0 - 8}" y="${py}" text-anchor="end" dominant-baseline="middle">${shortNumber(t)}</text>`);
  }
  out.push(
    `<rect x="${plot.x0}" y="${plot.y1}" width="${plot.x1 - plot.x0}" height="${plot.y0 - plot.y1}" fill="none" stroke="#333"/>`,
    `<text x="${(plot.x0 + plot.x1) / 2}" y="${HEIGHT - 14}" text-anchor="middle">${escape(spec.xLabel)}</text>`,
    `<text x="18" y="${(plot.y0 + plot.y1) / 2}" text-anchor="middle" transform="rotate(-90 18 ${(plot.y0 + plot.y1) / 2})">${escape(spec.yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const pixels = s.points.map(([vx, vy]) => [num(x.toPixel(vx)), num(y.toPixel(vy))] as const);
    if (pixels.length > 1) out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pixels.map((p) => p.join(',')).join(' ')}"/>`);
    pixels.forEach(([px, py], j) => {
      out.push(`<circle cx="${px}" cy="${py}" r="3.5" fill="${color}"/>`);
      const label = s.labels[j];
      if (label !== undefined) out.push(`<text x="${px}" y="${Number(py) - 7}" text-anchor="middle" font-size="10" fill="${color}">${escape(label)}</text>`);
    });
    const ly = plot.y1 + 10 + i * 20;
    out.push(`<line x1="${plot.x1 + 14}" y1="${ly}" x2="${plot.x1 + 38}" y2="${ly}" stroke="${color}" stroke-width="2"/>`, `<text x="${plot.x1 + 44}" y="${ly}" dominant-baseline="middle">${escape(s.name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
