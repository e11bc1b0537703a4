/**
 * The soak's chart: a small hand-written SVG (polylines on a few stacked panels, no dependency) of
 * the proxy's samples over time.
 */
import type { SoakRow } from './soak-run.js';

/** A line of a panel: its legend, colour, and value per row (NaN: no point). */
interface Series {
  label: string;
  color: string;
  value: (row: SoakRow) => number;
}

interface Panel {
  title: string;
  unit: string;
  series: Series[];
}

const MiB = 2 ** 20;
const WIDTH = 720;
const PANEL_HEIGHT = 120;
const GAP = 44;
const LEFT = 64;
const RIGHT = 16;
const TOP = 36;

const PANELS: Panel[] = [
  {
    title: 'Proxy process memory',
    unit: 'MiB',
    series: [
      { label: 'RSS', color: '#1f77b4', value: (r) => r.rss / MiB },
      { label: 'JS heap used', color: '#ff7f0e', value: (r) => r.heapUsed / MiB },
      { label: 'external', color: '#bcbd22', value: (r) => r.external / MiB },
    ],
  },
  {
    title: 'Open files and connections',
    unit: '',
    series: [
      { label: 'open fds', color: '#2ca02c', value: (r) => r.fds },
      { label: 'connections', color: '#9467bd', value: (r) => r.connections },
    ],
  },
  {
    title: 'Event-loop delay over each interval',
    unit: 'ms',
    series: [
      { label: 'p50', color: '#8c564b', value: (r) => r.delayP50 },
      { label: 'p99', color: '#d62728', value: (r) => r.delayP99 },
      { label: 'max', color: '#7f7f7f', value: (r) => r.delayMax },
    ],
  },
  {
    title: 'Proxy CPU, share of one core',
    unit: '%',
    series: [{ label: 'CPU', color: '#17becf', value: (r) => r.cpu * 100 }],
  },
];

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A round upper bound for an axis, close enough above the largest value for the lines to fill the panel. */
function niceMax(value: number): number {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

/**
 * The SVG of the samples.
 *
 * @param title - the first line (connections, duration, machine)
 */
export function soakSvg(rows: SoakRow[], title: string): string {
  const plotWidth = WIDTH - LEFT - RIGHT;
  const height = TOP + PANELS.length * (PANEL_HEIGHT + GAP);
  const tMax = Math.max(1, ...rows.map((r) => r.t));
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${LEFT}" y="18" font-size="13">${escape(title)}</text>`,
  ];
  PANELS.forEach((panel, p) => {
    const y0 = TOP + p * (PANEL_HEIGHT + GAP) + 16;
    const values = rows.flatMap((r) => panel.series.map((s) => s.value(r))).filter(Number.isFinite);
    const yMax = niceMax(Math.max(0, ...values));
    const x = (t: number): number => LEFT + (plotWidth * t) / tMax;
    const y = (v: number): number => y0 + PANEL_HEIGHT - (PANEL_HEIGHT * v) / yMax;
    out.push(`<text x="${LEFT}" y="${y0 - 6}" font-weight="bold">${escape(panel.title)}${panel.unit === '' ? '' : ` (${panel.unit})`}</text>`);
    out.push(`<rect x="${LEFT}" y="${y0}" width="${plotWidth}" height="${PANEL_HEIGHT}" fill="none" stroke="#ccc"/>`);
    for (const fraction of [0, 0.5, 1]) {
      const v = yMax * fraction;
      out.push(`<text x="${LEFT - 6}" y="${y(v) + 4}" text-anchor="end">${v.toLocaleString('en-US', { maximumFractionDigits: 1 })}</text>`);
      if (fraction === 0.5) out.push(`<line x1="${LEFT}" x2="${LEFT + plotWidth}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`);
    }
    // Minutes along the bottom of the last panel only would lose the others' scale: every panel gets them.
    const minutes = tMax / 60;
    const step = minutes > 10 ? 5 : minutes > 2 ? 1 : 0.5;
    for (let m = 0; m <= minutes + 1e-9; m += step) {
      out.push(`<text x="${x(m * 60)}" y="${y0 + PANEL_HEIGHT + 13}" text-anchor="middle">${m} min</text>`);
    }
    panel.series.forEach((s, i) => {
      const points = rows.filter((r) => Number.isFinite(s.value(r))).map((r) => `${x(r.t).toFixed(1)},${y(s.value(r)).toFixed(1)}`);
      out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="1.5" points="${points.join(' ')}"/>`);
      const lx = LEFT + plotWidth - 110 * (panel.series.length - i);
      out.push(`<line x1="${lx}" x2="${lx + 16}" y1="${y0 - 10}" y2="${y0 - 10}" stroke="${s.color}" stroke-width="2"/>`);
      out.push(`<text x="${lx + 20}" y="${y0 - 6}">${escape(s.label)}</text>`);
    });
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
