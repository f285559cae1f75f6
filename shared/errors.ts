/**
 * Typed errors for expected failures (bad input, missing files, unavailable backends).
 * Each carries a stable `code` and a message a hospital IT person can act on; the CLI prints
 * these without a stack trace. Anything that is not a FedmedError is a bug.
 */
export class FedmedError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A ModelSpec that is malformed or whose layers do not fit together. */
export class ModelSpecError extends FedmedError {
  constructor(message: string) {
    super('MODEL_SPEC_INVALID', message);
  }
}

/** A parameter vector or parameters file that does not match its spec, header or hash. */
export class ParamsError extends FedmedError {
  constructor(message: string) {
    super('PARAMS_INVALID', message);
  }
}

/** A data file (npz, npy, csv, png folder) that cannot be read or has the wrong shape or type. */
export class DataFormatError extends FedmedError {
  constructor(message: string) {
    super('DATA_INVALID', message);
  }
}

/** An ONNX model that cannot be built, parsed or loaded. */
export class OnnxModelError extends FedmedError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ONNX_INVALID', message, options);
  }
}

/** A training or inference backend that cannot be initialised. */
export class BackendError extends FedmedError {
  constructor(message: string) {
    super('BACKEND_UNAVAILABLE', message);
  }
}

/** Invalid options given by a user (CLI flags, config fields). */
export class UsageError extends FedmedError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

/** A coordinator store that cannot be opened or migrated (wrong format, newer schema, unreachable database). */
export class StoreFormatError extends FedmedError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('STORE_INVALID', message, options);
  }
}

/** Render any thrown value as a one-line message. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A DICOM object that cannot be parsed, decoded or preprocessed (names the tag, syntax or field). */
export class DicomError extends FedmedError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DICOM_INVALID', message, options);
  }
}

/** The DICOM path is at capacity (decoder queue full, or closing): try again later (C-STORE answers "out of resources"). */
export class DicomBusyError extends FedmedError {
  constructor(message: string) {
    super('DICOM_BUSY', message);
  }
}
