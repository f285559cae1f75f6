/**
 * The dashboard (dashboard/, built into dist/dashboard): GET / is its page, GET /dashboard/<file>
 * its scripts and styles. The files are read once at startup, and only those with a known type
 * become routes (one exact route each: no path is ever looked up on disk for a request, so no
 * traversal). They hold no data and need no token; the data comes from the API with the token
 * the user signs in with. Every answer carries a strict Content-Security-Policy (scripts and
 * styles from this origin only, no inline script, fetches to this origin only) and is never
 * framed.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** dist/coordinator/api → dist/dashboard. */
export const DASHBOARD_DIST_DIR = fileURLToPath(new URL('../../dashboard/', import.meta.url));

export const DASHBOARD_CSP = ["default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'", "font-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'"].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** The files the dashboard is made of: path under the dist dir → bytes and content type. */
export function dashboardAssets(distDir: string): Map<string, { body: Buffer; type: string }> {
  const assets = new Map<string, { body: Buffer; type: string }>();
  if (!existsSync(distDir)) return assets;
  const walk = (rel: string, depth: number): void => {
    for (const name of readdirSync(join(distDir, rel))) {
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) continue;
      const path = rel ? `${rel}/${name}` : name;
      const full = join(distDir, path);
      const st = statSync(full);
      if (st.isDirectory() && depth < 2) walk(path, depth + 1);
      else if (st.isFile() && TYPES[extname(name)] && !name.endsWith('.d.ts')) assets.set(path, { body: readFileSync(full), type: TYPES[extname(name)] });
    }
  };
  walk('', 0);
  return assets;
}

export function registerDashboardRoutes(app: FastifyInstance, distDir: string = DASHBOARD_DIST_DIR): void {
  const assets = dashboardAssets(distDir);
  const send = (reply: FastifyReply, a: { body: Buffer; type: string }) =>
    reply
      .header('content-security-policy', DASHBOARD_CSP)
      .header('x-frame-options', 'DENY')
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cross-origin-opener-policy', 'same-origin')
      .header('cache-control', 'no-cache')
      .type(a.type)
      .send(a.body);
  const index = assets.get('index.html');
  app.get('/', { schema: { hide: true } }, async (_req, reply) => {
    if (!index) return reply.code(503).header('x-frame-options', 'DENY').type('text/plain; charset=utf-8').send(`the dashboard is not built (no ${join(distDir, 'index.html')}): run "npm run build"\n`);
    return send(reply, index);
  });
  for (const [path, a] of assets) {
    if (path === 'index.html') continue;
    app.get(`/dashboard/${path}`, { schema: { hide: true } }, async (_req, reply) => send(reply, a));
  }
}
