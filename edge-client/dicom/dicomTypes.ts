/**
 * The shapes that move through the edge's DICOM path: a decoded instance (what the decoder
 * returns), the non-identifying metadata a case keeps, and the source an instance came from.
 *
 * PHI rule: `InstanceUids` only ever reach the pseudonymiser; nothing else in a DecodedInstance
 * identifies a patient (names, IDs, dates and private tags are never read out of the dataset).
 * The pixel digest travels with the UIDs under the same rule: a plain hash of the pixels would
 * link a case to the same image outside the hospital, so it is only ever used keyed.
 */

/** Non-identifying facts about an instance: safe to store, log, show and count. */
export interface InstanceMetadata {
  modality: string | null;
  bodyPart: string | null;
  manufacturer: string | null;
  manufacturerModel: string | null;
  /** The SOP class (a kind of object, e.g. CR Image Storage), not an instance. */
  sopClassUid: string | null;
  transferSyntax: string;
  rows: number;
  columns: number;
  bitsAllocated: number;
  bitsStored: number;
  /** 0 unsigned, 1 two's complement. */
  pixelRepresentation: 0 | 1;
  photometric: string;
  samplesPerPixel: number;
  frames: number;
}

/** The identifying UIDs: hashed into pseudonyms with the site's key, never stored or logged. */
export interface InstanceUids {
  sopInstanceUid: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  /**
   * SHA-256 (hex) of the first frame's pixel bytes as defined by `pixelBytes` (dicomDecoder.ts):
   * the stored values, little-endian. Set by decodeDicom; the pseudonymiser turns it into the
   * case's keyed `pixelHash`. Optional only for callers that build UIDs by hand.
   */
  pixelSha256?: string;
}

/** One decoded frame: stored pixel values (before rescale), row-major, samples interleaved. */
export interface DecodedInstance {
  uids: InstanceUids;
  metadata: InstanceMetadata;
  /** The first frame's stored values (multi-frame: frame 0 only, see README "DICOM at the edge"). */
  pixels: Int32Array;
  rescale: { slope: number; intercept: number };
  /** The header's first VOI window, when it has one. */
  window: { center: number; width: number } | null;
}

/** Where an instance came from (kept with the case; no PHI). */
export type InstanceSource =
  | { kind: 'scp'; callingAet: string }
  | { kind: 'pacs'; url: string }
  | { kind: 'import'; file: string }
  | { kind: 'api' };
