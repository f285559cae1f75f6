import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { decodeFrame, encodeFrame } from '../../../shared/protocol/frameCodec.js';
import { MessageChannel, type FrameSocket } from '../../../shared/protocol/messageChannel.js';
import { parseMessage, type Message } from '../../../shared/protocol/messages.js';
import { CloseCode, ProtocolError } from '../../../shared/protocol/protocolError.js';

/** Two in-memory sockets wired back to back (the channel logic is what is tested here). */
function pair(): [FrameSocket & { closed?: [number, string] }, FrameSocket & { closed?: [number, string] }] {
  const a = new EventEmitter() as EventEmitter & FrameSocket & { closed?: [number, string] };
  const b = new EventEmitter() as EventEmitter & FrameSocket & { closed?: [number, string] };
  const wire = (from: typeof a, to: typeof b): void => {
    from.send = (data, cb) => {
      setImmediate(() => to.emit('message', Buffer.from(data), true));
      cb?.();
    };
    from.close = (code = 1000, reason = '') => {
      from.closed = [code, reason];
      setImmediate(() => {
        from.emit('close', code, Buffer.from(reason));
        to.emit('close', code, Buffer.from(reason));
      });
    };
  };
  wire(a, b);
  wire(b, a);
  return [a, b];
}

const limits = { maxHeaderBytes: 1024, maxPayloadBytes: 4096, chunkBytes: 1000, maxTransferBytes: 100_000 };
const fitRes: Message = { type: 'fit_res', experiment: 'exp-1', round: 3, numExamples: 10, metrics: { loss: 0.5, accuracy: 0.75 } };

describe('shared/protocol: frames and message channel', () => {
  it('frames round-trip; the payload is a view, not a copy', () => {
    const frame = encodeFrame({ type: 'heartbeat', t: 1 }, Uint8Array.from([1, 2, 3]));
    const { header, payload } = decodeFrame(frame);
    assert.deepEqual(header, { type: 'heartbeat', t: 1 });
    assert.deepEqual([...payload], [1, 2, 3]);
    assert.equal(payload.buffer, frame.buffer);
  });

  const badFrames: [string, Buffer, number, RegExp][] = [
    ['a truncated length prefix', Buffer.from([1, 2]), CloseCode.PROTOCOL_ERROR, /shorter than its 4-byte length prefix/],
    ['a header longer than the frame', Buffer.concat([Buffer.from([100, 0, 0, 0]), Buffer.from('{}')]), CloseCode.PROTOCOL_ERROR, /exceeds the frame/],
    ['a header above the limit', Buffer.concat([Buffer.from([0, 0, 1, 0]), Buffer.alloc(10)]), CloseCode.TOO_LARGE, /exceeds the limit/],
    ['a payload above the limit', encodeFrame({ type: 'heartbeat', t: 1 }, new Uint8Array(5000)), CloseCode.TOO_LARGE, /payload of 5000 bytes/],
    ['a header that is not JSON', Buffer.concat([Buffer.from([3, 0, 0, 0]), Buffer.from('{x}')]), CloseCode.PROTOCOL_ERROR, /not valid JSON/],
  ];
  for (const [what, frame, code, message] of badFrames) {
    it(`rejects ${what}`, () => {
      assert.throws(() => decodeFrame(frame, limits), (e: unknown) => e instanceof ProtocolError && e.closeCode === code && message.test(e.message));
    });
  }

  it('validates messages against their schemas', () => {
    assert.deepEqual(parseMessage(fitRes), fitRes);
    assert.throws(() => parseMessage({ type: 'launch_missiles' }), /unknown message type/);
    assert.throws(() => parseMessage({ ...fitRes, round: 0 }), /invalid fit_res message: \/round/);
    assert.throws(() => parseMessage({ ...fitRes, extra: 1 }), /additional properties/);
    assert.throws(() => parseMessage({ ...fitRes, metrics: { loss: 1, accuracy: 2 } }), /accuracy/);
    assert.throws(() => parseMessage([1, 2]), /must be a JSON object/);
  });

  it('sends small payloads whole and large ones in SHA-256-checked chunks', async () => {
    const [a, b] = pair();
    const tx = new MessageChannel(a, limits);
    const rx = new MessageChannel(b, limits);
    const got: [Message, number[]][] = [];
    rx.onMessage = (m, p) => got.push([m, [...p.subarray(0, 3), p.length]]);
    const big = Uint8Array.from({ length: 3500 }, (_, i) => i % 251);
    await tx.send(fitRes, Uint8Array.from([9, 8, 7]));
    await tx.send(fitRes, big);
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(got, [
      [fitRes, [9, 8, 7, 3]],
      [fitRes, [0, 1, 2, 3500]],
    ]);
    assert.ok(tx.bytesSent > 3500);
  });

  const violations: [string, Buffer[], number, RegExp][] = [
    ['an unknown message type', [encodeFrame({ type: 'nope' })], CloseCode.PROTOCOL_ERROR, /unknown message type/],
    ['a chunk without a transfer', [encodeFrame({ type: 'chunk', transfer: 1, index: 0 }, new Uint8Array(10))], CloseCode.PROTOCOL_ERROR, /chunk without a chunked transfer/],
    ['a transfer above the limit', [encodeFrame({ type: 'chunked', transfer: 1, totalBytes: 10_000_000, sha256: 'a'.repeat(64), chunks: 10000, message: fitRes })], CloseCode.TOO_LARGE, /exceeds the limit of 100000/],
    [
      'a corrupted chunk',
      [
        encodeFrame({ type: 'chunked', transfer: 1, totalBytes: 10, sha256: 'b'.repeat(64), chunks: 1, message: fitRes }),
        encodeFrame({ type: 'chunk', transfer: 1, index: 0 }, new Uint8Array(10)),
      ],
      CloseCode.PROTOCOL_ERROR,
      /SHA-256 mismatch/,
    ],
    [
      'chunks out of order',
      [
        encodeFrame({ type: 'chunked', transfer: 1, totalBytes: 10, sha256: 'b'.repeat(64), chunks: 2, message: fitRes }),
        encodeFrame({ type: 'chunk', transfer: 1, index: 1 }, new Uint8Array(5)),
      ],
      CloseCode.PROTOCOL_ERROR,
      /out of order/,
    ],
  ];
  for (const [what, frames, code, message] of violations) {
    it(`closes the connection with code ${code} for ${what}`, async () => {
      const [a, b] = pair();
      const rx = new MessageChannel(b, limits);
      const errors: ProtocolError[] = [];
      rx.onError = (e) => errors.push(e);
      rx.onMessage = () => assert.fail('no message may be delivered');
      for (const f of frames) a.send(f);
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(errors.length, 1);
      assert.match(errors[0].message, message);
      assert.equal(b.closed?.[0], code);
      assert.equal(rx.isClosed, true);
    });
  }

  it('refuses to send an invalid message', async () => {
    const [a] = pair();
    const tx = new MessageChannel(a, limits);
    await assert.rejects(tx.send({ ...fitRes, numExamples: -1 } as Message), /numExamples/);
  });
});
