/**
 * The edge's C-STORE SCP: modalities and the PACS push images to it over DICOM (DIMSE).
 *
 * dcmjs-dimse does the PDU and DIMSE work; this module owns everything around it:
 * - its own `net.Server`, bound to the configured host only (the library's Server.listen binds
 *   every interface), each accepted socket handed to one `Scp` instance;
 * - association policy: the called AE title must be ours and the calling one allowed, else an
 *   A-ASSOCIATE-RJ with the matching reason; storage (image + Secondary Capture) and Verification
 *   contexts in a fixed list of transfer syntaxes, every other context rejected and logged;
 * - C-STORE: the dataset bytes exactly as received (never re-encoded: dcmjs mangles encapsulated
 *   pixel fragments and deflate), with a Part 10 file meta group written in front, handed to
 *   `onInstance`; the status answers how that went (0000 / A700 busy / C000 cannot understand /
 *   0110 processing failure);
 * - robustness: a PDU-length guard (a peer announcing an oversized PDU is cut off before the
 *   library buffers it), a per-instance byte cap, timeouts, and every failure confined to its own
 *   socket — which is always destroyed by us (the library's abort path leaves it open).
 *
 * Logs never carry PHI: AE titles, SOP class, transfer syntax, sizes and status only — no patient
 * data, no instance/study/series UIDs.
 */
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import dimse from 'dcmjs-dimse';
import type { association as dimseAssociation, requests as dimseRequests, responses as dimseResponses } from 'dcmjs-dimse';
import { DicomError, errorMessage } from '../../shared/errors.js';

const { Scp, Dataset, constants, responses } = dimse;
// dcmjs-dimse logs every PDU (at trace level, with AE titles and dataset summaries) unless told not to.
dimse.log.setLevel('silent');

type Association = dimseAssociation.Association;
type PresentationContext = dimseAssociation.PresentationContext;
type CStoreRequest = dimseRequests.CStoreRequest;
type CEchoRequest = dimseRequests.CEchoRequest;
type CStoreResponse = dimseResponses.CStoreResponse;
type CEchoResponse = dimseResponses.CEchoResponse;

export interface StoreScpLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface StoreScpOptions {
  host: string;
  /** 0 = any free port (see the returned `port`). */
  port: number;
  /** Our AE title: the called AE title an association must name. */
  aet: string;
  /** Calling AE titles allowed to associate; null = any. */
  allowedAets: string[] | null;
  /** The largest P-DATA PDU we accept (announced in A-ASSOCIATE-AC); default 256 KiB. */
  maxPduLength?: number;
  onInstance: (p10: Uint8Array, source: { kind: 'scp'; callingAet: string }) => Promise<void>;
  log: StoreScpLog;
}

export interface StoreScpHandle {
  port: number;
  close(): Promise<void>;
}

export const VERIFICATION_SOP_CLASS = '1.2.840.10008.1.1';

