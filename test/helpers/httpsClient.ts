/**
 * HTTPS requests to a test server with its own certificate (`ca`), optionally over one keep-alive
 * agent; answers the status and the body (parsed JSON, or `{ text }`).
 */
import { Agent, request as httpsRequest } from 'node:https';

export interface HttpsAnswer {
  status: number;
  body: Record<string, unknown>;
}

export interface HttpsTarget {
  port: number;
  ca: string;
  agent?: Agent;
}

export function httpsCall(to: HttpsTarget, path: string, o: { token?: string; method?: string; body?: Buffer | string; type?: string } = {}): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    if (o.type) headers['content-type'] = o.type;
    const req = httpsRequest({ host: '127.0.0.1', port: to.port, path, method: o.method ?? 'GET', headers, ca: to.ca, ...(to.agent ? { agent: to.agent } : {}) }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString();
        let body: Record<string, unknown>;
        try {
          body = JSON.parse(text) as Record<string, unknown>;
        } catch {
          body = { text };
        }
        resolve({ status: res.statusCode!, body });
      });
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

/** A keep-alive agent trusting `ca` (a load generator's connection pool). */
export function keepAliveAgent(ca: string): Agent {
  return new Agent({ keepAlive: true, ca });
}
