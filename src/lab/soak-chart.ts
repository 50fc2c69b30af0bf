/**
 * The soak test's chart: a self-contained SVG (no scripts, no external fonts or files) with
 * one panel per figure over the run's minutes (tcpcopy's RSS and V8 heap, open fds, sessions,
 * lost requests), the disturbances drawn across every panel (restarts as lines, impairments as
 * bands) and the warm-up shaded.
 */
import type { SoakEvent, SoakRow } from './soak-eval';

/** One line of a panel. */
interface Series {
  label: string;
  color: string;
  values: readonly number[];
}

const W = 900;
const PANEL_H = 150;
const LEFT = 70;
const RIGHT = 20;
const TOP = 40;
const GAP = 40;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A round upper bound for an axis. */
function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/**
 * The SVG text. `rows` one per minute (minute 1..N), `events` with ms since start,
 * `warmupMinutes` shaded, `title` on top.
 */
export function soakChart(
  rows: readonly SoakRow[],
  events: readonly SoakEvent[],
  warmupMinutes: number,
  title: string,
): string {
  const panels: Array<{ title: string; unit: string; series: Series[] }> = [
    {
      title: 'tcpcopy memory',
      unit: 'MiB',
      series: [
        { label: 'RSS', color: '#1f77b4', values: rows.map((r) => r.rssMB) },
        { label: 'V8 heap total', color: '#2ca02c', values: rows.map((r) => r.heapTotalMB) },
        { label: 'V8 heap used', color: '#98df8a', values: rows.map((r) => r.heapUsedMB) },
      ],
    },
    {
      title: 'open file descriptors',
      unit: 'fds',
      series: [{ label: 'fds', color: '#9467bd', values: rows.map((r) => r.fds) }],
    },
    {
      title: 'sessions open',
      unit: 'sessions',
      series: [{ label: 'sessions', color: '#8c564b', values: rows.map((r) => r.sessions) }],
    },
    {
      title: 'requests lost (cumulative) and in flight',
      unit: 'requests',
      series: [
        { label: 'lost', color: '#d62728', values: rows.map((r) => r.lost) },
        { label: 'in flight', color: '#ff7f0e', values: rows.map((r) => r.inFlight) },
      ],
    },
  ];
  const n = Math.max(1, rows.length);
  const plotW = W - LEFT - RIGHT;
  const H = TOP + panels.length * (PANEL_H + GAP) + 30;
  const x = (minute: number): number => LEFT + (minute / n) * plotW;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${LEFT}" y="20" font-size="14" font-weight="bold">${esc(title)}</text>`,
  );
  panels.forEach((p, i) => {
    const y0 = TOP + i * (PANEL_H + GAP) + 15;
    const ymax = niceMax(Math.max(0, ...p.series.flatMap((s) => s.values.filter((v) => Number.isFinite(v)))) * 1.05);
    const y = (v: number): number => y0 + PANEL_H - (v / ymax) * PANEL_H;
    out.push(`<text x="${LEFT}" y="${y0 - 4}" font-weight="bold">${esc(p.title)}</text>`);
    // warm-up and disturbances
    out.push(
      `<rect x="${x(0)}" y="${y0}" width="${x(Math.min(warmupMinutes, n)) - x(0)}" height="${PANEL_H}" fill="#eee"/>`,
    );
    for (const e of events) {
      const xs = x(e.startMs / 60_000);
      if (e.kind === 'impairment') {
        const xe = Math.max(xs + 1, x(e.endMs / 60_000));
        out.push(`<rect x="${xs}" y="${y0}" width="${xe - xs}" height="${PANEL_H}" fill="#fdd" opacity="0.8"/>`);
      } else {
        const c = e.kind === 'interceptRestart' ? '#17becf' : '#bcbd22';
        out.push(`<line x1="${xs}" y1="${y0}" x2="${xs}" y2="${y0 + PANEL_H}" stroke="${c}" stroke-dasharray="3,2"/>`);
      }
    }
    // axes and grid
    for (let t = 0; t <= 4; t++) {
      const v = (ymax * t) / 4;
      out.push(
        `<line x1="${LEFT}" y1="${y(v)}" x2="${W - RIGHT}" y2="${y(v)}" stroke="#ddd"/>`,
        `<text x="${LEFT - 5}" y="${y(v) + 4}" text-anchor="end">${esc(String(Math.round(v * 10) / 10))}</text>`,
      );
    }
    out.push(
      `<line x1="${LEFT}" y1="${y0}" x2="${LEFT}" y2="${y0 + PANEL_H}" stroke="#000"/>`,
      `<line x1="${LEFT}" y1="${y0 + PANEL_H}" x2="${W - RIGHT}" y2="${y0 + PANEL_H}" stroke="#000"/>`,
      `<text x="12" y="${y0 + PANEL_H / 2}" transform="rotate(-90 12 ${y0 + PANEL_H / 2})" text-anchor="middle">${esc(p.unit)}</text>`,
    );
    const step = Math.max(1, Math.ceil(n / 15));
    for (let m = 0; m <= n; m += step)
      out.push(`<text x="${x(m)}" y="${y0 + PANEL_H + 13}" text-anchor="middle">${m}</text>`);
    // series
    p.series.forEach((s, j) => {
      const pts = s.values
        .map((v, k) => (Number.isFinite(v) ? `${x(rows[k]?.minute ?? k + 1).toFixed(1)},${y(v).toFixed(1)}` : ''))
        .filter((q) => q !== '');
      if (pts.length > 0)
        out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="1.8" points="${pts.join(' ')}"/>`);
      const lx = W - RIGHT - 130 * (p.series.length - j);
      out.push(
        `<rect x="${lx}" y="${y0 - 13}" width="10" height="10" fill="${s.color}"/>`,
        `<text x="${lx + 14}" y="${y0 - 4}">${esc(s.label)}</text>`,
      );
    });
  });
  const ly = H - 10;
  out.push(
    `<text x="${LEFT}" y="${ly}">minutes; grey: warm-up; dashed cyan: intercept restarted; dashed olive: target restarted; red band: impairment</text>`,
    '</svg>',
  );
  return out.join('\n') + '\n';
}
