import { z } from 'zod';
import { modelIdSchema } from '../request-body.js';
import type { Dialect } from './dialect.js';
import { OLLAMA_ERRORS, ollamaUsage } from './ollama-common.js';

/** `/api/embed`: one input or several; `truncate`, `dimensions`, `options`, `keep_alive` pass through. */
export const ollamaEmbedRequestSchema = z.looseObject({
  model: modelIdSchema,
  input: z.union([z.string(), z.array(z.string()).min(1)], {
    error: (issue) => `${issue.input === undefined ? 'is required' : 'is not valid'}: a string or an array of strings`,
  }),
});

/** The older `/api/embeddings`, which LobeChat's Ollama provider still calls: one `prompt`. */
export const ollamaEmbeddingsRequestSchema = z.looseObject({
  model: modelIdSchema,
  prompt: z.string(),
});

/** What the embedding dialects share. */
const EMBEDDING = { api: 'ollama', answerOutputText: () => [], usageField: null, ...OLLAMA_ERRORS } as const;

/** No output, and never another model: its vectors would be of another space. */
const EMBEDDING_FACTS = { bodyUser: undefined, wantOutput: 0, streaming: false, downgradable: false } as const;

/** `POST /api/embed`: admitted on its input, settled on the upstream's `prompt_eval_count`. */
export const ollamaEmbed: Dialect<z.infer<typeof ollamaEmbedRequestSchema>> = {
  ...EMBEDDING,
  name: 'ollama-embed',
  requestSchema: ollamaEmbedRequestSchema,
  admissionFacts: (request) => ({ ...EMBEDDING_FACTS, model: request.model, prompt: { kind: 'embeddings', body: request.input } }),
  upstreamPath: '/api/embed',
  // As the client sent it.
  upstreamBody: (request) => request,
  usageOf: ollamaUsage,
};

/** `POST /api/embeddings`: Ollama reports no counts here, so it is charged on our count of the prompt. */
export const ollamaEmbeddings: Dialect<z.infer<typeof ollamaEmbeddingsRequestSchema>> = {
  ...EMBEDDING,
  name: 'ollama-embeddings',
  requestSchema: ollamaEmbeddingsRequestSchema,
  admissionFacts: (request) => ({ ...EMBEDDING_FACTS, model: request.model, prompt: { kind: 'embeddings', body: request.prompt } }),
  upstreamPath: '/api/embeddings',
  upstreamBody: (request) => request,
  usageOf: () => null,
};