/** Image storage SOP classes (PS3.4 B.5) and the Secondary Capture family. */
export const IMAGE_STORAGE_SOP_CLASSES: ReadonlySet<string> = new Set([
  '1.2.840.10008.5.1.4.1.1.1', // Computed Radiography
  '1.2.840.10008.5.1.4.1.1.1.1', // Digital X-Ray, for presentation
  '1.2.840.10008.5.1.4.1.1.1.1.1', // Digital X-Ray, for processing
  '1.2.840.10008.5.1.4.1.1.1.2', // Digital Mammography, for presentation
  '1.2.840.10008.5.1.4.1.1.1.2.1', // Digital Mammography, for processing
  '1.2.840.10008.5.1.4.1.1.1.3', // Digital Intra-Oral X-Ray, for presentation
  '1.2.840.10008.5.1.4.1.1.1.3.1', // Digital Intra-Oral X-Ray, for processing
  '1.2.840.10008.5.1.4.1.1.2', // CT
  '1.2.840.10008.5.1.4.1.1.2.1', // Enhanced CT
  '1.2.840.10008.5.1.4.1.1.2.2', // Legacy Converted Enhanced CT
  '1.2.840.10008.5.1.4.1.1.3.1', // Ultrasound Multi-frame
  '1.2.840.10008.5.1.4.1.1.4', // MR
  '1.2.840.10008.5.1.4.1.1.4.1', // Enhanced MR
  '1.2.840.10008.5.1.4.1.1.4.3', // Enhanced MR Color
  '1.2.840.10008.5.1.4.1.1.4.4', // Legacy Converted Enhanced MR
  '1.2.840.10008.5.1.4.1.1.6.1', // Ultrasound
  '1.2.840.10008.5.1.4.1.1.6.2', // Enhanced US Volume
  '1.2.840.10008.5.1.4.1.1.7', // Secondary Capture
  '1.2.840.10008.5.1.4.1.1.7.1', // Multi-frame Single Bit Secondary Capture
  '1.2.840.10008.5.1.4.1.1.7.2', // Multi-frame Grayscale Byte Secondary Capture
  '1.2.840.10008.5.1.4.1.1.7.3', // Multi-frame Grayscale Word Secondary Capture
  '1.2.840.10008.5.1.4.1.1.7.4', // Multi-frame True Color Secondary Capture
  '1.2.840.10008.5.1.4.1.1.12.1', // X-Ray Angiographic
  '1.2.840.10008.5.1.4.1.1.12.1.1', // Enhanced XA
  '1.2.840.10008.5.1.4.1.1.12.2', // X-Ray Radiofluoroscopic
  '1.2.840.10008.5.1.4.1.1.12.2.1', // Enhanced XRF
  '1.2.840.10008.5.1.4.1.1.13.1.1', // X-Ray 3D Angiographic
  '1.2.840.10008.5.1.4.1.1.13.1.2', // X-Ray 3D Craniofacial
  '1.2.840.10008.5.1.4.1.1.13.1.3', // Breast Tomosynthesis
  '1.2.840.10008.5.1.4.1.1.13.1.4', // Breast Projection X-Ray, for presentation
  '1.2.840.10008.5.1.4.1.1.13.1.5', // Breast Projection X-Ray, for processing
  '1.2.840.10008.5.1.4.1.1.14.1', // Intravascular OCT, for presentation
  '1.2.840.10008.5.1.4.1.1.14.2', // Intravascular OCT, for processing
  '1.2.840.10008.5.1.4.1.1.20', // Nuclear Medicine
  '1.2.840.10008.5.1.4.1.1.30', // Parametric Map
  '1.2.840.10008.5.1.4.1.1.77.1.1', // VL Endoscopic
  '1.2.840.10008.5.1.4.1.1.77.1.2', // VL Microscopic
  '1.2.840.10008.5.1.4.1.1.77.1.3', // VL Slide-Coordinates Microscopic
  '1.2.840.10008.5.1.4.1.1.77.1.4', // VL Photographic
  '1.2.840.10008.5.1.4.1.1.77.1.5.1', // Ophthalmic Photography 8 Bit
  '1.2.840.10008.5.1.4.1.1.77.1.5.2', // Ophthalmic Photography 16 Bit
  '1.2.840.10008.5.1.4.1.1.77.1.5.4', // Ophthalmic Tomography
  '1.2.840.10008.5.1.4.1.1.77.1.5.5', // Wide Field Ophthalmic Photography Stereographic Projection
  '1.2.840.10008.5.1.4.1.1.77.1.5.6', // Wide Field Ophthalmic Photography 3D Coordinates
  '1.2.840.10008.5.1.4.1.1.77.1.5.7', // Ophthalmic OCT En Face
  '1.2.840.10008.5.1.4.1.1.77.1.5.8', // Ophthalmic OCT B-scan Volume Analysis
  '1.2.840.10008.5.1.4.1.1.77.1.6', // VL Whole Slide Microscopy
  '1.2.840.10008.5.1.4.1.1.128', // PET
  '1.2.840.10008.5.1.4.1.1.128.1', // Legacy Converted Enhanced PET
  '1.2.840.10008.5.1.4.1.1.130', // Enhanced PET
  '1.2.840.10008.5.1.4.1.1.481.1', // RT Image
]);

