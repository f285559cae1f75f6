/**
 * The federation admin's CKKS key management, run on the admin's machine (never on the
 * coordinator): make a key set and sign it with the admin key, wrap its secret key to each
 * site's encryption key as named in the site's admin-signed certificate (never a key the
 * coordinator merely reports), sign a grant of each wrapped copy, and upload them; decrypt an
 * encrypted model version with the secret key. The secret key file stays with the admin (0600).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { writeFileAtomic } from '../shared/atomicFile.js';
import { UsageError } from '../shared/errors.js';
import { decodeParamsFile, encodeParamsFile } from '../shared/model/paramsFile.js';
import { modelVersionId } from '../shared/model/modelHash.js';
import { checkCkksParameters, FEDMED_CKKS_PARAMETERS, type CkksParameters } from '../shared/secure/ckks/ckksParams.js';
import { CkksSecretKey } from '../shared/secure/ckks/ckksSecretKey.js';
import { applyEncryptedVersion } from '../shared/secure/ckks/ckksUpdate.js';
import { wrapSecretKey } from '../shared/secure/ckks/keyWrap.js';
import type { AdminKey } from '../shared/secure/trust/adminKey.js';
import { issueKeyGrant, issueKeySetCertificate } from '../shared/secure/trust/adminSigning.js';
import { ApiAdminTarget } from './admin/adminTarget.js';
import { adminTrust } from './admin/federationAdmin.js';
import { api, apiBytes } from './apiClient.js';

type Target = { url: string; token: string };

export interface SecretKeyFile {
  format: 'fedmed.ckks-secret-key/1';
  keySet: string;
  parameters: CkksParameters;
  /** SEAL-serialised secret key, base64. */
  secretKey: string;
}

export interface GrantResult {
  site: string;
  granted: boolean;
  reason?: string;
}

export function readSecretKeyFile(path: string): SecretKeyFile {
  let f: SecretKeyFile;
  try {
    f = JSON.parse(readFileSync(path, 'utf8')) as SecretKeyFile;
  } catch (err) {
    throw new UsageError(`${path}: cannot read the CKKS secret key file (${(err as Error).message})`);
  }
  if (f.format !== 'fedmed.ckks-secret-key/1' || !/^[0-9a-f]{32}$/.test(f.keySet) || typeof f.secretKey !== 'string') throw new UsageError(`${path} is not a fedmed CKKS secret key file`);
  checkCkksParameters(f.parameters, path);
  return f;
}

/** Creates a key set: the secret key goes to `secretKeyOut` (0600), then to every eligible site. */
export async function createKeySet(target: Target, admin: AdminKey, secretKeyOut: string): Promise<{ keySet: string; results: GrantResult[] }> {
  const keySet = randomBytes(16).toString('hex');
  const { key, bytes } = await CkksSecretKey.generate();
  key.dispose();
  const file: SecretKeyFile = { format: 'fedmed.ckks-secret-key/1', keySet, parameters: FEDMED_CKKS_PARAMETERS, secretKey: Buffer.from(bytes).toString('base64') };
  // The admin's copy first: without it, sites added later could never be granted.
  if (existsSync(secretKeyOut)) throw new UsageError(`${secretKeyOut} exists; choose another --secret-key-out (an existing key set's secret key is never overwritten)`);
  mkdirSync(dirname(resolve(secretKeyOut)), { recursive: true, mode: 0o700 });
  writeFileAtomic(secretKeyOut, Buffer.from(`${JSON.stringify(file)}\n`), 0o600);
  await api(target, 'POST', '/v1/ckks/keysets', { id: keySet, parameters: FEDMED_CKKS_PARAMETERS, certificate: issueKeySetCertificate(admin, keySet, FEDMED_CKKS_PARAMETERS) });
  return { keySet, results: await grantKeySet(target, admin, file) };
}

/**
 * Wraps the key for `only` (default: every certified, unrevoked site not granted yet), to the
 * encryption key of the site's certificate, checked here against the admin key.
 */
