/**
 * Writes DICOM files for tests with a real DICOM writer (dcmjs): single-frame CR images in
 * explicit VR little endian, carrying a patient name, ID, birth date and accession number — the
 * PHI the edge must never let out — and a private tag.
 */
import { randomInt } from 'node:crypto';
import dcmjs from 'dcmjs';

const { DicomDict, DicomMetaDictionary } = dcmjs.data;

export interface TestImage {
  rows: number;
  columns: number;
  /** Stored values, row-major (8-bit images: 0..255; 16-bit: 0..65535). */
  pixels: Uint8Array | Uint16Array;
  patientName: string;
  patientId: string;
  photometric?: 'MONOCHROME1' | 'MONOCHROME2';
  sopInstanceUid?: string;
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
  window?: { center: number; width: number };
  manufacturer?: string;
}

/** A fresh UID under the 2.25 (UUID-derived) root. */
export function newUid(): string {
  return `2.25.${BigInt(`0x${Array.from({ length: 4 }, () => randomInt(2 ** 32).toString(16).padStart(8, '0')).join('')}`).toString()}`;
}

export function writeCrImage(img: TestImage): Buffer {
  const sop = img.sopInstanceUid ?? newUid();
  const bits = img.pixels instanceof Uint16Array ? 16 : 8;
  if (img.pixels.length !== img.rows * img.columns) throw new Error(`pixels: ${img.pixels.length} values for ${img.rows}x${img.columns}`);
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: '1.2.840.10008.5.1.4.1.1.1',
    MediaStorageSOPInstanceUID: sop,
    TransferSyntaxUID: '1.2.840.10008.1.2.1',
    ImplementationClassUID: '1.2.826.0.1.3680043.10.1234.1',
    ImplementationVersionName: 'FEDMED_TEST',
  };
  const pixelBytes = img.pixels.buffer.slice(img.pixels.byteOffset, img.pixels.byteOffset + img.pixels.byteLength + (img.pixels.byteLength % 2)); // even length
  const dataset: Record<string, unknown> = {
    SOPClassUID: '1.2.840.10008.5.1.4.1.1.1',
    SOPInstanceUID: sop,
    StudyInstanceUID: img.studyInstanceUid ?? newUid(),
    SeriesInstanceUID: img.seriesInstanceUid ?? newUid(),
    PatientName: img.patientName,
    PatientID: img.patientId,
    PatientBirthDate: '19610704',
    AccessionNumber: `ACC${img.patientId}`,
    StudyDate: '20261130',
    StudyTime: '101500',
    Modality: 'CR',
    BodyPartExamined: 'CHEST',
    Manufacturer: img.manufacturer ?? 'FEDMED TEST',
    ManufacturerModelName: 'SYNTH-1',
    SamplesPerPixel: 1,
    PhotometricInterpretation: img.photometric ?? 'MONOCHROME2',
    Rows: img.rows,
    Columns: img.columns,
    BitsAllocated: bits,
    BitsStored: bits,
    HighBit: bits - 1,
    PixelRepresentation: 0,
    ...(img.window ? { WindowCenter: img.window.center, WindowWidth: img.window.width } : {}),
    PixelData: [pixelBytes],
    _vrMap: { PixelData: bits === 8 ? 'OB' : 'OW' },
  };
  const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = DicomMetaDictionary.denaturalizeDataset(dataset);
  // A private tag (a vendor's block): the edge must never store or show it.
  dict.dict['00091010'] = { vr: 'LO', Value: [`PRIVATE ${img.patientId}`] };
  dict.dict['00090010'] = { vr: 'LO', Value: ['FEDMED TEST PRIVATE'] };
  return Buffer.from(dict.write());
}
