import type { Context } from 'hono';
import { z } from 'zod';
import { admitRequest, type ProxyServices } from './admit-request.js';
import type { UpstreamUsage } from './meter.js';
import { authenticate } from './identity.js';
import { countPrompt } from './prompt-count.js';
import { modelIdSchema, readJsonBody } from './request-body.js';
import { afterAdmission } from './request-lifetime.js';
import { finishWholeAnswer, sendUpstream, usageCount } from './upstream-answer.js';

const tokenIds = z.array(z.number().int().min(0)).min(1);

/** What the proxy reads of an embeddings request; everything else (encoding_format, dimensions…) passes through. */
export const embeddingsRequestSchema = z.looseObject({
  model: modelIdSchema,
  input: z.union([z.string(), z.array(z.string()).min(1), tokenIds, z.array(tokenIds).min(1)], {
    error: (issue) => `${issue.input === undefined ? 'is required' : 'is not valid'}: a string, an array of strings, an array of token ids or an array of token-id arrays`,
  }),
  user: z.string().optional(),
});

/** The embeddings usage object (`prompt_tokens`; embeddings produce no output tokens). */
export function embeddingsUsage(usage: unknown): UpstreamUsage | null {
  if (typeof usage !== 'object' || usage === null) return null;
  const prompt = usageCount((usage as { prompt_tokens?: unknown }).prompt_tokens);
  if (prompt === undefined || prompt === null) return null;
  return { inputTokens: prompt, outputTokens: 0, cachedTokens: 0, reasoningTokens: 0 };
}

/** `POST /v1/embeddings`: admitted on its input alone, settled on the upstream's prompt_tokens. */
export function embeddings(services: ProxyServices) {
  return async function embeddings(c: Context) {
    const receivedAt = performance.now();
    const identity = await authenticate(c, services.store);
    const { request, bytes } = await readJsonBody(c, embeddingsRequestSchema, services.config.proxy.maxBodyBytes);
    const admitted = await admitRequest(c, services, identity, {
      model: request.model,
      bodyBytes: bytes,
      bodyUser: request.user,
      countPrompt: (model) => countPrompt(services.tokens, { kind: 'embeddings', model, body: request.input }),
      // Another embedding model gives vectors of another space: never swapped behind the client's back.
      downgradable: false,
      wantOutput: 0,
      streaming: false,
    });
    return afterAdmission(c, admitted.meter, async () => {
      // The body goes as the client sent it: the vectors come back in the format it asked for.
      services.metrics.observeAddedLatency(receivedAt);
      const response = await sendUpstream(admitted, '/embeddings', JSON.stringify(request));
      return finishWholeAnswer(c, admitted, response, { usageOf: embeddingsUsage, estimateOf: () => 0 });
    });
  };
}