export async function grantKeySet(target: Target, admin: AdminKey, file: SecretKeyFile, only?: string[]): Promise<GrantResult[]> {
  // The admin's own newest revocation list, never an older one the coordinator might present.
  const adminApi = new ApiAdminTarget(target);
  const trust = await adminTrust(adminApi, admin);
  const sites = await adminApi.sites();
  const sets = await api<{ id: string; sites: { site: string; encryptionKey: string }[] }[]>(target, 'GET', '/v1/ckks/keysets');
  const set = sets.find((s) => s.id === file.keySet);
  if (!set) throw new UsageError(`the coordinator has no key set ${file.keySet}`);
  if (only) for (const name of only) if (!sites.some((s) => s.name === name)) throw new UsageError(`the coordinator has no site "${name}"`);
  const secretKey = Buffer.from(file.secretKey, 'base64');
  const results: GrantResult[] = [];
  for (const s of sites) {
    let encryptionKey: string | null = null;
    let refused: string | null = null;
    try {
      if (s.certificate) encryptionKey = trust.site(s.certificate, { site: s.name }).encryptionKey;
    } catch (err) {
      refused = (err as Error).message;
    }
    if (only ? !only.includes(s.name) : set.sites.some((g) => g.site === s.name && g.encryptionKey === encryptionKey)) continue;
    const skip = (reason: string) => results.push({ site: s.name, granted: false, reason });
    if (!s.enrolled || s.revoked) skip(s.revoked ? 'revoked' : 'not enrolled');
    else if (refused) skip(`its certificate is refused: ${refused}`);
    else if (!encryptionKey) skip('not certified yet ("fedmed site certify")');
    else {
      const wrapped = wrapSecretKey(secretKey, encryptionKey, file.keySet, s.name);
      const grant = issueKeyGrant(admin, { keySet: file.keySet, site: s.name, encryptionKey, wrapped });
      await api(target, 'PUT', `/v1/ckks/keysets/${file.keySet}/sites/${encodeURIComponent(s.name)}`, { encryptionKey, wrapped: Buffer.from(wrapped).toString('base64'), grant });
      results.push({ site: s.name, granted: true });
    }
  }
  secretKey.fill(0);
  return results;
}

/** Decrypts an encrypted version: the initial model plus every aggregate on its chain. */
export async function decryptVersion(target: Target, file: SecretKeyFile, experiment: string, version: string): Promise<Buffer> {
  const exp = await api<{ config: { security?: string; ckks?: { keySet?: string } } }>(target, 'GET', `/v1/experiments/${encodeURIComponent(experiment)}`);
  if (exp.config.security !== 'ckks') throw new UsageError(`experiment ${experiment} is not a CKKS experiment (download its versions with GET /v1/versions/ID/params)`);
  if (exp.config.ckks?.keySet !== file.keySet) throw new UsageError(`experiment ${experiment} uses key set ${exp.config.ckks?.keySet}; this secret key file is for ${file.keySet}`);
  const versions = await api<{ id: string; parent: string | null; encrypted?: { sha256: string } }[]>(target, 'GET', `/v1/experiments/${encodeURIComponent(experiment)}/versions`);
  const byId = new Map(versions.map((v) => [v.id, v]));
  const chain = [];
  let v = byId.get(version);
  if (!v) throw new UsageError(`experiment ${experiment} has no version ${version}`);
  while (v.encrypted) {
    chain.unshift(v);
    v = v.parent ? byId.get(v.parent) : undefined;
    if (!v) throw new UsageError(`the chain of ${version} is broken at ${chain[0].parent}`);
  }
  const initial = decodeParamsFile(await apiBytes(target, `/v1/versions/${v.id}/params`), `initial version ${v.id}`);
  const { spec } = initial;
  let params = initial.params;
  if (modelVersionId(spec, params) !== v.id) throw new UsageError(`initial version ${v.id} does not hash to its id`);
  const key = await CkksSecretKey.load(Buffer.from(file.secretKey, 'base64'));
  try {
    let have = v.id;
    for (const link of chain) {
      params = applyEncryptedVersion(key, spec, params, have, link.id, await apiBytes(target, `/v1/versions/${link.id}/ciphertext`));
      have = link.id;
    }
  } finally {
    key.dispose();
  }
  return encodeParamsFile(spec, params);
}
