/**
 * The multipart/related parser: well-formed bodies (preamble, epilogue, padding, empty parts,
 * quoted boundaries), each refusal, the limits, and a fuzz run of 2,000+ random mutations of a
 * valid body that must end in parts or a DicomError — never another error, never a hang.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { multipartBoundary, parseMultipartRelated } from '../../../edge-client/dicom/multipartRelated.js';
import { DicomError } from '../../../shared/errors.js';

const CT = 'multipart/related; type="application/dicom"; boundary=b0undary';

function body(parts: Uint8Array[], boundary = 'b0undary', opts: { preamble?: string; epilogue?: string } = {}): Buffer {
  const chunks: Buffer[] = [];
  if (opts.preamble) chunks.push(Buffer.from(`${opts.preamble}\r\n`));
  for (const p of parts) chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\nContent-Length: ${p.length}\r\n\r\n`), Buffer.from(p), Buffer.from('\r\n'));
  chunks.push(Buffer.from(`--${boundary}--${opts.epilogue ? `\r\n${opts.epilogue}` : '\r\n'}`));
  return Buffer.concat(chunks);
}

/** A deterministic PRNG, so a failing mutation can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('multipart/related parser', () => {
  const a = randomBytes(300);
  const b = Buffer.concat([Buffer.from('\r\n--b0undar'), randomBytes(50)]); // a near-delimiter inside a part

  it('splits parts, with headers, as views of the input', () => {
    const input = body([a, b]);
    const parts = parseMultipartRelated(input, CT);
    assert.equal(parts.length, 2);
    assert.deepEqual(Buffer.from(parts[0].body), a);
    assert.deepEqual(Buffer.from(parts[1].body), b);
    assert.equal(parts[0].headers['content-type'], 'application/dicom');
    assert.equal(parts[0].body.buffer, input.buffer);
  });

  it('accepts a preamble, an epilogue, transport padding, a quoted boundary and a part without headers', () => {
    const input = Buffer.concat([Buffer.from('preamble\r\n--x y:z  \r\n\r\nHELLO\r\n--x y:z\r\nA: 1\r\n\r\n\r\n--x y:z--\r\nepilogue')]);
    const parts = parseMultipartRelated(input, 'Multipart/Related; boundary="x y:z"; type="application/dicom"');
    assert.equal(parts.length, 2);
    assert.equal(Buffer.from(parts[0].body).toString(), 'HELLO');
    assert.deepEqual(parts[0].headers, Object.assign(Object.create(null), {}));
    assert.equal(parts[1].body.length, 0);
    assert.equal(parts[1].headers.a, '1');
    assert.equal(parseMultipartRelated(body([a], 'b0undary', { preamble: 'ignored' }), CT).length, 1);
  });

  it('refuses malformed bodies and content types with a DicomError', () => {
    const bad: [Uint8Array, string, RegExp][] = [
      [body([a]), 'application/dicom', /expected a multipart\/related/],
      [body([a]), 'multipart/related; type="application/dicom"', /no boundary/],
      [body([a]), `multipart/related; boundary=${'x'.repeat(71)}`, /boundary is invalid/],
      [Buffer.from('no delimiter at all'), CT, /no boundary delimiter/],
      [body([a]).subarray(0, 200), CT, /not terminated|truncated/],
      [Buffer.from('--b0undaryXX\r\n\r\nx\r\n--b0undary--'), CT, /malformed multipart delimiter/],
      [Buffer.from('--b0undary\r\nno colon here\r\n\r\nx\r\n--b0undary--'), CT, /malformed header/],
      [Buffer.from('--b0undary\r\nA: 1\r\nx'), CT, /no end of headers/],
      [body([a]), 'multipart/related; boundary=b0undary; broken', /malformed Content-Type/],
    ];
    for (const [input, type, re] of bad) assert.throws(() => parseMultipartRelated(input, type), (e: unknown) => e instanceof DicomError && re.test(e.message), `${type}: expected ${re}`);
  });

  it('enforces the part, byte and header limits', () => {
    assert.throws(() => parseMultipartRelated(body([a, a, a]), CT, { maxParts: 2 }), /more than 2 parts/);
    assert.throws(() => parseMultipartRelated(body([a]), CT, { maxBytes: 100 }), /more than the limit of 100/);
    const longHeader = Buffer.from(`--b0undary\r\nX: ${'y'.repeat(200)}\r\n\r\nz\r\n--b0undary--`);
    assert.throws(() => parseMultipartRelated(longHeader, CT, { maxHeaderBytes: 100 }), /header bytes/);
    assert.equal(multipartBoundary(CT), 'b0undary');
  });

  it('fuzz: 2,500 random mutations of a valid body end in parts or a DicomError, quickly', () => {
    const valid = body([randomBytes(64), Buffer.from('abc'), randomBytes(10)]);
    const rand = rng(20);
    const int = (n: number): number => Math.floor(rand() * n);
    const started = Date.now();
    let refused = 0;
    for (let i = 0; i < 2500; i++) {
      const m = Buffer.from(valid);
      let bytes: Buffer = m;
      const kind = int(6);
      const times = 1 + int(4);
      for (let k = 0; k < times; k++) {
        if (kind === 0) bytes[int(bytes.length)] = int(256);
        else if (kind === 1) bytes = bytes.subarray(0, int(bytes.length + 1));
        else if (kind === 2) {
          const at = int(bytes.length);
          bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1 + int(8))]);
        } else if (kind === 3) {
          const at = int(bytes.length);
          bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(['\r\n', '--b0undary', '\r\n\r\n', '--', ':', '\n'][int(6)]), bytes.subarray(at)]);
        } else if (kind === 4) bytes[int(bytes.length)] = [0x0d, 0x0a, 0x2d, 0x3a, 0x20][int(5)];
        else {
          const at = int(bytes.length);
          const len = int(40);
          bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at, at + len), bytes.subarray(at)]);
        }
      }
      const type = int(10) === 0 ? CT.slice(0, int(CT.length)) : CT;
      try {
        const parts = parseMultipartRelated(bytes, type);
        for (const p of parts) assert.ok(p.body.byteOffset + p.body.length <= bytes.byteOffset + bytes.length);
      } catch (err) {
        assert.ok(err instanceof DicomError, `mutation ${i} (kind ${kind}) threw ${String(err)}`);
        refused++;
      }
    }
    assert.ok(refused > 100, `only ${refused} mutations were refused: the fuzzer is not mutating`);
    assert.ok(Date.now() - started < 10_000, 'the fuzz run took more than 10 s');
  });
});