/** The transfer syntaxes the SCP accepts (the proposer's order of preference decides among them). */
export const ACCEPTED_TRANSFER_SYNTAXES: readonly string[] = [
  '1.2.840.10008.1.2.1', // Explicit VR Little Endian
  '1.2.840.10008.1.2', // Implicit VR Little Endian
  '1.2.840.10008.1.2.2', // Explicit VR Big Endian (retired)
  '1.2.840.10008.1.2.1.99', // Deflated Explicit VR Little Endian
  '1.2.840.10008.1.2.5', // RLE Lossless
  '1.2.840.10008.1.2.4.50', // JPEG Baseline (Process 1)
  '1.2.840.10008.1.2.4.51', // JPEG Extended (Process 2 & 4)
  '1.2.840.10008.1.2.4.57', // JPEG Lossless (Process 14)
  '1.2.840.10008.1.2.4.70', // JPEG Lossless SV1
  '1.2.840.10008.1.2.4.80', // JPEG-LS Lossless
  '1.2.840.10008.1.2.4.81', // JPEG-LS Near-Lossless
  '1.2.840.10008.1.2.4.90', // JPEG 2000 Lossless Only
  '1.2.840.10008.1.2.4.91', // JPEG 2000
];
const ACCEPTED_TS = new Set(ACCEPTED_TRANSFER_SYNTAXES);

/** fedmed's implementation class UID (a UUID-derived 2.25 UID) and version name, in every file meta we write. */
const IMPLEMENTATION_CLASS_UID = '2.25.196905521937408183063357870425113735391';
const IMPLEMENTATION_VERSION = 'FEDMED_0_1';

const DEFAULT_MAX_PDU = 262_144;
/** No single instance may exceed this (the library accumulates a C-STORE in memory). */
const MAX_INSTANCE_BYTES = 1 << 30;
/** Non-data PDUs (association request, release, abort) are small; 64 KiB holds 128 rich contexts. */
const MAX_CONTROL_PDU = 65_536;
const TIMEOUTS = { connectTimeout: 120_000, associationTimeout: 30_000, pduTimeout: 60_000 };

const STATUS = {
  success: 0x0000,
  outOfResources: 0xa700,
  cannotUnderstand: 0xc000,
  processingFailure: 0x0110,
  sopClassNotSupported: 0x0122,
} as const;

/** Starts the SCP; resolves once it listens. */
export async function startStoreScp(options: StoreScpOptions): Promise<StoreScpHandle> {
  const maxPdu = options.maxPduLength ?? DEFAULT_MAX_PDU;
  if (!Number.isInteger(maxPdu) || maxPdu < 4096 || maxPdu > 16 * 1024 * 1024) {
    throw new DicomError(`maxPduLength ${maxPdu} is out of range: use 4096 .. 16777216 bytes (default ${DEFAULT_MAX_PDU})`);
  }
  if (!options.aet.trim() || options.aet.trim().length > 16) {
    throw new DicomError(`AE title "${options.aet}" is invalid: 1 to 16 characters`);
  }
  const ctx: ScpContext = { ...options, aet: options.aet.trim(), maxPdu, allowed: options.allowedAets ? new Set(options.allowedAets.map((a) => a.trim())) : null };
  const sockets = new Set<Socket>();
  const server: NetServer = createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy()); // (the Scp logs and reports it as networkError as well)
    try {
      guardPduLengths(socket, maxPdu, ctx.log);
      const scp = new StoreScpConnection(socket, ctx);
      scp.on('networkError', (err: unknown) => {
        ctx.log.warn({ remote: socket.remoteAddress, reason: errorMessage(err) }, 'DICOM connection failed: closed it');
        socket.destroy();
      });
    } catch (err) {
      ctx.log.warn({ remote: socket.remoteAddress, reason: errorMessage(err) }, 'DICOM connection could not be set up: closed it');
      socket.destroy();
    }
  });
  server.maxConnections = 256;
  await new Promise<void>((resolve, reject) => {
    const fail = (err: Error): void => reject(new DicomError(`the DICOM SCP cannot listen on ${options.host}:${options.port}: ${err.message} (is another process using the port?)`, { cause: err }));
    server.once('error', fail);
    server.listen(options.port, options.host, () => {
      server.off('error', fail);
      server.on('error', (err) => ctx.log.warn({ reason: err.message }, 'DICOM SCP server error'));
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  let closing: Promise<void> | null = null;
  return {
    port,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      })),
  };
}

interface ScpContext extends StoreScpOptions {
  maxPdu: number;
  allowed: Set<string> | null;
}

/**
 * Follows the PDU stream's 6-byte headers (type, reserved, 32-bit length) alongside the library
 * and cuts the connection when the first PDU is not an association request or a PDU announces a
 * length beyond what we accept — before the library would buffer it whole.
 */
