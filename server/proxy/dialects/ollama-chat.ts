import { z } from 'zod';
import { modelIdSchema } from '../request-body.js';
import type { Dialect } from './dialect.js';
import { OLLAMA_ERRORS, ollamaOptionsSchema, ollamaUsage, wantOutputOf, withOutputLimit } from './ollama-common.js';
import { ollamaOutputText, ollamaStream, type OllamaStreamState } from './ollama-stream.js';

/**
 * What the proxy reads of an Ollama request that generates (`/api/chat`, `/api/generate`):
 * everything else (`format`, `think`, `keep_alive`, the other `options`…) passes through untouched.
 */
const generating = {
  model: modelIdSchema,
  // Ollama streams unless the body says `"stream": false` (null is its default too).
  stream: z.boolean().nullable().optional(),
  options: ollamaOptionsSchema,
};

/** `/api/chat`: `messages` may be left out or empty (that only loads the model, as Ollama does). */
export const ollamaChatRequestSchema = z.looseObject({
  ...generating,
  messages: z.array(z.looseObject({ role: z.string() })).optional(),
});

export type OllamaChatRequest = z.infer<typeof ollamaChatRequestSchema>;

/** `/api/generate`: an empty `prompt` only loads the model; `context` holds the token ids of the conversation so far. */
export const ollamaGenerateRequestSchema = z.looseObject({
  ...generating,
  prompt: z.string().optional(),
  system: z.string().optional(),
  suffix: z.string().optional(),
  context: z.array(z.number().int()).optional(),
});

export type OllamaGenerateRequest = z.infer<typeof ollamaGenerateRequestSchema>;

type Generating = OllamaChatRequest | OllamaGenerateRequest;

/**
 * The parts of a generating dialect that chat and generate share: admitted on the prompt's text,
 * `num_predict` set to the output allowed, settled on `prompt_eval_count` + `eval_count` (which a
 * whole answer carries at its top level, and a stream on its last line only). Local models cost $0
 * (admit-request.ts) but spend token budgets all the same.
 */
function generatingDialect<Request extends Generating>(api: 'chat' | 'generate', requestSchema: z.ZodType<Request>): Dialect<Request, OllamaStreamState> {
  return {
    name: `ollama-${api}`,
    api: 'ollama',
    requestSchema,
    admissionFacts: (request, outputCapOf) => ({
      model: request.model,
      bodyUser: undefined,
      wantOutput: wantOutputOf(request.options, outputCapOf(request.model)),
      streaming: request.stream !== false,
      downgradable: true,
      prompt: { kind: 'ollama', body: request },
    }),
    upstreamPath: `/api/${api}`,
    upstreamBody: (request, { model, outputLimit, assemble }) => ({
      ...request,
      model,
      options: withOutputLimit(request.options, outputLimit),
      ...(assemble ? { stream: true } : {}),
    }),
    usageField: null,
    usageOf: ollamaUsage,
    answerOutputText: (answer) => ollamaOutputText(api, answer as Record<string, unknown>),
    stream: ollamaStream(api),
    ...OLLAMA_ERRORS,
  };
}

/** `POST /api/chat`. */
export const ollamaChat = generatingDialect('chat', ollamaChatRequestSchema);

/** `POST /api/generate`. */
export const ollamaGenerate = generatingDialect('generate', ollamaGenerateRequestSchema);
