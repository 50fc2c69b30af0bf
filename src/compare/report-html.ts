/**
 * report.html: one self-contained page (no network, no script, no CDN): totals, the
 * per-endpoint table, the production-status x target-status matrix, the fields that differ
 * with counts and examples, and each endpoint's latency distributions as inline SVG.
 */
import { SKIP_REASONS } from './compare-http';
import { bucketLow, LAT_BUCKETS, type LatencySummary } from './latency';
import type { CompareSummary, DiffLine, EndpointSummary } from './summary';
import { latencyLegend } from './report-text';

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}
td.l,th.l{text-align:left}.diff{color:#b00020;font-weight:600}.noise{color:#888}.ok{color:#1b5e20}code{font-size:12px}
svg{background:#fafafa;border:1px solid #ddd;margin:4px 12px 4px 0}.legend span{margin-right:14px}`;

/** Inline SVG: the two latency histograms of an endpoint (production blue, target orange), log-scaled ms axis. */
export function latencyChart(on: LatencySummary, tg: LatencySummary, title: string): string {
  const w = 520;
  const h = 160;
  const pad = 28;
  let lo = LAT_BUCKETS;
  let hi = 0;
  for (let i = 0; i < LAT_BUCKETS; i++)
    if ((on.buckets[i] ?? 0) + (tg.buckets[i] ?? 0) > 0) {
      lo = Math.min(lo, i);
      hi = Math.max(hi, i);
    }
  if (lo > hi)
    return `<svg class="chart" width="${w}" height="${h}" role="img" aria-label="${esc(title)}"><text x="10" y="20">no samples</text></svg>`;
  const n = hi - lo + 1;
  const bw = (w - 2 * pad) / n;
  const frac = (s: LatencySummary, i: number): number => (s.count === 0 ? 0 : (s.buckets[i] ?? 0) / s.count);
  let max = 0;
  for (let i = lo; i <= hi; i++) max = Math.max(max, frac(on, i), frac(tg, i));
  const y = (f: number): number => h - pad - (f / (max || 1)) * (h - 2 * pad);
  const bars: string[] = [];
  for (let i = lo; i <= hi; i++) {
    const x = pad + (i - lo) * bw;
    const fo = frac(on, i);
    const ft = frac(tg, i);
    if (fo > 0)
      bars.push(
        `<rect x="${(x + 1).toFixed(1)}" y="${y(fo).toFixed(1)}" width="${Math.max(1, bw / 2 - 1).toFixed(1)}" height="${(h - pad - y(fo)).toFixed(1)}" fill="#1e88e5"><title>production ${bucketLow(i).toFixed(2)} ms: ${on.buckets[i] ?? 0}</title></rect>`,
      );
    if (ft > 0)
      bars.push(
        `<rect x="${(x + bw / 2).toFixed(1)}" y="${y(ft).toFixed(1)}" width="${Math.max(1, bw / 2 - 1).toFixed(1)}" height="${(h - pad - y(ft)).toFixed(1)}" fill="#fb8c00"><title>target ${bucketLow(i).toFixed(2)} ms: ${tg.buckets[i] ?? 0}</title></rect>`,
      );
  }
  const ticks: string[] = [];
  for (let i = lo; i <= hi + 1; i += Math.max(1, Math.ceil(n / 6))) {
    const x = pad + (i - lo) * bw;
    const v = bucketLow(i);
    ticks.push(
      `<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${h - pad}" y2="${h - pad + 4}" stroke="#666"/><text x="${x.toFixed(1)}" y="${h - pad + 16}" font-size="10" text-anchor="middle">${v < 1 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)}</text>`,
    );
  }
  return (
    `<svg class="chart" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(title)}">` +
    `<text x="${pad}" y="14" font-size="11">${esc(title)} (ms, share of responses)</text>` +
    `<line x1="${pad}" x2="${w - pad}" y1="${h - pad}" y2="${h - pad}" stroke="#666"/>${bars.join('')}${ticks.join('')}</svg>`
  );
}

function endpointRow(e: EndpointSummary): string {
  const c = e.counts;
  const sk = SKIP_REASONS.reduce((a, r) => a + c.skipped[r], 0);
  const lo = e.latency.online;
  const lt = e.latency.target;
  return `<tr><td class="l"><code>${esc(e.endpoint)}</code></td><td>${c.exchanges}</td><td>${c.compared}</td><td class="ok">${c.identical}</td><td class="${c.different > 0 ? 'diff' : ''}">${c.different}</td><td class="noise">${c.noise}</td><td>${sk}</td><td>${lo.p50} / ${lo.p90} / ${lo.p99}</td><td>${lt.p50} / ${lt.p90} / ${lt.p99}</td></tr>`;
}

/** The whole page. `lines` are the first lines of diffs.jsonl (examples of differing exchanges). */
export function renderHtml(s: CompareSummary, lines: readonly DiffLine[]): string {
  const t = s.totals;
  const skipped = SKIP_REASONS.reduce((a, r) => a + t.skipped[r], 0);
  const p: string[] = [];
  p.push(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>tcpcopy comparison</title><style>${CSS}</style></head><body>`,
  );
  p.push(`<h1>Did the target answer like production?</h1>`);
  p.push(
    `<p>Mode <b>${s.mode}</b>; noise cancellation: <b>${s.noise === 'off' ? 'off' : s.noise === 'reference' ? `reference target ${esc(s.reference ?? '')}` : 'two replicas'}</b>` +
      (s.noise === 'off'
        ? ''
        : ` (thresholds: relative ${s.thresholds.relative}%, absolute ${s.thresholds.absolute}%)`) +
      `.</p>`,
  );
  p.push(
    `<table id="totals"><tr><th>exchanges</th><th>compared</th><th>identical</th><th>different</th><th>noise only</th>${SKIP_REASONS.map((r) => `<th>skipped: ${r}</th>`).join('')}</tr>` +
      `<tr><td>${t.exchanges}</td><td>${t.compared}</td><td class="ok">${t.identical}</td><td class="${t.different > 0 ? 'diff' : ''}">${t.different}</td><td class="noise">${t.noise}</td>${SKIP_REASONS.map((r) => `<td>${t.skipped[r]}</td>`).join('')}</tr></table>`,
  );
  p.push(
    `<p>exchanges ${t.exchanges} = compared ${t.compared} + skipped ${skipped}: ${s.identity ? 'holds' : '<b class="diff">does not hold</b>'}.</p>`,
  );
  p.push(
    `<h2>Endpoints</h2><table id="endpoints"><tr><th class="l">endpoint</th><th>exchanges</th><th>compared</th><th>identical</th><th>different</th><th>noise</th><th>skipped</th><th>production ms p50/p90/p99</th><th>target ms p50/p90/p99</th></tr>`,
  );
  for (const e of s.endpoints) p.push(endpointRow(e));
  p.push(`</table>`);
  // status matrix
  const on = [...new Set(s.statusMatrix.map((m) => m.online))].sort((a, b) => a - b);
  const tg = [...new Set(s.statusMatrix.map((m) => m.target))].sort((a, b) => a - b);
  if (on.length > 0) {
    const cell = new Map(s.statusMatrix.map((m) => [`${m.online}/${m.target}`, m.count]));
    p.push(
      `<h2>Status: production (rows) x target (columns)</h2><table id="status"><tr><th></th>${tg.map((x) => `<th>${x}</th>`).join('')}</tr>`,
    );
    for (const a of on)
      p.push(
        `<tr><th>${a}</th>${tg.map((b) => `<td class="${a !== b && cell.has(`${a}/${b}`) ? 'diff' : ''}">${cell.get(`${a}/${b}`) ?? ''}</td>`).join('')}</tr>`,
      );
    p.push(`</table>`);
  }
  p.push(
    `<h2>Fields that differ</h2><table id="fields"><tr><th class="l">endpoint</th><th class="l">field</th><th>exchanges</th><th>noise pair</th><th class="l">verdict</th><th class="l">kinds</th><th class="l">example</th></tr>`,
  );
  for (const e of s.endpoints)
    for (const f of e.fields) {
      const ex = f.examples[0];
      p.push(
        `<tr><td class="l"><code>${esc(e.endpoint)}</code></td><td class="l"><code>${esc(f.field)}</code></td><td>${f.raw}</td><td>${s.noise === 'off' ? '' : f.noise}</td>` +
          `<td class="l ${f.isNoise ? 'noise' : 'diff'}">${f.isNoise ? 'noise' : 'differs'}</td><td class="l">${esc(
            Object.entries(f.kinds)
              .map(([k, n]) => `${k} ${n}`)
              .join(', '),
          )}</td>` +
          `<td class="l">${ex ? `<code>${esc(ex.path)}</code>: <code>${esc(ex.a ?? '(none)')}</code> → <code>${esc(ex.b ?? '(none)')}</code>` : ''}</td></tr>`,
      );
    }
  p.push(`</table>`);
  p.push(
    `<h2>Latency</h2><p class="legend"><span style="color:#1e88e5">■ production</span><span style="color:#fb8c00">■ target</span></p>` +
      `<ul id="latency-legend">${latencyLegend(s)
        .map((l) => `<li>${esc(l)}</li>`)
        .join('')}</ul>`,
  );
  for (const e of s.endpoints)
    if (e.counts.compared > 0) p.push(latencyChart(e.latency.online, e.latency.target, e.endpoint));
  if (lines.length > 0) {
    p.push(
      `<h2>Differing exchanges (first ${lines.length}${s.diffLines > lines.length ? ` of ${s.diffLines}` : ''})</h2><table id="examples"><tr><th class="l">session</th><th class="l">target</th><th class="l">request</th><th>status</th><th>ms</th><th class="l">differences</th></tr>`,
    );
    for (const l of lines)
      p.push(
        `<tr><td class="l"><code>${esc(l.session)}</code></td><td class="l">${esc(l.targetAddr)}#${l.replica}</td><td class="l"><code>${esc(l.request || l.endpoint)}</code></td><td>${l.status[0]} / ${l.status[1]}</td><td>${l.latencyMs[0]} / ${l.latencyMs[1]}</td>` +
          `<td class="l">${l.diffs.map((d) => `<code>${esc(d.path)}</code> ${d.kind}`).join('<br>')}</td></tr>`,
      );
    p.push(`</table>`);
  }
  p.push(
    `<p class="noise">Ignored headers: ${esc(s.rules.ignoreHeaders.join(', '))}. Ignored paths: ${esc(s.rules.ignorePaths.join(', ') || 'none')}.</p></body></html>\n`,
  );
  return p.join('\n');
}
