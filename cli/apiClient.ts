/**
 * A small client for the coordinator's REST API, used by the CLI. The coordinator URL and the
 * API token come from --coordinator/--token or FEDMED_COORDINATOR/FEDMED_TOKEN.
 */
import { FedmedError, UsageError } from '../shared/errors.js';

export class ApiError extends FedmedError {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super('API', message);
  }
}

export interface ApiTarget {
  coordinator?: string;
  token?: string;
}

export function resolveTarget(flags: ApiTarget): { url: string; token: string } {
  const url = flags.coordinator ?? process.env.FEDMED_COORDINATOR;
  const token = flags.token ?? process.env.FEDMED_TOKEN;
  if (!url) throw new UsageError('give --coordinator URL (or set FEDMED_COORDINATOR)');
  if (!token) throw new UsageError('give --token API_TOKEN (or set FEDMED_TOKEN); the admin token is in the coordinator\'s DATA_DIR/admin.token');
  return { url, token };
}

export async function api<T>(target: { url: string; token: string }, method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T> {
  const res = await request(target, method, path, body);
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = { message: text };
  }
  if (!res.ok) throw new ApiError(`${method} ${path} failed (${res.status}): ${(json as { message?: string })?.message ?? text}`, res.status);
  return json as T;
}

/** A binary GET (model files, ciphertexts). */
export async function apiBytes(target: { url: string; token: string }, path: string): Promise<Buffer> {
  const res = await request(target, 'GET', path);
  const bytes = Buffer.from(await res.arrayBuffer());
  if (!res.ok) {
    let message = bytes.toString('utf8');
    try {
      message = (JSON.parse(message) as { message?: string }).message ?? message;
    } catch {
      // not JSON: keep the text
    }
    throw new ApiError(`GET ${path} failed (${res.status}): ${message}`, res.status);
  }
  return bytes;
}

/** JSON bodies are serialised; a Uint8Array is sent as application/octet-stream. */
async function request(target: { url: string; token: string }, method: string, path: string, body?: unknown): Promise<Response> {
  const binary = body instanceof Uint8Array;
  try {
    return await fetch(new URL(path, target.url), {
      method,
      headers: { authorization: `Bearer ${target.token}`, ...(body === undefined ? {} : { 'content-type': binary ? 'application/octet-stream' : 'application/json' }) },
      body: body === undefined ? undefined : binary ? body : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(`cannot reach the coordinator at ${target.url}: ${(err as Error).message}`, 0);
  }
}
