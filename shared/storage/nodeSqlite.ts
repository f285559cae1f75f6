/**
 * Loads node:sqlite without its one-time "SQLite is an experimental feature" warning on every
 * start (operators would read it as a problem with their installation). Only that
 * warning is dropped; the module's API has been stable across Node 22's releases we support.
 */
type NodeSqlite = typeof import('node:sqlite');

let loaded: Promise<NodeSqlite> | null = null;

export function loadNodeSqlite(): Promise<NodeSqlite> {
  return (loaded ??= (async () => {
    const emit = process.emitWarning;
    process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
      const text = typeof warning === 'string' ? warning : warning.message;
      if (/SQLite is an experimental feature/.test(text)) return;
      (emit as (w: string | Error, ...r: unknown[]) => void).call(process, warning, ...rest);
    }) as typeof process.emitWarning;
    try {
      return await import('node:sqlite');
    } finally {
      process.emitWarning = emit;
    }
  })());
}
