/**
 * The dashboard in a real browser (Debian's Chromium driven by puppeteer-core; no browser is
 * downloaded): a coordinator and two edges as processes, an admin signs in, starts a round by
 * clicking and watches each site's phases advance live to evaluation, then sees the new version
 * in the deployment view and the accuracy plot gain a point. Role gating: a researcher gets no
 * deployment buttons, a deployer cannot start rounds, a bad token is refused. Screenshots go to
 * the test's temporary folder (or FEDMED_DASHBOARD_SCREENSHOTS), never into the repository.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { call, createExperiment, enrol, freePort, onlineSites, spawnCli, startCoordinator, stopProc, waitFor, type CoordinatorProc, type Proc } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { runCli } from '../helpers/runCli.js';

// The page's globals, as the functions that run in the page use them (this program has no DOM lib).
interface PageElement {
  textContent: string | null;
  value: string;
  getAttribute(name: string): string | null;
}
type PageNode = { querySelectorAll?(s: string): { forEach(f: (e: PageElement) => void): void } };
declare const document: { querySelector(s: string): PageElement | null; querySelectorAll(s: string): { length: number; forEach(f: (e: PageElement) => void): void } };
declare const window: object;
declare const sessionStorage: { length: number };
declare class MutationObserver {
  constructor(f: (records: { addedNodes: unknown[] }[]) => void);
  observe(target: unknown, o: object): void;
}

const CHROMIUM = '/usr/bin/chromium';
const SITES = ['site-a', 'site-b'];

describe('dashboard in headless Chromium (coordinator + 2 edges as processes)', function () {
  this.timeout(120_000);
  const t = makeTempDir();
  let shots = '';
  let coord: CoordinatorProc;
  const edges: Proc[] = [];
  let browser: Browser | undefined;
  let experiment = '';
  const tokens: Record<'researcher' | 'deployer', string> = { researcher: '', deployer: '' };

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      if (process.env.CI) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
      console.log(`      (skipped: ${CHROMIUM} is missing; install Debian's chromium to run the dashboard's browser tests)`);
      return this.skip();
    }
    // Screenshots: in the test's temporary folder (removed after), or kept in FEDMED_DASHBOARD_SCREENSHOTS.
    shots = process.env.FEDMED_DASHBOARD_SCREENSHOTS ?? join(t.dir, 'screenshots');
    mkdirSync(shots, { recursive: true });
    coord = await startCoordinator(join(t.dir, 'coordinator'), await freePort());
    const launched = puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'], userDataDir: join(t.dir, 'chromium-profile') });
    await Promise.all(
      SITES.map(async (site, i) => {
        const r = await runCli(['make-synthetic', '--out', join(t.dir, `${site}.npz`), '--n', '120', '--seed', String(11 + i), '--shift', String(0.1 * i)]);
        assert.equal(r.code, 0, r.stderr);
      }),
    );
    for (const site of SITES) {
      await enrol(coord, site, join(t.dir, site));
      edges.push(spawnCli(['edge', 'start', '--state-dir', join(t.dir, site), '--data', join(t.dir, `${site}.npz`)]));
    }
    for (const role of ['researcher', 'deployer'] as const) {
      const r = await call<{ token: string }>(coord, 'POST', '/v1/tokens', { role, name: `dashboard ${role}` });
      assert.equal(r.status, 200);
      tokens[role] = r.body.token;
    }
    experiment = await createExperiment(coord, { name: 'dashboard-e2e', deploy: 'auto', fit: { epochs: 1, batchSize: 32, learningRate: 0.001, optimizer: 'adam' } });
    browser = await launched;
    await waitFor('2 edges online', async () => (await onlineSites(coord)).length === 2, 60_000, 200);
  });

  after(async () => {
    await browser?.close();
    for (const p of edges) await stopProc(p);
    if (coord) await stopProc(coord);
    t.cleanup();
    if (process.env.FEDMED_DASHBOARD_SCREENSHOTS) console.log(`      dashboard screenshots: ${shots}`);
  });

  let current: Page | undefined;
  // A failure leaves a screenshot and the page's text behind.
  afterEach(async function () {
    if (this.currentTest?.state !== 'failed') return;
    if (coord) console.log(`coordinator ${coord.child.exitCode === null ? 'running' : `exited ${coord.child.exitCode}`}; its output ends:\n${coord.output().slice(-3000)}`);
    if (!current || current.isClosed()) return;
    await current.screenshot({ path: join(shots, 'failure.png') }).catch(() => {});
    console.log(await current.evaluate(() => (document as unknown as { body: { innerText: string } }).body.innerText).catch((err: Error) => err.message));
  });

  const open = async (): Promise<{ page: Page; errors: string[] }> => {
    const page = await browser!.newPage();
    current = page;
    await page.setViewport({ width: 1280, height: 800 });
    const errors: string[] = [];
    // (a 404 of GET /v1/audit is expected: this coordinator has no audit log yet)
    page.on('console', (m) => void (m.type() === 'error' && !/\/v1\/audit$/.test(m.location().url ?? '') && errors.push(`${m.text()} ${m.location().url ?? ''}`)));
    page.on('pageerror', (e) => void errors.push(String(e)));
    await page.goto(coord.url, { waitUntil: 'load' });
    return { page, errors };
  };
  const signIn = async (page: Page, token: string, role: string): Promise<void> => {
    await page.waitForSelector('#token', { visible: true });
    await page.type('#token', token);
    await page.click('#signin-button');
    await page.waitForFunction((r) => document.querySelector('#who')?.textContent?.includes(`(${r})`), {}, role);
    await page.waitForSelector('#feed-state[data-state="live"]', { timeout: 10_000 });
  };
  const view = async (page: Page, name: string): Promise<void> => {
    await page.click(`#nav-${name}`);
    await page.waitForSelector(`#view-${name}:not([hidden])`);
  };

  it('serves the page and its files with a strict CSP, and nothing else', async () => {
    const res = await fetch(coord.url);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/html/);
    const csp = res.headers.get('content-security-policy')!;
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    const html = await res.text();
    assert.doesNotMatch(html, /<script>|<script(?![^>]*\ssrc=)[^>]*>|\son[a-z]+=|https?:\/\//, 'no inline script, no inline handler, no other origin');
    for (const [path, type] of [['/dashboard/main.js', /^text\/javascript/], ['/dashboard/style.css', /^text\/css/], ['/dashboard/vendor/uPlot.esm.js', /^text\/javascript/]] as const) {
      const r = await fetch(new URL(path, coord.url));
      assert.equal(r.status, 200, path);
      assert.match(r.headers.get('content-type')!, type, path);
    }
    for (const path of ['/dashboard/../package.json', '/dashboard/%2e%2e/package.json', '/dashboard/..%2fpackage.json', '/dashboard/index.html/..', '/index.html', '/dashboard/nope.js']) {
      assert.equal((await fetch(new URL(path, coord.url))).status, 404, path);
    }
  });

  it('an admin signs in, starts a round by clicking and watches every site reach evaluation live; the version and the metric point appear', async () => {
    const { page, errors } = await open();
    await signIn(page, coord.adminToken, 'admin');
    await page.waitForSelector('#sites-table tbody tr[data-site="site-b"]');
    await page.waitForFunction(() => document.querySelectorAll('#sites-table .badge.ok').length >= 4, { timeout: 10_000 }); // online + certified, both sites
    // Each site's readiness (data_status), as its policy releases it: ready, with its labelled counts (120 examples each).
    await page.waitForFunction(() => {
      let n = 0;
      document.querySelectorAll('#sites-table [data-ready="true"]').forEach((e) => void (/\d+ train · \d+ val · \d+ test/.test(e.textContent ?? '') && n++));
      return n === 2;
    }, { timeout: 20_000 });
    await page.screenshot({ path: join(shots, '1-federation.png') });

    await view(page, 'metrics');
    await page.waitForSelector('#chart-accuracy[data-points="0"]');
    await view(page, 'rounds');
    await page.waitForSelector('#start-rounds');
    // Every phase state the grid shows, as the page renders it (each render's table, even one replaced within the same task).
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as { seen?: string[] }).seen = seen;
      new MutationObserver((records) => {
        for (const r of records) for (const n of r.addedNodes as PageNode[]) n.querySelectorAll?.('td[data-status]').forEach((td) => seen.push(`${td.getAttribute('data-site')} ${td.getAttribute('data-phase')} ${td.getAttribute('data-status')}`));
      }).observe(document.querySelector('#round-grid'), { subtree: true, childList: true });
    });
    await page.click('#rounds-count', { count: 3 });
    await page.keyboard.type('1');
    await page.click('#start-rounds');
    await page.waitForFunction(() => /Started 1 round\(s\) from round 1\./.test(document.querySelector('#round-action-status')?.textContent ?? ''), { timeout: 10_000 });
    await page.screenshot({ path: join(shots, '2-round-running.png') });
    await page.waitForFunction(
      (sites: string[]) => sites.every((s) => document.querySelector(`#phase-grid[data-round="1"] td[data-site="${s}"][data-phase="evaluation"][data-status="done"]`)),
      { timeout: 60_000 },
      SITES,
    );
    await page.waitForFunction(() => /Round 1 completed/.test(document.querySelector('#round-progress')?.textContent ?? ''), { timeout: 10_000 });
    await page.screenshot({ path: join(shots, '3-round-done.png') });
    const seen = await page.evaluate(() => (window as { seen: string[] }).seen);
    for (const site of SITES) {
      for (const state of ['training started', 'training done', 'evaluation started', 'evaluation done']) assert.ok(seen.includes(`${site} ${state}`), `${site} ${state} was shown live (saw ${seen.join(', ')})`);
    }
    assert.equal(await page.$eval('#round-progress', (e) => e.getAttribute('aria-live')), 'polite');

    const rounds = (await call<{ status: string; versionId: string }[]>(coord, 'GET', `/v1/experiments/${experiment}/rounds`)).body;
    assert.equal(rounds[0].status, 'completed');
    const version = rounds[0].versionId;
    await view(page, 'deployment');
    await page.waitForSelector(`#deployment-current[data-version="${version}"]`, { timeout: 15_000 });
    assert.ok(await page.$('#publish-button'));
    await page.screenshot({ path: join(shots, '4-deployment.png') });

    await view(page, 'metrics');
    await page.waitForSelector('#chart-accuracy[data-points="1"]', { timeout: 15_000 });
    assert.ok(await page.$('#chart-accuracy canvas'), 'the accuracy plot is drawn by uPlot');
    await page.screenshot({ path: join(shots, '5-metrics.png') });

    await view(page, 'audit');
    await page.waitForSelector('#audit-unavailable, #audit-integrity');
    await view(page, 'privacy');
    await page.waitForSelector(`#privacy-table [data-experiment="${experiment}"]`);

    await page.click('#signout');
    await page.waitForSelector('#signin:not([hidden])');
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'the token is gone from session storage');
    assert.deepEqual(errors, [], 'no script error and no CSP violation');
    await page.close();
  });

  it('roles: a researcher has no deployment buttons, a deployer cannot start rounds, a bad token is refused', async () => {
    const { page } = await open();
    await page.type('#token', 'fma_not-a-real-token');
    await page.click('#signin-button');
    await page.waitForFunction(() => /not accepted/.test(document.querySelector('#signin-error')?.textContent ?? ''));
    await page.$eval('#token', (e) => void ((e as unknown as PageElement).value = ''));

    await signIn(page, tokens.researcher, 'researcher');
    await view(page, 'rounds');
    await page.waitForSelector('#start-rounds');
    assert.ok(await page.$('#stop-rounds'));
    await view(page, 'deployment');
    await page.waitForSelector('#deployment-sites');
    for (const id of ['#publish-button', '#promote-button', '#rollback-button']) assert.equal(await page.$(id), null, `a researcher sees no ${id}`);
    await page.screenshot({ path: join(shots, '6-researcher-deployment.png') });
    await page.click('#signout');

    await signIn(page, tokens.deployer, 'deployer');
    await view(page, 'deployment');
    await page.waitForSelector('#publish-button');
    // A canary of the initial version at site-a, by keyboard and clicks, then rolled back.
    const initial = (await call<{ id: string; round: number }[]>(coord, 'GET', `/v1/experiments/${experiment}/versions`)).body.find((v) => v.round === 0)!.id;
    await page.waitForSelector(`#publish-version option[value="${initial}"]`);
    await page.select('#publish-version', initial);
    await page.click('input[name="canary-site"][value="site-a"]');
    await page.click('#publish-button');
    await page.waitForSelector(`#deployment-canary[data-version="${initial}"]`, { timeout: 10_000 });
    await page.waitForSelector('#promote-button:not([disabled])');
    await page.screenshot({ path: join(shots, '7-deployer-canary.png') });
    await page.click('#rollback-button');
    await page.waitForSelector('#deployment-canary[data-version=""]', { timeout: 10_000 });
    assert.equal((await call<{ canary: unknown }>(coord, 'GET', '/v1/deployment')).body.canary, null);
    await view(page, 'rounds');
    await page.waitForSelector('#rounds-table');
    assert.equal(await page.$('#start-rounds'), null, 'a deployer cannot start rounds');
    assert.equal(await page.$('#stop-rounds'), null);
    await page.close();
  });

  it('the live feed reconnects after a coordinator restart (and refetches what it missed)', async () => {
    const { page } = await open();
    await signIn(page, coord.adminToken, 'admin');
    const port = Number(new URL(coord.url).port);
    await stopProc(coord);
    await page.waitForSelector('#feed-state[data-state="down"]', { timeout: 10_000 });
    assert.match(await page.$eval('#feed-state', (e) => e.textContent ?? ''), /retrying in \d+ s/);
    coord = await startCoordinator(join(t.dir, 'coordinator'), port);
    await page.waitForSelector('#feed-state[data-state="live"]', { timeout: 20_000 });
    // The new stream carries events: a round started through the API shows live.
    await waitFor('2 edges back online', async () => (await onlineSites(coord)).length === 2, 30_000, 200);
    await view(page, 'rounds');
    const r = await call(coord, 'POST', `/v1/experiments/${experiment}/rounds`, { rounds: 1 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await page.waitForFunction((sites: string[]) => sites.every((s) => document.querySelector(`#phase-grid[data-round="2"] td[data-site="${s}"][data-phase="evaluation"][data-status="done"]`)), { timeout: 30_000 }, SITES);
    await page.close();
  });
});
