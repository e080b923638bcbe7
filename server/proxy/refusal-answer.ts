import type { Context } from 'hono';
import type { ProxyServices } from './admit-request.js';
import type { RefusalAnswer } from './dialects/dialect.js';
import { refusalCode, type Refusal } from './refusals.js';
import { newRequestId } from './request-id.js';
import { sendWhole, streamSinkFor } from './response-sink.js';

/** Headers that tell a client to wait and not retry: meaningless on an answer that succeeded. */
const ERROR_ONLY_HEADERS = new Set(['retry-after', 'x-should-retry']);

/**
 * With `refusalStyle: "answer"` (the key's, else `proxy.refusalStyle`), a quota or rate refusal on
 * a chat endpoint is answered as an ordinary assistant message whose text is the refusal: HTTP 200
 * in the request's own format (`format`, the dialect's), streamed when it streams. For chat front
 * ends that show no error body: LobeHub 2.x on the Responses API turns our 429 into "the server
 * seems to be experiencing some difficulties". It is charged nothing and recorded in the ledger
 * with outcome `refused`. `x-quota-refused` carries the refusal's code for clients that look.
 */
export async function answerRefusal<Request>(
  c: Context,
  services: ProxyServices,
  refusal: Refusal,
  format: RefusalAnswer<Request>,
  request: { parsed: Request; model: string; streaming: boolean },
): Promise<Response> {
  const { refused } = refusal;
  const now = services.clock.now();
  const requestId = newRequestId(now);
  try {
    await services.store.settle({
      holdId: requestId,
      subject: refused.subject,
      now,
      usage: {
        model: request.model,
        inputTokens: 0,
        outputTokens: 0,
        cachedTokens: 0,
        reasoningTokens: 0,
        costMicros: 0,
        source: 'estimated',
        outcome: 'refused',
        latencyMs: 0,
        sessionId: refused.sessionId,
        tags: refused.tags,
      },
    });
  } catch (failure) {
    // The record is for reports; the person still hears why they were refused.
    console.error('[lobe-quota] could not record a refused request:', (failure as Error).message);
  }

  const headers: Record<string, string> = { 'x-quota-refused': refusalCode(refusal) };
  for (const [name, value] of Object.entries(refusal.headers)) if (!ERROR_ONLY_HEADERS.has(name)) headers[name] = value;
  const answer = { id: requestId.slice('req_'.length).replaceAll('-', ''), text: refusalText(refusal), model: request.model, createdSeconds: Math.floor(now / 1000) };

  if (!request.streaming) {
    return sendWhole(c, 200, { ...headers, 'content-type': 'application/json' }, Buffer.from(JSON.stringify(format.whole(answer))));
  }
  const sink = streamSinkFor(c);
  sink.start(200, { ...headers, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
  // A handful of events, written at once: nothing to meter and nothing to wait for.
  await sink.write(format.events(answer, request.parsed));
  sink.end();
  return sink.response;
}

/** The refusal as a person reads it in the chat: the message names the budget, usage, limit and reset. */
export function refusalText(refusal: Refusal): string {
  if (refusal.kind === 'rate') return `⚠️ lobe-quota: ${refusal.message}`;
  return `⚠️ lobe-quota: ${refusal.message}\n\nWhat you can do: wait for the reset, or ask your lobe-quota admin to raise the budget. Nothing was charged for this message.`;
}
