/** dcmtk command-line tools for tests: are they installed, and which storescu flag proposes a transfer syntax. */
import { spawnSync } from 'node:child_process';
import { inflateRawSync } from 'node:zlib';

/** storescu's flag that proposes each transfer syntax first (then the uncompressed fallbacks). */
export const PROPOSE: Record<string, string> = {
  '1.2.840.10008.1.2.1': '-xe',
  '1.2.840.10008.1.2': '-xi',
  '1.2.840.10008.1.2.2': '-xb',
  '1.2.840.10008.1.2.1.99': '-xd',
  '1.2.840.10008.1.2.5': '-xr',
  '1.2.840.10008.1.2.4.70': '-xs',
  '1.2.840.10008.1.2.4.57': '-xs',
  '1.2.840.10008.1.2.4.50': '-xy',
  '1.2.840.10008.1.2.4.51': '-xx',
  '1.2.840.10008.1.2.4.80': '-xt',
  '1.2.840.10008.1.2.4.81': '-xu',
  '1.2.840.10008.1.2.4.90': '-xv',
  '1.2.840.10008.1.2.4.91': '-xw',
};

/** True when `tool --version` runs. */
export function hasTool(tool: string): boolean {
  return spawnSync(tool, ['--version'], { encoding: 'utf8' }).status === 0;
}

/**
 * Checks that dcmtk's `tools` are installed: in CI (CI set) a missing one throws; elsewhere it
 * prints why and returns false (the caller skips).
 */
export function requireDcmtk(tools: string[]): boolean {
  const missing = tools.filter((t) => !hasTool(t));
  if (missing.length === 0) return true;
  if (process.env.CI) throw new Error(`dcmtk (${missing.join(', ')}) is required in CI: apt-get install dcmtk`);
  console.log(`      (skipped: dcmtk ${missing.join(', ')} not installed: apt-get install dcmtk)`);
  return false;
}

/** dicom-parser's `inflater` option: a deflated dataset (1.2.840.10008.1.2.1.99) inflated after its meta group. */
export function inflater(bytes: Uint8Array, position: number): Uint8Array {
  const inflated = inflateRawSync(bytes.subarray(position));
  const full = new Uint8Array(position + inflated.length);
  full.set(bytes.subarray(0, position), 0);
  full.set(inflated, position);
  return full;
}