function guardPduLengths(socket: Socket, maxPdu: number, log: StoreScpLog): void {
  let header = Buffer.alloc(0);
  let remaining = 0;
  let first = true;
  socket.prependListener('data', (chunk: Buffer) => {
    let off = 0;
    while (off < chunk.length && !socket.destroyed) {
      if (remaining > 0) {
        const n = Math.min(remaining, chunk.length - off);
        remaining -= n;
        off += n;
        continue;
      }
      const take = Math.min(6 - header.length, chunk.length - off);
      header = Buffer.concat([header, chunk.subarray(off, off + take)]);
      off += take;
      if (header.length < 6) break;
      const type = header[0];
      const length = header.readUInt32BE(2);
      header = Buffer.alloc(0);
      const limit = type === 0x04 ? maxPdu + 64 : MAX_CONTROL_PDU;
      if (first && type !== 0x01) {
        log.warn({ remote: socket.remoteAddress, pduType: type }, 'DICOM connection closed: it did not start with an A-ASSOCIATE-RQ (not a DICOM client?)');
        socket.destroy();
        return;
      }
      if (length > limit) {
        log.warn({ remote: socket.remoteAddress, pduType: type, length, limit }, 'DICOM connection closed: the peer sent a PDU longer than the maximum we accept');
        socket.destroy();
        return;
      }
      first = false;
      remaining = length;
    }
  });
}

/** Collects a C-STORE dataset's PDV fragments, verbatim; never signals backpressure or errors. */
class RawDatasetSink extends Writable {
  readonly chunks: Buffer[] = [];
  bytes = 0;
  overflow = false;
  constructor() {
    super({ highWaterMark: MAX_INSTANCE_BYTES, decodeStrings: true });
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    if (!this.overflow) {
      if (this.bytes + chunk.length > MAX_INSTANCE_BYTES) {
        this.overflow = true;
        this.chunks.length = 0;
      } else {
        this.chunks.push(chunk);
        this.bytes += chunk.length;
      }
    }
    done();
  }
}

/** The raw bytes of each received dataset, keyed by the (empty) Dataset handed to the library. */
const rawDatasets = new WeakMap<object, { bytes: Buffer; transferSyntax: string }>();

/** One association (one socket). */
class StoreScpConnection extends Scp {
  private callingAet = '';
  private associated = false;

  constructor(
    private readonly sock: Socket,
    private readonly ctx: ScpContext,
  ) {
    super(sock, { ...TIMEOUTS, logCommandDatasets: false, logDatasets: false });
    this.connected = true; // as the library's Server does: arms the association timeout
  }

  /** The library checks `connected` for its timeouts (not in its typings). */
  declare connected: boolean;

  override associationRequested(association: Association): void {
    const calling = association.getCallingAeTitle().trim();
    const called = association.getCalledAeTitle().trim();
    this.callingAet = calling;
    const { RejectResult, RejectSource, RejectReason, PresentationContextResult } = constants;
    if (called !== this.ctx.aet) {
      this.ctx.log.warn({ callingAet: calling, calledAet: called, expected: this.ctx.aet }, 'DICOM association rejected: called AE title is not ours');
      return this.reject(RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.CalledAeNotRecognized);
    }
    if (this.ctx.allowed && !this.ctx.allowed.has(calling)) {
      this.ctx.log.warn({ callingAet: calling }, 'DICOM association rejected: calling AE title is not in the allowed list (allowedAets)');
      return this.reject(RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.CallingAeNotRecognized);
    }
    let accepted = 0;
    const unsupportedClasses = new Set<string>();
    const refusedSyntaxes: { sopClass: string; transferSyntaxes: string[] }[] = [];
    for (const { context } of association.getPresentationContexts()) {
      const abstract = context.getAbstractSyntaxUid();
      const proposed = context.getTransferSyntaxUids();
      if (abstract !== VERIFICATION_SOP_CLASS && !IMAGE_STORAGE_SOP_CLASSES.has(abstract)) {
        context.setResult(PresentationContextResult.RejectAbstractSyntaxNotSupported);
        unsupportedClasses.add(abstract);
        continue;
      }
      // The proposer lists its syntaxes in its order of preference: take its first we accept
      // (a file proposed in its own syntax then arrives as stored, not converted by the sender).
      const ts = abstract === VERIFICATION_SOP_CLASS ? proposed.find((t) => t === '1.2.840.10008.1.2' || t === '1.2.840.10008.1.2.1') : proposed.find((t) => ACCEPTED_TS.has(t));
      if (!ts) {
        context.setResult(PresentationContextResult.RejectTransferSyntaxesNotSupported);
        refusedSyntaxes.push({ sopClass: abstract, transferSyntaxes: proposed });
        continue;
      }
      context.setResult(PresentationContextResult.Accept, ts);
      accepted++;
    }
    if (refusedSyntaxes.length) {
      this.ctx.log.warn({ callingAet: calling, contexts: refusedSyntaxes }, 'DICOM presentation contexts rejected: transfer syntax not supported');
    }
    if (unsupportedClasses.size) {
      this.ctx.log.info({ callingAet: calling, sopClasses: [...unsupportedClasses] }, 'DICOM presentation contexts rejected: SOP class not supported (only image storage, Secondary Capture and Verification)');
    }
    const theirs = association.getMaxPduLength();
    association.setMaxPduLength(theirs > 0 ? Math.min(theirs, this.ctx.maxPdu) : this.ctx.maxPdu);
    this.associated = true;
    this.ctx.log.info({ callingAet: calling, contexts: association.getPresentationContexts().length, accepted }, 'DICOM association accepted');
    this.sendAssociationAccept();
  }

