/**
 * Binary frames: `u32 headerLength (LE) | header JSON (UTF-8) | payload bytes`.
 *
 * Every length is checked against the limits before anything is allocated or parsed; the
 * payload is returned as a view of the received buffer (no copy).
 */
import { CloseCode, ProtocolError } from './protocolError.js';

export interface FrameLimits {
  maxHeaderBytes: number;
  maxPayloadBytes: number;
}

export const DEFAULT_FRAME_LIMITS: FrameLimits = { maxHeaderBytes: 64 * 1024, maxPayloadBytes: 8 * 1024 * 1024 };

export interface DecodedFrame {
  header: unknown;
  payload: Buffer;
}

/**
 * One allocation: length prefix, header and payload copied into a single buffer. The header is
 * padded with spaces (valid JSON whitespace) so that the payload starts at a multiple of 4 bytes:
 * a receiver can then view float32 data in place instead of copying it.
 */
export function encodeFrame(header: object, payload?: Uint8Array): Buffer {
  let text = JSON.stringify(header);
  text += ' '.repeat((4 - ((4 + Buffer.byteLength(text)) % 4)) % 4);
  const json = Buffer.from(text, 'utf8');
  const payloadLength = payload?.byteLength ?? 0;
  const frame = Buffer.allocUnsafe(4 + json.length + payloadLength);
  frame.writeUInt32LE(json.length, 0);
  json.copy(frame, 4);
  if (payload && payloadLength) frame.set(payload, 4 + json.length);
  return frame;
}

export function decodeFrame(data: Buffer, limits: FrameLimits = DEFAULT_FRAME_LIMITS): DecodedFrame {
  if (data.length < 4) throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `frame of ${data.length} bytes is shorter than its 4-byte length prefix`);
  const headerLength = data.readUInt32LE(0);
  if (headerLength > limits.maxHeaderBytes) throw new ProtocolError(CloseCode.TOO_LARGE, `frame header of ${headerLength} bytes exceeds the limit of ${limits.maxHeaderBytes}`);
  if (4 + headerLength > data.length) throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `frame header length ${headerLength} exceeds the frame (${data.length} bytes)`);
  const payloadLength = data.length - 4 - headerLength;
  if (payloadLength > limits.maxPayloadBytes) throw new ProtocolError(CloseCode.TOO_LARGE, `frame payload of ${payloadLength} bytes exceeds the limit of ${limits.maxPayloadBytes}`);
  let header: unknown;
  try {
    header = JSON.parse(data.toString('utf8', 4, 4 + headerLength));
  } catch {
    throw new ProtocolError(CloseCode.PROTOCOL_ERROR, 'frame header is not valid JSON');
  }
  return { header, payload: data.subarray(4 + headerLength) };
}
