import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { MessageChannel, type FrameSocket } from '../../../shared/protocol/messageChannel.js';
import type { Message } from '../../../shared/protocol/messages.js';
import { markReleasable, releaseBuffer, RELEASABLE_MIN_BYTES } from '../../../shared/protocol/releasableBuffers.js';

const fitRes: Message = { type: 'fit_res', experiment: 'exp-1', round: 1, numExamples: 10, metrics: { loss: 0.5, accuracy: 0.75 } };

/** A socket that delivers every frame sent to `to` as a buffer of its own (as ws does for big frames). */
function loopback(): { a: FrameSocket; b: FrameSocket } {
  const a = new EventEmitter() as EventEmitter & FrameSocket;
  const b = new EventEmitter() as EventEmitter & FrameSocket;
  a.send = (data, cb) => {
    const own = new Uint8Array(new ArrayBuffer(data.length));
    own.set(data);
    setImmediate(() => b.emit('message', Buffer.from(own.buffer), true));
    cb?.();
  };
  a.close = b.close = () => {};
  b.send = () => {};
  return { a, b };
}

describe('shared/protocol: releasable buffers', () => {
  it('frees a marked buffer at once, for every view of it', () => {
    const bytes = 8 * 1024 * 1024;
    const before = process.memoryUsage().arrayBuffers;
    const owned = Buffer.alloc(bytes, 7);
    const view = new Float32Array(owned.buffer, 4, 16);
    assert.ok(process.memoryUsage().arrayBuffers - before >= bytes);
    markReleasable(owned);
    assert.equal(releaseBuffer(view), true);
    assert.equal(owned.byteLength, 0);
    assert.equal(view.length, 0);
    assert.ok(process.memoryUsage().arrayBuffers - before < bytes / 2, 'memory returned without a garbage collection');
    assert.equal(releaseBuffer(owned), false, 'a second release does nothing');
  });

  it('never marks a view of a buffer it does not span, a small buffer, or a pooled one', () => {
    const big = Buffer.alloc(4 * RELEASABLE_MIN_BYTES, 1);
    const slice = big.subarray(1024);
    markReleasable(slice);
    assert.equal(releaseBuffer(slice), false);
    const small = new Uint8Array(new ArrayBuffer(RELEASABLE_MIN_BYTES - 1));
    markReleasable(small);
    assert.equal(releaseBuffer(small), false);
    const pooled = Buffer.from('pooled');
    markReleasable(pooled);
    assert.equal(releaseBuffer(pooled), false);
    assert.equal(big[2000] + small.length + pooled.length, 1 + RELEASABLE_MIN_BYTES - 1 + 6);
    assert.equal(releaseBuffer(Buffer.alloc(RELEASABLE_MIN_BYTES)), false, 'unmarked buffers are left alone');
  });

  it('a message channel lets the last user free a payload that came in its own frame, never its reused reassembly buffer', async () => {
    const limits = { maxHeaderBytes: 4096, maxPayloadBytes: 1024 * 1024, chunkBytes: 256 * 1024, maxTransferBytes: 4 * 1024 * 1024 };
    const { a, b } = loopback();
    const sender = new MessageChannel(a, limits);
    const receiver = new MessageChannel(b, limits);
    const got: Buffer[] = [];
    receiver.onMessage = (_m, payload) => got.push(payload);
    const single = new Uint8Array(200 * 1024).fill(3);
    const chunked = new Uint8Array(600 * 1024).fill(5);
    await sender.send(fitRes, single);
    await sender.send(fitRes, chunked);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(got.length, 2);
    const [one, whole] = got;
    assert.equal(one.length, single.length);
    assert.equal(releaseBuffer(one), true, 'a payload in its own frame is releasable');
    assert.equal(one.length, 0);
    assert.equal(whole.length, chunked.length);
    assert.equal(releaseBuffer(whole), false, 'the reassembly buffer is reused, never released');
    assert.ok(whole.every((v) => v === 5));
    // The channel goes on reassembling into the same buffer.
    await sender.send(fitRes, chunked.fill(9));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(got.length, 3);
    assert.equal(got[2].buffer, whole.buffer);
    assert.ok(got[2].every((v) => v === 9));
  });

  it('sendEncoded settles only after every frame\'s write finished, even when one fails early (frames may be freed then)', async () => {
    const pending: ((err?: Error) => void)[] = [];
    const socket = new EventEmitter() as EventEmitter & FrameSocket;
    let calls = 0;
    socket.send = (_data, cb) => {
      if (calls++ === 1) return cb?.(new Error('socket closed')); // the second frame fails at once
      pending.push(cb!); // the others are still being written
    };
    socket.close = () => {};
    const channel = new MessageChannel(socket, { maxHeaderBytes: 4096, maxPayloadBytes: 1024, chunkBytes: 1024, maxTransferBytes: 1 << 20 });
    let settled: string | null = null;
    const sent = channel.sendEncoded([Buffer.alloc(8), Buffer.alloc(8), Buffer.alloc(8)]).then(
      () => (settled = 'resolved'),
      (err: Error) => (settled = `rejected: ${err.message}`),
    );
    await new Promise((r) => setImmediate(r));
    assert.equal(settled, null, 'must wait for the frames still being written');
    for (const cb of pending) cb();
    await sent;
    assert.equal(settled, 'rejected: socket closed');
  });
});
