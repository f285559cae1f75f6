/**
 * A small, strict parser for `multipart/related` bodies (RFC 2387 over RFC 2046), the shape of
 * DICOMweb WADO-RS answers: the boundary comes from the Content-Type, delimiters are
 * CRLF "--" boundary, each part has header lines, a blank line and its body. Parts are returned
 * as views into the given bytes (no copies). Limits bound the work a hostile or broken server can
 * cause; anything malformed is a DicomError naming what was wrong.
 */
import { DicomError } from '../../shared/errors.js';

export interface MultipartPart {
  /** Header names lower-cased; values trimmed. */
  headers: Record<string, string>;
  body: Uint8Array;
}

export interface MultipartLimits {
  /** At most this many parts (default 10,000). */
  maxParts?: number;
  /** The body may be at most this many bytes (default 2 GiB). */
  maxBytes?: number;
  /** At most this many header bytes per part (default 16 KiB). */
  maxHeaderBytes?: number;
}

const DEFAULTS = { maxParts: 10_000, maxBytes: 2 * 1024 ** 3, maxHeaderBytes: 16_384 };

/** The media type and parameters of a Content-Type header value. */
export function parseContentType(value: string): { type: string; params: Record<string, string> } {
  const params = Object.create(null) as Record<string, string>;
  const semi = value.indexOf(';');
  const type = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
  let rest = semi < 0 ? '' : value.slice(semi + 1);
  while (rest.length) {
    const m = /^\s*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^;]*)\s*(;|$)/.exec(rest);
    if (!m) {
      if (!rest.trim()) break;
      throw new DicomError(`malformed Content-Type parameters in "${value.slice(0, 200)}"`);
    }
    params[m[1].toLowerCase()] = m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : m[2].trim();
    rest = rest.slice(m[0].length);
  }
  return { type, params };
}

/** The boundary of a multipart/related Content-Type (DicomError when it is not one or has none). */
export function multipartBoundary(contentType: string): string {
  const { type, params } = parseContentType(contentType);
  if (type !== 'multipart/related') throw new DicomError(`expected a multipart/related answer, got Content-Type "${contentType.slice(0, 200)}"`);
  const b = params.boundary;
  if (!b) throw new DicomError('the multipart/related Content-Type has no boundary parameter');
  if (b.length > 70 || !/^[0-9A-Za-z'()+_,\-./:=? ]*[0-9A-Za-z'()+_,\-./:=?]$/.test(b)) throw new DicomError('the multipart boundary is invalid (1–70 characters of the RFC 2046 set, not ending in a space)');
  return b;
}

/** Splits a multipart/related body into its parts. */
export function parseMultipartRelated(body: Uint8Array, contentType: string, limits: MultipartLimits = {}): MultipartPart[] {
  const maxParts = limits.maxParts ?? DEFAULTS.maxParts;
  const maxBytes = limits.maxBytes ?? DEFAULTS.maxBytes;
  const maxHeaderBytes = limits.maxHeaderBytes ?? DEFAULTS.maxHeaderBytes;
  if (body.length > maxBytes) throw new DicomError(`the multipart body is ${body.length} bytes, more than the limit of ${maxBytes}`);
  const boundary = multipartBoundary(contentType);
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const dash = Buffer.from(`--${boundary}`, 'latin1');
  const delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');

  // The first delimiter: at the very start, or after a preamble (then preceded by CRLF).
  let pos: number;
  if (buf.subarray(0, dash.length).equals(dash)) pos = dash.length;
  else {
    const at = buf.indexOf(delimiter);
    if (at < 0) throw new DicomError('the multipart body has no boundary delimiter');
    pos = at + delimiter.length;
  }

  const parts: MultipartPart[] = [];
  for (;;) {
    // After a delimiter: "--" closes; else optional transport padding and CRLF open a part.
    if (buf[pos] === 0x2d && buf[pos + 1] === 0x2d) return parts;
    while (buf[pos] === 0x20 || buf[pos] === 0x09) pos++;
    if (buf[pos] !== 0x0d || buf[pos + 1] !== 0x0a) throw new DicomError(`malformed multipart delimiter line at byte ${pos}: expected CRLF or "--"`);
    pos += 2;
    if (parts.length >= maxParts) throw new DicomError(`the multipart body has more than ${maxParts} parts`);

    // Headers end at the first empty line (CRLF CRLF, or CRLF right away when there are none).
    let headerEnd: number;
    let bodyStart: number;
    if (buf[pos] === 0x0d && buf[pos + 1] === 0x0a) {
      headerEnd = pos;
      bodyStart = pos + 2;
    } else {
      const end = buf.indexOf('\r\n\r\n', pos, 'latin1');
      if (end < 0 || end - pos > maxHeaderBytes) {
        throw new DicomError(end < 0 ? `multipart part ${parts.length + 1} has no end of headers (blank line)` : `multipart part ${parts.length + 1} has more than ${maxHeaderBytes} header bytes`);
      }
      headerEnd = end;
      bodyStart = end + 4;
    }
    const headers = parseHeaders(buf.toString('latin1', pos, headerEnd), parts.length + 1);

    const next = buf.indexOf(delimiter, bodyStart);
    if (next < 0) throw new DicomError(`multipart part ${parts.length + 1} is not terminated by a boundary delimiter (truncated body?)`);
    parts.push({ headers, body: body.subarray(bodyStart, next) });
    pos = next + delimiter.length;
  }
}

function parseHeaders(text: string, part: number): Record<string, string> {
  const headers = Object.create(null) as Record<string, string>;
  if (!text) return headers;
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon).trim().toLowerCase() : '';
    if (!name || !/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(name)) throw new DicomError(`multipart part ${part} has a malformed header line`);
    headers[name] = line.slice(colon + 1).trim();
  }
  return headers;
}
