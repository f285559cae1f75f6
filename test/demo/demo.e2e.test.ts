/**
 * `fedmed demo` end to end, as a user runs it: the real CLI in a child process, from a clean
 * state (its own HOME and TMPDIR). The default demo completes, every model gets better on every
 * site, ε is shown, each site's inference service answers with the version it serves (the deployed one, unless its own policy refused it), and no
 * process it started is left; SIGINT mid-run stops everything; an old Node gets one line.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, makeTempDir, PROJECT_ROOT } from '../helpers/paths.js';
import { waitFor } from '../helpers/federation.js';
import type { DemoSummary } from '../../demo/demoRunner.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Pids of the processes whose parent is `pid` (from /proc; Linux). */
function childrenOf(pid: number): number[] {
  if (!existsSync('/proc')) return [];
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function startDemo(args: string[], dir: string) {
  const child = spawn(process.execPath, [CLI, 'demo', ...args], { env: { ...process.env, HOME: dir, TMPDIR: dir, CI: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const seen = new Set<number>();
  // The demo's children, sampled while it runs (short-lived CLI steps included).
  const sampler = setInterval(() => childrenOf(child.pid!).forEach((p) => seen.add(p)), 100);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => {
      clearInterval(sampler);
      resolve({ code, signal });
    }),
  );
  return { child, exited, seen, stdout: () => stdout, stderr: () => stderr };
}

describe('fedmed demo (coordinator + 3 edges as real processes)', function () {
  this.timeout(180_000);

  it('the default demo completes: every site improves, ε shown, inference by the version each site serves, no process left', async () => {
    const t = makeTempDir();
    try {
      const json = join(t.dir, 'summary.json');
      const demo = startDemo(['--exit', '--json', json], t.dir);
      const { code } = await demo.exited;
      assert.equal(code, 0, `${demo.stdout()}\n${demo.stderr()}`);
      const s = JSON.parse(readFileSync(json, 'utf8')) as DemoSummary;
      assert.equal(s.ok, true);
      assert.equal(s.security, 'secagg');
      assert.deepEqual(s.rounds.map((r) => [r.round, r.status]), [1, 2, 3, 4, 5, 6].map((r) => [r, 'completed']));
      assert.equal(s.sites.length, 3);
      for (const site of s.sites) assert.ok(site.finalAccuracy > site.initialAccuracy + 0.2, `${site.name}: ${site.initialAccuracy} -> ${site.finalAccuracy}`);
      assert.ok(s.privacy && s.privacy.mode === 'distributed' && s.privacy.epsilon !== null && s.privacy.epsilon > 0, JSON.stringify(s.privacy));
      assert.match(demo.stdout(), /Privacy: ε = \d+\.\d+ at δ = 0\.00001/);
      assert.ok(s.deployedVersion, 'a version was deployed');
      // Each site serves the deployed version, unless its own policy refused it (reported, with the
      // reason, and it keeps serving an earlier version of this experiment); at least one serves it.
      assert.ok(s.sites.some((site) => site.active === s.deployedVersion), 'some site runs the deployed version');
      for (const site of s.sites) {
        if (site.active !== s.deployedVersion) {
          assert.match(site.refusedByPolicy ?? '', /site policy/, `${site.name} runs ${site.active}, not the deployed version, without a policy refusal`);
          assert.match(demo.stdout(), new RegExp(`${site.name}: its own site policy refused version`));
        }
        assert.ok((site.active !== null && s.rounds.some((r) => r.versionId === site.active)) || site.active === s.initialVersion, `${site.name} serves a version of this experiment`);
        assert.equal(site.inference.length, 3);
        for (const a of site.inference) assert.equal(a.version, site.active, `${site.name} answered with ${a.version}`);
      }
      assert.match(demo.stdout(), new RegExp(`Dashboard: http://127\\.0\\.0\\.1:\\d+/\\n  sign in with this researcher token: fma_`));
      // Every process it started has exited: by the pids it reported and those seen under it.
      const pids = [...new Set([...s.processes.map((p) => p.pid), ...demo.seen])];
      assert.ok(s.processes.length >= 4 && pids.length >= 4, `pids ${pids.join(', ')}`);
      assert.deepEqual(pids.filter(alive), [], 'no process left running');
      assert.ok(!existsSync(s.root), 'the working folder is removed');
    } finally {
      t.cleanup();
    }
  });

  it('SIGINT mid-run stops the coordinator and every edge and exits cleanly (130)', async () => {
    const t = makeTempDir();
    try {
      const demo = startDemo(['--rounds', '4', '--no-dp', '--security', 'plain'], t.dir);
      await waitFor('round 1 to complete', () => /round 1\/4: completed/.test(demo.stdout()) || demo.child.exitCode !== null, 120_000);
      assert.equal(demo.child.exitCode, null, demo.stderr());
      const pids = [...new Set([...demo.seen, ...childrenOf(demo.child.pid!)])];
      const printed = [...demo.stdout().matchAll(/\(pid (\d+)\)/g)].map((m) => Number(m[1]));
      assert.equal(printed.length, 4, demo.stdout());
      for (const p of printed) assert.ok(pids.includes(p) && alive(p), `pid ${p} is a running child`);
      demo.child.kill('SIGINT');
      const { code } = await demo.exited;
      assert.equal(code, 130, demo.stderr());
      assert.match(demo.stdout(), /received SIGINT: stopping every process/);
      assert.doesNotMatch(demo.stderr(), /error/);
      assert.deepEqual([...new Set([...pids, ...demo.seen])].filter(alive), [], 'no orphans');
      assert.deepEqual(readdirSync(t.dir).filter((f) => f.startsWith('fedmed-demo-')), [], 'the working folder is removed');
    } finally {
      t.cleanup();
    }
  });

  it('on Node < 22 the CLI prints one line naming Node 22 and exits 1', function () {
    const node = '/usr/bin/node';
    if (!existsSync(node)) return this.skip();
    const version = spawnSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
    if (Number(version.split('.')[0]) >= 22) {
      console.log(`      skipped: ${node} is Node ${version} (this test needs an older one)`);
      return this.skip();
    }
    const r = spawnSync(node, [CLI, '--help'], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.split('\n').filter(Boolean).length, 1, r.stderr);
    assert.match(r.stderr, /^fedmed: error: fedmed needs Node\.js 22 or newer, this is Node 2?\d\./);
  });
  it('on Node < 22 the npm scripts\' launcher runs the command under Node 22 and says so in one line', function () {
    this.timeout(120_000);
    const node = '/usr/bin/node';
    if (!existsSync(node)) return this.skip();
    const version = spawnSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
    if (Number(version.split('.')[0]) >= 22) {
      console.log(`      skipped: ${node} is Node ${version} (this test needs an older one)`);
      return this.skip();
    }
    // (the same cache as .ci/use-node22.sh: already filled wherever the suite runs under Node 22 from there)
    const r = spawnSync(node, ['scripts/node22.mjs', 'node -p process.versions.node'], { encoding: 'utf8', cwd: PROJECT_ROOT });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout.trim(), /^22\./);
    assert.equal(r.stderr.split('\n').filter(Boolean).length, 1, r.stderr);
    assert.match(r.stderr, /Node 2?\d\.\S+ is too old \(fedmed needs 22\)/);
  });
});
