import type { ServerResponse } from 'node:http';
import type { Context } from 'hono';
import type { Meter } from './meter.js';
import type { StreamSink } from './response-sink.js';

/** Calls `listener` once the request's connection closes (finished or not); nothing outside @hono/node-server. */
function onConnectionClosed(c: Context, listener: () => void): void {
  const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
  outgoing?.once('close', listener);
}

/**
 * Runs everything a request does after admission, so that its hold never outlives it. A throw
 * anywhere in `work` (a body that cannot be written, an upstream that cannot be reached, a bug of
 * ours) ends the request through `Meter.abandon`: what reached the client is charged, the rest is
 * released. When the connection closes the hold stops being renewed, so a hold that something
 * still failed to end expires after `holds.ttlSeconds` instead of living until a restart.
 */
export async function afterAdmission(c: Context, meter: Meter | (() => Meter), work: () => Promise<Response>): Promise<Response> {
  // A request that failed over to another upstream has that upstream's meter by now: the current one.
  const currentMeter = typeof meter === 'function' ? meter : () => meter;
  onConnectionClosed(c, () => currentMeter().stopRenewing());
  try {
    return await work();
  } catch (error) {
    await currentMeter().abandon().catch(() => undefined);
    throw error;
  }
}

/**
 * Runs a stream's relay after its response has started (the route has already returned). However
 * the relay ends — it settles the request itself, or throws — the request is ended
 * (`Meter.abandon` does nothing for one already settled) and so is the client's stream.
 */
export function relayInBackground(meter: Meter, sink: StreamSink, what: string, relay: () => Promise<void>): void {
  void relay()
    .catch((error: unknown) => console.error(`[lobe-quota] ${what} stream failed:`, error))
    .then(() => meter.abandon())
    .catch((error: unknown) => console.error(`[lobe-quota] ${what} stream could not be settled:`, error))
    .finally(() => sink.end());
}
