/**
 * HTTP limits of the edge inference service (edge-client/inference/inferenceLimits.ts), over real
 * loopback sockets: a per-address rate limit on POST /v1/infer that answers 429 naming the limit
 * while another address is unaffected, a request timeout that closes trickling requests, and the
 * connection cap set on the server. (No model is loaded: the limits apply before the handler.)
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { HotSwapModel } from '../../edge-client/inference/hotSwapModel.js';
import { startInferenceService, type RunningInferenceService } from '../../edge-client/inference/inferenceService.js';

function post(url: string, localAddress: string): Promise<{ status: number; body: { error?: string; message?: string } }> {
  const u = new URL('/v1/infer', url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', localAddress, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as { error?: string; message?: string }) : {} }));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ input: [0] }));
  });
}

describe('edge inference service: HTTP limits (real sockets on loopback)', function () {
  this.timeout(30_000);
  let svc: RunningInferenceService;
  before(async () => {
    svc = await startInferenceService({ model: new HotSwapModel({ providers: ['cpu'] }), port: 0, auth: 'none', limits: { inferPerAddress: { max: 3, windowMs: 60_000 }, requestTimeoutMs: 1000, maxConnections: 500 } });
  });
  after(async () => svc?.close());

  it('rate-limits POST /v1/infer per address with a 429 naming the limit; another address is unaffected', async () => {
    for (let i = 0; i < 3; i++) assert.notEqual((await post(svc.url, '127.0.0.2')).status, 429);
    const limited = await post(svc.url, '127.0.0.2');
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error, 'RATE_LIMITED');
    assert.match(String(limited.body.message), /too many inference requests from 127\.0\.0\.2: limit 3 per 60 s per address/);
    assert.equal((await post(svc.url, '127.0.0.3')).status, 503); // (no model loaded: the handler answered)
  });

  it('closes requests whose body trickles in within the request timeout; the connection cap is set', async () => {
    const u = new URL(svc.url);
    const start = Date.now();
    const sockets = Array.from({ length: 50 }, () => {
      const s = connect({ host: u.hostname, port: Number(u.port), localAddress: '127.0.0.4' });
      s.on('error', () => {});
      s.on('connect', () => s.write('POST /v1/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{'));
      return s;
    });
    const trickle = setInterval(() => sockets.forEach((s) => !s.destroyed && s.write(' ')), 200);
    try {
      const times = await Promise.all(sockets.map((s) => new Promise<number>((r) => s.on('close', () => r(Date.now() - start)))));
      assert.ok(Math.max(...times) < 2500, `closed after ${Math.max(...times)} ms (timeout 1000 ms)`);
    } finally {
      clearInterval(trickle);
    }
    assert.equal(svc.app.server.maxConnections, 500);
  });
});
