/** The small part of dcmjs (no types of its own) the test DICOM writer uses. */
declare module 'dcmjs' {
  interface DicomElement {
    vr: string;
    Value: unknown[];
  }
  // eslint-disable-next-line @typescript-eslint/no-unused-vars -- (its typeof is the export)
  class DicomDict {
    constructor(meta: Record<string, DicomElement>);
    dict: Record<string, DicomElement>;
    write(options?: Record<string, unknown>): ArrayBuffer;
  }
  const dcmjs: {
    data: {
      DicomDict: typeof DicomDict;
      DicomMetaDictionary: { denaturalizeDataset(dataset: Record<string, unknown>): Record<string, DicomElement>; uid(): string };
      DicomMessage: { readFile(buffer: ArrayBuffer): { meta: Record<string, DicomElement>; dict: Record<string, DicomElement> } };
    };
  };
  export default dcmjs;
}
