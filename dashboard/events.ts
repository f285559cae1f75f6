/**
 * The coordinator's live event feed (GET /v1/events, server-sent events). Read with fetch and
 * a ReadableStream, because EventSource cannot send an Authorization header; reconnects with
 * exponential backoff (1 s doubling to 30 s, with jitter), reset once the stream says hello.
 */
import type { DashEvent } from './types.js';

export type FeedState = { state: 'connecting' } | { state: 'live' } | { state: 'down'; retryInMs: number; reason: string };

export interface FeedOptions {
  token: () => string | null;
  onEvent: (e: DashEvent) => void;
  onState: (s: FeedState) => void;
  /** The token was refused (401): no reconnecting. */
  onUnauthorized: () => void;
}

export function connectEvents(o: FeedOptions): { close(): void } {
  let closed = false;
  let abort: AbortController | null = null;
  let wake: (() => void) | null = null;

  const run = async (): Promise<void> => {
    let attempt = 0;
    while (!closed) {
      o.onState({ state: 'connecting' });
      let reason = 'the event stream ended';
      try {
        abort = new AbortController();
        const res = await fetch('/v1/events', { headers: { authorization: `Bearer ${o.token() ?? ''}`, accept: 'text/event-stream' }, cache: 'no-store', credentials: 'omit', signal: abort.signal });
        if (res.status === 401) return o.onUnauthorized();
        if (!res.ok || !res.body) throw new Error(res.status === 404 ? 'this coordinator has no event stream (GET /v1/events)' : `GET /v1/events answered ${res.status}`);
        await read(res.body, (e) => {
          if (e.type === 'hello') {
            attempt = 0;
            o.onState({ state: 'live' });
          }
          o.onEvent(e);
        });
      } catch (err) {
        if (closed) return;
        reason = (err as Error).message || String(err);
      }
      if (closed) return;
      const retryInMs = Math.min(30_000, 1000 * 2 ** attempt) * (0.8 + 0.4 * Math.random());
      attempt = Math.min(attempt + 1, 5);
      o.onState({ state: 'down', retryInMs, reason });
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, retryInMs);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      wake = null;
    }
  };
  void run();
  return {
    close() {
      closed = true;
      abort?.abort();
      wake?.();
    },
  };
}

/** Parses an SSE byte stream: events separated by a blank line, `data:` lines joined; comments ignored. */
async function read(body: ReadableStream<Uint8Array>, emit: (e: DashEvent) => void): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    for (let end = blankLine(buffer); end; end = blankLine(buffer)) {
      const block = buffer.slice(0, end.index);
      buffer = buffer.slice(end.index + end.length);
      const data = block
        .split(/\r?\n|\r/)
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, ''))
        .join('\n');
      if (!data) continue;
      try {
        const e = JSON.parse(data) as DashEvent;
        if (e && typeof e.type === 'string') emit(e);
      } catch {
        // (not JSON: ignored)
      }
    }
  }
}

function blankLine(s: string): { index: number; length: number } | null {
  const m = /\r?\n\r?\n|\r\r/.exec(s);
  return m ? { index: m.index, length: m[0].length } : null;
}
