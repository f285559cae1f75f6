/**
 * Migration from the store of fedmed ≤ 0.x: one JSON document, DATA_DIR/fedmed.json
 * (`fedmed.coordinator-store/1`, written whole by lowdb on every change), which held history —
 * rounds, versions, the deployment log — beside everything else. On the first start with a
 * backend that has no document yet, its history becomes rows and the rest the document, in
 * one transaction; the file is then renamed fedmed.json.migrated (kept for the operator, never
 * read again). A crash before the rename repeats the migration (upserts: same rows, same result).
 */
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { StoreFormatError } from '../../shared/errors.js';
import type { StoreBackend } from './storeBackend.js';
import type { DeploymentAction, DeploymentRecord, RoundRecord, StoreDocument, VersionRecord } from './storeSchema.js';

export const LEGACY_FILE = 'fedmed.json';

type LegacyStore = Omit<StoreDocument, 'format' | 'deployment'> & {
  format: 'fedmed.coordinator-store/1';
  rounds: RoundRecord[];
  versions: VersionRecord[];
  deployment?: DeploymentRecord & { log?: DeploymentAction[] };
};

/** Migrates DATA_DIR/fedmed.json into `backend` and returns the document, or null without one. */
export async function migrateLegacyJson(dataDir: string, backend: StoreBackend): Promise<StoreDocument | null> {
  const file = join(dataDir, LEGACY_FILE);
  if (!existsSync(file)) return null;
  let legacy: LegacyStore;
  try {
    legacy = JSON.parse(readFileSync(file, 'utf8')) as LegacyStore;
  } catch (err) {
    throw new StoreFormatError(`${file} is not valid JSON (${(err as Error).message}); it was left as it is`);
  }
  if (legacy?.format !== 'fedmed.coordinator-store/1' || !Array.isArray(legacy.rounds) || !Array.isArray(legacy.versions)) {
    throw new StoreFormatError(`${file} is not a fedmed coordinator store (format ${JSON.stringify(legacy?.format)}); it was left as it is`);
  }
  const { rounds, versions, deployment, ...rest } = legacy;
  const { log = [], ...current } = deployment ?? { log: [] };
  const document: StoreDocument = { ...rest, format: 'fedmed.coordinator-store/2' as const, ...(deployment ? { deployment: current as DeploymentRecord } : {}) };
  await backend.commit(document, { rounds, versions, deploymentActions: log });
  renameSync(file, `${file}.migrated`);
  return document;
}
