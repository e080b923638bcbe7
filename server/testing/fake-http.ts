import type { IncomingMessage, ServerResponse } from 'node:http';

/** What the fake upstreams (fake-openai.ts, fake-anthropic.ts) share of the HTTP they speak. */

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Waits `ms`; false (at once) when the exchange is aborted first, so a slow stream stops with its client. */
export function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Writes a piece of a stream; false when the client is gone. */
export function write(res: ServerResponse, data: string): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => res.write(data, (error) => resolve(!error && !res.destroyed)));
}

/** Cuts the connection on purpose (a dropped upstream), which the fake does not count as an abort. */
export function drop(ex: { res: ServerResponse; dropped: boolean }): void {
  ex.dropped = true;
  ex.res.destroy();
}
