/**
 * The coordinator's REST API under 5,000 random and mutated requests (real coordinator process
 * on loopback, seeded): every route, every method, with and without a valid token, bodies that
 * are valid, mutated, truncated, wrongly typed or not JSON, odd content types. Then a normal
 * workflow. The bar (issue 17): 0 crashes, no 5xx, the process's RSS back within 1.5× of idle.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SeededRng } from '../../shared/random/seededRng.js';
import { call, createExperiment, freePort, startCoordinator, stopProc, type CoordinatorProc } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';

function rssKiB(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

describe('coordinator REST API under 5,000 random and mutated requests (real coordinator process)', function () {
  this.timeout(180_000);
  const t = makeTempDir();
  let coord: CoordinatorProc;
  before(async () => {
    coord = await startCoordinator(join(t.dir, 'coordinator'), await freePort());
  });
  after(async () => {
    await stopProc(coord);
    t.cleanup();
  });

  it('answers every one with a 2xx/4xx, stays up, and comes back to its idle memory', async () => {
    const rng = new SeededRng(7);
    const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)];
    const experiment = await createExperiment(coord, { name: 'fuzz' });
    const ids = ['site-a', experiment, 'exp-nope', 'a'.repeat(64), '../../etc/passwd', '%00', 'constructor', '__proto__', 'x'.repeat(300), '😀'];
    const paths = [
      '/healthz', '/v1/enroll', '/v1/sites', '/v1/sites/:id', '/v1/sites/:id/revoke', '/v1/sites/:id/certificate', '/v1/tokens', '/v1/tokens/:id',
      '/v1/experiments', '/v1/experiments/:id', '/v1/experiments/:id/rounds', '/v1/experiments/:id/stop', '/v1/experiments/:id/metrics', '/v1/experiments/:id/versions',
      '/v1/experiments/:id/privacy', '/v1/versions/:id/params', '/v1/versions/:id/manifest', '/v1/status', '/v1/deployment', '/v1/deployment/publish',
      '/v1/deployment/promote', '/v1/deployment/rollback', '/v1/federation', '/v1/federation/coordinator-certificate', '/v1/federation/coordinator-key/rotate',
      '/v1/federation/revocations', '/v1/ckks/keysets', '/docs/json', '/nope',
    ];
    const validBodies: unknown[] = [
      { token: 'fmj_abc.def', publicKey: 'x', encryptionKey: 'y' },
      { name: 'site-z' },
      { role: 'researcher' },
      { name: 'e', model: { zoo: 'cnn-28', numClasses: 2 } },
      { rounds: 1 },
      { version: 'a'.repeat(64), sites: ['site-a'] },
      { body: { serial: 'x' }, signature: 'y' },
    ];
    const mutateValue = (v: unknown, depth = 0): unknown => {
      const k = rng.int(10);
      if (k === 0) return null;
      if (k === 1) return rng.int(2) ? -1e308 : 2 ** 53 + 1;
      if (k === 2) return 'A'.repeat(rng.int(5000));
      if (k === 3) return [v, v];
      if (k === 4 && depth < 3) return { nested: mutateValue(v, depth + 1), __proto__: { admin: true } };
      if (typeof v === 'object' && v && depth < 3) return Object.fromEntries(Object.entries(v).map(([key, x]) => [rng.int(5) ? key : `${key}x`, mutateValue(x, depth + 1)]));
      return v;
    };
    const body = (): { text?: string; type?: string } => {
      const k = rng.int(7);
      if (k === 0) return {};
      if (k === 1) return { text: JSON.stringify(pick(validBodies)), type: 'application/json' };
      if (k === 2) return { text: JSON.stringify(mutateValue(pick(validBodies))), type: 'application/json' };
      if (k === 3) {
        const s = JSON.stringify(pick(validBodies));
        return { text: s.slice(0, rng.int(s.length)), type: 'application/json' };
      }
      if (k === 4) return { text: Buffer.from(Array.from({ length: rng.int(400) }, () => rng.int(256))).toString('latin1'), type: pick(['application/json', 'application/octet-stream', 'text/plain', 'multipart/form-data; boundary=x', 'application/json; charset=utf-7']) };
      if (k === 5) return { text: '{"a":'.repeat(200), type: 'application/json' };
      return { text: JSON.stringify(pick(validBodies)), type: pick(['text/html', 'application/xml', '']) };
    };
    const auth = (): Record<string, string> => {
      const k = rng.int(4);
      if (k === 0) return {};
      if (k === 1) return { authorization: `Bearer ${coord.adminToken}` };
      if (k === 2) return { authorization: `Bearer fma_${'x'.repeat(rng.int(100))}` };
      return { authorization: pick(['Basic YTpi', 'Bearer', `Bearer ${coord.adminToken}x`, 'x'.repeat(2000)]) };
    };
    const one = async (): Promise<number> => {
      const path = pick(paths).replace(':id', encodeURIComponent(pick(ids)));
      const method = pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD']);
      const b = method === 'GET' || method === 'HEAD' ? {} : body();
      try {
        const res = await fetch(new URL(path + (rng.int(5) === 0 ? `?q=${'%'.repeat(rng.int(5))}` : ''), coord.url), { method, headers: { ...auth(), ...(b.type ? { 'content-type': b.type } : {}) }, body: b.text });
        await res.arrayBuffer();
        return res.status;
      } catch {
        return 0; // the server may close a connection on a malformed request: not a crash
      }
    };
    // Idle: after start-up and a few normal reads.
    for (let i = 0; i < 50; i++) await call(coord, 'GET', '/v1/status');
    const idle = rssKiB(coord.child.pid!);
    const statuses = new Map<number, number>();
    for (let batch = 0; batch < 100; batch++) {
      const got = await Promise.all(Array.from({ length: 50 }, one));
      for (const s of got) statuses.set(s, (statuses.get(s) ?? 0) + 1);
    }
    const total = [...statuses.values()].reduce((a, b) => a + b, 0);
    assert.equal(total, 5000);
    const fiveHundreds = [...statuses].filter(([s]) => s >= 500).reduce((n, [, c]) => n + c, 0);
    assert.equal(fiveHundreds, 0, `5xx answers: ${JSON.stringify([...statuses])}`);
    assert.equal(coord.child.exitCode, null, 'the coordinator is still running');
    // A normal workflow still works.
    assert.equal((await call(coord, 'GET', '/healthz')).status, 200);
    assert.ok(await createExperiment(coord, { name: 'after-fuzz' }));
    await new Promise((r) => setTimeout(r, 1000));
    const after = rssKiB(coord.child.pid!);
    assert.ok(after <= 1.5 * idle, `RSS ${after} KiB after the fuzzing, idle ${idle} KiB (statuses ${JSON.stringify([...statuses])})`);
  });
});