  override associationReleaseRequested(): void {
    this.sendAssociationReleaseResponse();
    this.sock.end(); // the requester closes after A-RELEASE-RP; make sure we do too
    this.sock.setTimeout(5_000, () => this.sock.destroy());
  }

  override abort(): void {
    this.sock.destroy(); // the library leaves the socket open after an A-ABORT
  }

  override cEchoRequest(request: CEchoRequest, callback: (response: CEchoResponse) => void): void {
    const response = responses.CEchoResponse.fromRequest(request);
    response.setStatus(STATUS.success);
    callback(response);
  }

  override createStoreWritableStream(): Writable {
    return new RawDatasetSink();
  }

  override createDatasetFromStoreWritableStream(writable: Writable, context: PresentationContext, callback: (dataset: InstanceType<typeof Dataset>) => void): void {
    const sink = writable as RawDatasetSink;
    const transferSyntax = context?.getAcceptedTransferSyntaxUid?.();
    if (!transferSyntax || context.getResult() !== constants.PresentationContextResult.Accept) {
      this.ctx.log.warn({ callingAet: this.callingAet }, 'DICOM connection closed: C-STORE data on a presentation context that was not accepted');
      this.sock.destroy();
      return;
    }
    if (sink.overflow) {
      this.ctx.log.warn({ callingAet: this.callingAet, limitBytes: MAX_INSTANCE_BYTES }, 'DICOM connection closed: instance larger than the limit');
      this.sock.destroy();
      return;
    }
    const dataset = new Dataset({}, transferSyntax);
    rawDatasets.set(dataset, { bytes: Buffer.concat(sink.chunks, sink.bytes), transferSyntax });
    callback(dataset);
  }

