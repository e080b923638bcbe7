import { isRecord } from '../../util/is-record.js';
import type { CutFacts, StreamFormat, StreamStep } from './dialect.js';
import { GeminiAnswerAssembler } from './gemini-assembler.js';
import { googleError } from './gemini-errors.js';
import { candidatesOutputText, geminiUsage } from './gemini-usage.js';

/** What a Gemini stream remembers while it runs. */
export interface GeminiStreamState {
  /** The model asked upstream: a cut's chunk names it when the upstream's did not. */
  model: string;
  /** The answer is assembled here (proxy.streamWholeAnswers): errors must reach the assembler as events. */
  assemble: boolean;
  /** Candidates the client has seen, and those it saw finish (a `finishReason`). */
  candidates: Set<number>;
  finished: Set<number>;
  /** The last chunk classified's candidates and finishes: the client's once it is delivered. */
  pending: { candidates: number[]; finished: number[] };
  /** The prompt was blocked (`promptFeedback.blockReason`): the answer is complete without candidates. */
  blocked: boolean;
  /** What the upstream's chunks said of the answer, repeated by a cut's chunk. */
  modelVersion: unknown;
  responseId: unknown;
  /** The prompt tokens the upstream reported (every chunk carries them). */
  promptTokens: number | null;
  /** A chunk that finished the answer was seen: its usage is the one to settle on. */
  finalSeen: boolean;
  /** The error the upstream ended its stream with, if it did. */
  upstreamError: Record<string, unknown> | null;
}

/** The data of an event as Google frames it (it ends events with CRLF pairs). */
export const geminiEvent = (json: unknown): string => `data: ${JSON.stringify(json)}\r\n\r\n`;

const isFinishReason = (value: unknown): boolean => typeof value === 'string' && value !== '' && value !== 'FINISH_REASON_UNSPECIFIED';

/**
 * How the stream tells the client of an error: as Google does, a bare JSON error object after the
 * last event (which @google/genai throws); to the assembler of a whole answer, as an event it reads.
 */
function errorTail(state: GeminiStreamState, error: object): string {
  return state.assemble ? geminiEvent(error) : JSON.stringify(error, null, 2);
}

/** A bare JSON object that is not an event: how Google ends a stream it failed (see errorTail). */
function bareError(raw: string): Record<string, unknown> | null {
  const text = raw.trim();
  if (!text.startsWith('{')) return null;
  try {
    const json: unknown = JSON.parse(text);
    return isRecord(json) && isRecord(json.error) ? json.error : null;
  } catch {
    return null;
  }
}

const PASS_AS_IS: StreamStep = { kind: 'pass', output: [] };

/**
 * `streamGenerateContent?alt=sse`: `data:` events, each a whole `GenerateContentResponse` chunk;
 * the stream ends when the upstream closes it (there is no terminal event). Every chunk carries
 * `usageMetadata`, but only the one with the `finishReason` counts the output (middle chunks carry
 * the prompt's count alone), so the output is counted live from each chunk's parts, and the
 * request is settled on the finishing chunk's usage when the upstream closes the stream. An answer
 * whose candidates did not all finish was broken off.
 */
export const geminiStream: StreamFormat<unknown, GeminiStreamState> = {
  begin: (_request, { model, assemble }) => ({
    model,
    assemble,
    candidates: new Set(),
    finished: new Set(),
    pending: { candidates: [], finished: [] },
    blocked: false,
    modelVersion: undefined,
    responseId: undefined,
    promptTokens: null,
    finalSeen: false,
    upstreamError: null,
  }),

  classify(state, event) {
    state.pending = { candidates: [], finished: [] };
    if (event.data === null) {
      const error = bareError(event.raw);
      if (!error) return PASS_AS_IS;
      state.upstreamError = error;
      return state.assemble ? { kind: 'rewrite', text: geminiEvent({ error }) } : PASS_AS_IS;
    }
    let chunk: unknown;
    try {
      chunk = JSON.parse(event.data);
    } catch {
      return PASS_AS_IS;
    }
    if (!isRecord(chunk)) return PASS_AS_IS;
    if (isRecord(chunk.error)) {
      state.upstreamError = chunk.error;
      return PASS_AS_IS;
    }
    if (chunk.modelVersion !== undefined) state.modelVersion = chunk.modelVersion;
    if (chunk.responseId !== undefined) state.responseId = chunk.responseId;
    const metadata = isRecord(chunk.usageMetadata) ? chunk.usageMetadata : null;
    if (typeof metadata?.promptTokenCount === 'number') state.promptTokens = metadata.promptTokenCount;
    let ends = isRecord(chunk.promptFeedback) && chunk.promptFeedback.blockReason !== undefined;
    if (ends) state.blocked = true;
    if (Array.isArray(chunk.candidates)) {
      for (const candidate of chunk.candidates as unknown[]) {
        if (!isRecord(candidate)) continue;
        const index = typeof candidate.index === 'number' ? candidate.index : 0;
        state.pending.candidates.push(index);
        if (isFinishReason(candidate.finishReason)) {
          state.pending.finished.push(index);
          ends = true;
        }
      }
    }
    const output = candidatesOutputText(chunk.candidates);
    // A middle chunk's counts are partial (no output at all, or the output so far): only an
    // answer's end reports what it cost. Its prompt count is whole, though: a stream that ends
    // before its end (cut, client gone, broken off) is charged that prompt, cached content and
    // media included, with the output counted here.
    const reported = geminiUsage(metadata);
    if (ends) state.finalSeen = true;
    const usage = ends ? reported : reported && !state.finalSeen ? { ...reported, outputTokens: 0, reasoningTokens: 0 } : null;
    return usage ? { kind: 'pass', output, usage } : { kind: 'pass', output };
  },

  delivered(state) {
    for (const index of state.pending.candidates) state.candidates.add(index);
    for (const index of state.pending.finished) state.finished.add(index);
  },

  closed(state, unfinishedMessage) {
    const finished = state.candidates.size > 0 && [...state.candidates].every((index) => state.finished.has(index));
    if (finished || state.blocked) return { complete: true, events: '' };
    // The upstream said why itself: the client has it already.
    if (state.upstreamError) return { complete: false, events: '' };
    return { complete: false, events: errorTail(state, googleError(502, unfinishedMessage, 'upstream_unfinished')) };
  },

  // One last chunk: every candidate that has not finished ends with MAX_TOKENS, and the usage is
  // what the request was charged (the output counted as it was delivered, thoughts included).
  cutEvents(state, cut) {
    const unfinished = [...state.candidates].filter((index) => !state.finished.has(index));
    const candidates = (unfinished.length > 0 ? unfinished : [0]).map((index) => ({ content: { parts: [{ text: '' }], role: 'model' }, finishReason: 'MAX_TOKENS', index }));
    return geminiEvent({ candidates, usageMetadata: cutUsage(state, cut), modelVersion: state.modelVersion ?? state.model, ...(state.responseId === undefined ? {} : { responseId: state.responseId }) });
  },

  brokeOffEvents: (state, message) => errorTail(state, googleError(502, message, 'upstream_failed')),

  assembler: () => new GeminiAnswerAssembler(),
};

function cutUsage(state: GeminiStreamState, { charged, countedOutputTokens }: CutFacts) {
  const prompt = charged?.inputTokens ?? state.promptTokens ?? 0;
  const output = charged?.outputTokens ?? countedOutputTokens;
  return { promptTokenCount: prompt, candidatesTokenCount: output, totalTokenCount: prompt + output };
}
