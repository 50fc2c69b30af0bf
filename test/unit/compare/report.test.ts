import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Comparison } from '../../../src/compare/comparison';
import { compareConfig } from '../../../src/compare/config';
import { CompareOut, rerender } from '../../../src/compare/out-files';
import { compareMetrics, compareReportText, compareStatus } from '../../../src/compare/report-text';
import { buildRules } from '../../../src/compare/rules';
import { chunks, conversation, stream } from './fixtures';

async function filled(dir: string): Promise<Comparison> {
  const out = new CompareOut(dir);
  const cmp = new Comparison(compareConfig('http', buildRules()), out.line);
  for (let k = 0; k < 5; k++)
    for (const i of [1, 2, 3]) {
      const obs = cmp.openSession({
        clientIp: '198.18.0.10',
        clientPort: 40000 + k * 10 + i,
        serverIp: '198.18.1.1',
        serverPort: 80,
        targetIp: '198.18.2.1',
        targetPort: 8080,
      });
      for (const e of conversation(`nginx-conn-${i}`))
        if (e.dir === 'c') obs.clientBytes(e.data, e.t);
        else obs.onlineBytes(e.data, 0, e.t + k);
      for (const c of chunks(stream(conversation(`nginx-target-conn-${i}`), 's'), k + 1, 300))
        obs.targetBytes(c, 0, 5 + k * 3);
      obs.end(100);
    }
  cmp.finish();
  await out.finish(cmp.summary());
  return cmp;
}

test('--compare-out writes diffs.jsonl, summary.json and report.html; compare-report renders it again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpcopy-compare-'));
  try {
    const cmp = await filled(dir);
    const lines = readFileSync(join(dir, 'diffs.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, 15);
    assert.ok(lines.every((l) => l.bodies && typeof l.bodies.online === 'string'));
    const s = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
    assert.equal(s.totals.different, 15);
    assert.equal(s.totals.exchanges, 50);
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    assert.ok(html.includes('<code>GET /users/:id</code>'));
    assert.ok(!/https?:\/\/(?!www\.w3\.org)/.test(html), 'no network references');
    rmSync(join(dir, 'report.html'));
    rerender(dir);
    assert.equal(readFileSync(join(dir, 'report.html'), 'utf8'), html);
    const text = compareReportText(cmp.summary());
    assert.match(text, /exchanges 50 = compared 50 \+ skipped 0/);
    assert.match(text, /differs body:\$\.items\[\*\]\.price in 10 {2}e\.g\. \$\.items\[1\]\.price: 12\.5 -> 13/);
    assert.match(text, /404 -> 410: 5/);
    assert.equal(compareStatus(cmp.counts()), 'cmp 50 =35 ≠15');
    assert.match(compareMetrics(cmp.counts()), /tcpcopy_compare_result_total\{result="different"\} 15\n/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const CHROMIUM = '/usr/bin/chromium';

test(
  'report.html in headless Chromium: no console errors, tables and charts render, screenshot saved',
  { skip: existsSync(CHROMIUM) ? false : 'no /usr/bin/chromium (scripts/ensure-system.sh installs it)' },
  async () => {
    const { chromium } = await import('playwright-core');
    const dir = join(__dirname, 'report-html-out');
    rmSync(dir, { recursive: true, force: true });
    await filled(dir);
    const profile = mkdtempSync(join(tmpdir(), 'tcpcopy-chromium-'));
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
    try {
      const page = browser.pages()[0] ?? (await browser.newPage());
      const errors: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('request', (r) => {
        if (!r.url().startsWith('file:')) requests.push(r.url());
      });
      await page.goto(`file://${join(dir, 'report.html')}`);
      assert.deepEqual(errors, []);
      assert.deepEqual(requests, []);
      assert.equal(await page.locator('#endpoints tr').count(), 1 + 7);
      assert.ok((await page.locator('#fields tr').count()) >= 5);
      assert.equal((await page.locator('#status th').count()) > 0, true);
      const charts = page.locator('svg.chart');
      assert.equal(await charts.count(), 7);
      const box = await charts.first().boundingBox();
      assert.ok(box !== null && box.width > 100 && box.height > 50);
      assert.ok((await page.locator('svg.chart rect').count()) > 10);
      const shot = join(dir, 'report.png');
      await page.screenshot({ path: shot, fullPage: true });
      assert.ok(statSync(shot).size > 10000);
    } finally {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    }
  },
);
