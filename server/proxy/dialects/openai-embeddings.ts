import { z } from 'zod';
import { modelIdSchema } from '../request-body.js';
import type { Dialect } from './dialect.js';
import { OPENAI_ERRORS } from './openai-common.js';
import { embeddingsUsage } from './openai-usage.js';

const tokenIds = z.array(z.number().int().min(0)).min(1);

/** What the proxy reads of an embeddings request; everything else (encoding_format, dimensions…) passes through. */
export const embeddingsRequestSchema = z.looseObject({
  model: modelIdSchema,
  input: z.union([z.string(), z.array(z.string()).min(1), tokenIds, z.array(tokenIds).min(1)], {
    error: (issue) => `${issue.input === undefined ? 'is required' : 'is not valid'}: a string, an array of strings, an array of token ids or an array of token-id arrays`,
  }),
  user: z.string().optional(),
});

type EmbeddingsRequest = z.infer<typeof embeddingsRequestSchema>;

/** `POST /v1/embeddings`: admitted on its input alone, settled on the upstream's prompt_tokens. */
export const openAIEmbeddings: Dialect<EmbeddingsRequest> = {
  name: 'embeddings',
  api: 'openai',
  requestSchema: embeddingsRequestSchema,
  admissionFacts: (request) => ({
    model: request.model,
    bodyUser: request.user,
    wantOutput: 0,
    streaming: false,
    // Another embedding model gives vectors of another space: never swapped behind the client's back.
    downgradable: false,
    prompt: { kind: 'embeddings', body: request.input },
  }),
  upstreamPath: '/embeddings',
  // As the client sent it: the vectors come back in the format it asked for.
  upstreamBody: (request) => request,
  usageField: 'usage',
  usageOf: embeddingsUsage,
  // Embeddings produce no output.
  answerOutputText: () => [],
  ...OPENAI_ERRORS,
};