  override cStoreRequest(request: CStoreRequest, callback: (response: CStoreResponse) => void): void {
    const sopClass = request.getAffectedSopClassUid();
    const answer = (status: number, comment?: string): void => {
      if (this.sock.destroyed) return;
      const response = responses.CStoreResponse.fromRequest(request);
      response.setStatus(status);
      if (comment) response.setErrorComment(comment);
      callback(response);
    };
    const ds = request.getDataset();
    const raw = ds ? rawDatasets.get(ds) : undefined;
    if (!this.associated || !raw) {
      this.ctx.log.warn({ callingAet: this.callingAet, sopClass }, 'C-STORE refused: no dataset received');
      return answer(STATUS.cannotUnderstand, 'no dataset');
    }
    rawDatasets.delete(ds!);
    const transferSyntax = raw.transferSyntax;
    if (!IMAGE_STORAGE_SOP_CLASSES.has(sopClass) || !ACCEPTED_TS.has(transferSyntax)) {
      this.ctx.log.warn({ callingAet: this.callingAet, sopClass, transferSyntax }, 'C-STORE refused: SOP class not supported');
      return answer(STATUS.sopClassNotSupported, 'SOP class not supported');
    }
    let p10: Uint8Array;
    try {
      p10 = part10(raw.bytes, { sopClassUid: sopClass, sopInstanceUid: request.getAffectedSopInstanceUid(), transferSyntax, sourceAet: this.callingAet });
    } catch (err) {
      this.ctx.log.warn({ callingAet: this.callingAet, sopClass, transferSyntax, reason: errorMessage(err) }, 'C-STORE refused: cannot build the Part 10 object');
      return answer(STATUS.cannotUnderstand, 'cannot understand');
    }
    const started = Date.now();
    this.ctx.onInstance(p10, { kind: 'scp', callingAet: this.callingAet }).then(
      () => {
        this.ctx.log.info({ callingAet: this.callingAet, sopClass, transferSyntax, bytes: p10.length, ms: Date.now() - started }, 'C-STORE received');
        answer(STATUS.success);
      },
      (err: unknown) => {
        const code = (err as { code?: unknown } | null)?.code;
        const reason = errorMessage(err).slice(0, 300);
        if (code === 'DICOM_BUSY') {
          this.ctx.log.warn({ callingAet: this.callingAet, sopClass, transferSyntax, reason }, 'C-STORE refused: out of resources (busy), the sender may retry');
          answer(STATUS.outOfResources, 'out of resources: busy, retry later');
        } else if (err instanceof DicomError || code === 'DICOM_INVALID') {
          this.ctx.log.warn({ callingAet: this.callingAet, sopClass, transferSyntax, reason }, 'C-STORE refused: cannot understand the instance');
          answer(STATUS.cannotUnderstand, 'cannot understand the instance');
        } else {
          this.ctx.log.warn({ callingAet: this.callingAet, sopClass, transferSyntax, reason }, 'C-STORE failed: processing failure');
          answer(STATUS.processingFailure, 'processing failure');
        }
      },
    );
  }

  private reject(result: number, source: number, reason: number): void {
    this.sendAssociationReject(result, source, reason);
    this.sock.end(); // the requester should close; if it does not, we do
    this.sock.setTimeout(5_000, () => this.sock.destroy());
  }
}

/**
 * A Part 10 byte stream: 128-byte preamble, DICM, the file meta group (explicit VR little
 * endian, as PS3.10 requires) and the dataset bytes as received, in their transfer syntax.
 */
export function part10(dataset: Uint8Array, meta: { sopClassUid: string; sopInstanceUid: string; transferSyntax: string; sourceAet?: string }): Uint8Array {
  if (dataset.length === 0) throw new DicomError('the C-STORE dataset is empty');
  const uid = (name: string, v: string): string => {
    if (!/^[0-9.]{1,64}$/.test(v)) throw new DicomError(`the C-STORE command's ${name} is not a valid UID (digits and dots, at most 64)`);
    return v;
  };
  const elements: Buffer[] = [
    element(0x0001, 'OB', Buffer.from([0x00, 0x01])),
    element(0x0002, 'UI', padded(uid('affected SOP class', meta.sopClassUid), 0)),
    element(0x0003, 'UI', padded(uid('affected SOP instance', meta.sopInstanceUid), 0)),
    element(0x0010, 'UI', padded(uid('transfer syntax', meta.transferSyntax), 0)),
    element(0x0012, 'UI', padded(IMPLEMENTATION_CLASS_UID, 0)),
    element(0x0013, 'SH', padded(IMPLEMENTATION_VERSION, 0x20)),
  ];
  const aet = meta.sourceAet?.replace(/[^\x20-\x7e]/g, '').slice(0, 16);
  if (aet) elements.push(element(0x0016, 'AE', padded(aet, 0x20)));
  const body = Buffer.concat(elements);
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(body.length);
  const head = Buffer.alloc(132);
  head.write('DICM', 128, 'latin1');
  return Buffer.concat([head, element(0x0000, 'UL', groupLength), body, dataset]);
}

function padded(value: string, pad: number): Buffer {
  const b = Buffer.from(value, 'latin1');
  return b.length % 2 ? Buffer.concat([b, Buffer.from([pad])]) : b;
}

/** A group-0002 element, explicit VR little endian. */
function element(elementNo: number, vr: string, value: Buffer): Buffer {
  const long = vr === 'OB';
  const h = Buffer.alloc(long ? 12 : 8);
  h.writeUInt16LE(0x0002, 0);
  h.writeUInt16LE(elementNo, 2);
  h.write(vr, 4, 'latin1');
  if (long) h.writeUInt32LE(value.length, 8);
  else h.writeUInt16LE(value.length, 6);
  return Buffer.concat([h, value]);
}
