/**
 * The edge inference service under 5,000 random and mutated requests (real edge process serving
 * a deployed model, seeded): JSON tensors valid, mutated, truncated, deeply nested or huge; PNGs
 * valid, with flipped bytes, truncated, interlaced, with lying headers; odd content types and
 * tokens. Then normal inference. The bar (issue 17): 0 crashes, no 5xx, the process's RSS back
 * within 1.5× of idle.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { initParams } from '../../shared/model/initParams.js';
import { SeededRng } from '../../shared/random/seededRng.js';
import { FakeCoordinator } from '../helpers/fakeCoordinator.js';
import { freePort, stopProc, waitFor } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { SPEC, startEdge, waitEvent, type EdgeUnderTest } from './harness.js';
import { ScriptedOta, servingVersion } from './scriptedOta.js';

function rssKiB(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

/** A PNG chunk with its CRC (zlib's crc32). */
function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

function crc32(b: Buffer): number {
  let c = ~0;
  for (const x of b) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

describe('adversary: the inference service under 5,000 random and mutated requests (real edge process)', function () {
  this.timeout(180_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  let edge: EdgeUnderTest;
  let port = 0;
  before(async () => {
    await fake.start();
    const ota = new ScriptedOta(fake);
    port = await freePort();
    edge = await startEdge(fake, t.dir, 'hosp', { args: ['--serve-port', String(port), '--serve-no-auth'] });
    await waitEvent(edge, 'connected');
    const v = ota.manifest(initParams(SPEC, 41));
    await ota.offer(v);
    await waitFor('the model to serve', async () => (await servingVersion(port)) === v.manifest.id, 30_000);
  });
  after(async () => {
    await stopProc(edge);
    await fake.close();
    t.cleanup();
  });

  it('answers every one with a 2xx/4xx, stays up, and comes back to its idle memory', async () => {
    const rng = new SeededRng(11);
    const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)];
    const png = new PNG({ width: 28, height: 28 });
    for (let i = 0; i < png.data.length; i++) png.data[i] = rng.int(256);
    const validPng = PNG.sync.write(png);
    const ihdr = (w: number, h: number, depth: number, colour: number, interlace: number) => {
      const d = Buffer.alloc(13);
      d.writeUInt32BE(w, 0);
      d.writeUInt32BE(h, 4);
      d[8] = depth;
      d[9] = colour;
      d[12] = interlace;
      return chunk('IHDR', d);
    };
    const craftedPng = () => {
      const w = pick([28, 0, 1, 2 ** 31 - 1, 28000]);
      const h = pick([28, 0, 3, 65535]);
      const raw = Buffer.alloc(rng.int(2) ? 28 * 29 : rng.int(200_000));
      return Buffer.concat([validPng.subarray(0, 8), ihdr(w, h, pick([1, 8, 16, 3]), pick([0, 2, 3, 4, 6, 7]), pick([0, 1, 2])), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
    };
    const validJson = () => JSON.stringify({ input: Array.from({ length: 784 }, () => rng.next()) });
    const body = (): { data: Buffer | string; type: string } => {
      const k = rng.int(10);
      if (k === 0) return { data: validJson(), type: 'application/json' };
      if (k === 1) return { data: validPng, type: 'image/png' };
      if (k === 2) {
        const b = Buffer.from(validPng);
        for (let i = 0; i < 1 + rng.int(10); i++) b[rng.int(b.length)] = rng.int(256);
        return { data: b, type: 'image/png' };
      }
      if (k === 3) return { data: validPng.subarray(0, rng.int(validPng.length)), type: 'image/png' };
      if (k === 4) return { data: craftedPng(), type: pick(['image/png', 'application/octet-stream']) };
      if (k === 5) {
        const j = validJson();
        return { data: j.slice(0, rng.int(j.length)), type: 'application/json' };
      }
      if (k === 6) return { data: `${'['.repeat(rng.int(20_000))}1${']'.repeat(rng.int(20_000))}`.replace(/^/, '{"input":').concat('}'), type: 'application/json' };
      if (k === 7) return { data: JSON.stringify({ input: pick([null, 'x', [NaN], Array(785).fill(1), [[1, [2, [3]]]], { length: 784 }, Array(784).fill('1')]) }), type: 'application/json' };
      if (k === 8) return { data: Buffer.from(Array.from({ length: rng.int(3000) }, () => rng.int(256))), type: pick(['application/json', 'image/png', 'text/plain', 'image/jpeg', '']) };
      return { data: JSON.stringify({ input: Array.from({ length: 784 }, () => pick([1e308, -1e308, 0, 1])) }), type: 'application/json' };
    };
    const one = async (): Promise<number> => {
      const b = body();
      const method = rng.int(20) === 0 ? pick(['GET', 'PUT', 'DELETE']) : 'POST';
      try {
        const res = await fetch(`http://127.0.0.1:${port}${rng.int(30) === 0 ? pick(['/healthz', '/metrics', '/v1/infer/x', '/']) : '/v1/infer'}`, {
          method,
          headers: { ...(b.type ? { 'content-type': b.type } : {}), ...(rng.int(10) === 0 ? { authorization: 'Bearer fmi_x.y' } : {}) },
          body: method === 'GET' ? undefined : b.data,
        });
        await res.arrayBuffer();
        return res.status;
      } catch {
        return 0; // a connection the server closed on a malformed request: not a crash
      }
    };
    for (let i = 0; i < 50; i++) await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.arrayBuffer());
    const idle = rssKiB(edge.child.pid!);
    const statuses = new Map<number, number>();
    for (let batch = 0; batch < 100; batch++) {
      const got = await Promise.all(Array.from({ length: 50 }, one));
      for (const s of got) statuses.set(s, (statuses.get(s) ?? 0) + 1);
    }
    const summary = JSON.stringify([...statuses].sort((a, b) => a[0] - b[0]));
    assert.equal([...statuses.values()].reduce((a, b) => a + b, 0), 5000);
    assert.equal([...statuses].filter(([s]) => s >= 500).length, 0, `5xx answers: ${summary}`);
    assert.ok((statuses.get(200) ?? 0) > 0, `some valid requests were answered: ${summary}`);
    assert.equal(edge.child.exitCode, null, 'the edge is still running');
    // Normal inference still works.
    const ok = await fetch(`http://127.0.0.1:${port}/v1/infer`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: validPng });
    assert.equal(ok.status, 200);
    await new Promise((r) => setTimeout(r, 1000));
    const after = rssKiB(edge.child.pid!);
    assert.ok(after <= 1.5 * idle, `RSS ${after} KiB after the fuzzing, idle ${idle} KiB (${summary})`);
  });
});
