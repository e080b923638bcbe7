import type { z } from 'zod';
import type { Assembler } from '../assembled-answer.js';
import type { ErrorBody } from '../error-shape.js';
import type { UpstreamUsage } from '../meter.js';
import type { StreamFraming } from '../ndjson.js';
import type { PromptKind } from '../prompt-count.js';
import type { Refusal } from '../refusals.js';
import type { SseEvent } from '../sse.js';
import type { UpstreamApi } from '../upstream-api.js';

/**
 * One provider wire format, as data and pure functions: what the metered route (metered-route.ts)
 * and the relay loop (relay-stream.ts) need to know of it, and nothing else. Adding an API means
 * writing one of these and adding its path to the route table; nothing below the route knows a
 * wire format.
 */
export interface Dialect<Request, StreamState = never> {
  /** Names the API in logs. */
  readonly name: string;
  /** The wire format: its requests go to upstreams that speak the same one. */
  readonly api: UpstreamApi;
  /** Where this API's clients present their key (absent: `Authorization: Bearer`). */
  readonly clientKey?: ClientKey;
  /**
   * Fields of the request that its URL carries rather than its body (Gemini's model and method),
   * merged over the body before it is checked against `requestSchema`.
   */
  fromUrl?(url: UrlFacts): Record<string, unknown>;
  /** What the proxy reads of a request; everything else passes through untouched. */
  readonly requestSchema: z.ZodType<Request>;
  /**
   * `requestSchema`'s output for the usual request, found without zod, or null to leave the
   * request to the schema (every request it refuses, with its message). Optional: an API without
   * one has every request checked by the schema.
   */
  readonly quickParse?: (value: unknown) => Request | null;
  admissionFacts(request: Request, outputCapOf: (model: string) => number): AdmissionFacts;
  /** Under the upstream's base URL, with its query string if it needs one. */
  readonly upstreamPath: string | ((request: Request, forward: ForwardFacts) => string);
  /** Request headers of the client's that go upstream too (an API's version and beta flags). */
  readonly forwardedHeaders?: readonly string[];
  /** Upstream answer headers (lower case prefixes) the client gets besides the common ones. */
  readonly answerHeaderPrefixes?: readonly string[];
  /** The body sent upstream, with the output limit admission set (serialised by the route). */
  upstreamBody(request: Request, forward: ForwardFacts): unknown;
  /**
   * The whole answer's top-level field that holds its usage (read without parsing the rest); null
   * for an API whose counts lie at the answer's top level themselves (Ollama's `prompt_eval_count`
   * and `eval_count`): then `usageOf` is given the whole answer, parsed.
   */
  readonly usageField: string | null;
  /** The ledger's usage from that field's value; null when it carries no counts it can be charged on. */
  usageOf(usage: unknown): UpstreamUsage | null;
  /** The generated text of a whole answer (parsed), counted for an answer that reported no usage. */
  answerOutputText(answer: object): string[];
  /** How its streams are relayed; absent for an API that does not stream. */
  readonly stream?: StreamFormat<Request, StreamState>;
  /**
   * Whether an upstream error answer means the upstream refused lobe-quota's own key, where the API
   * says so otherwise than with a 401 (Google: 400 `API_KEY_INVALID`): the client gets a 502 that
   * says so, not an error that blames its own key.
   */
  upstreamRefusedKey?(status: number, body: Buffer): boolean;
  /** The body of an error in this API's shape. */
  readonly errorBody: ErrorBody;
  /** The body of a quota or rate refusal (HTTP 429) in this API's shape. */
  refusalBody(refusal: Refusal): object;
  /** The refusal as the assistant's answer (refusalStyle "answer"): chat APIs only. */
  readonly refusalAnswer?: RefusalAnswer<Request>;
}

/** Where a client's key is read from, and how to tell a client without one where to put it. */
export interface ClientKey {
  read(request: { header(name: string): string | undefined; query(name: string): string | undefined; param?(name: string): string | undefined }): string | null;
  /** e.g. `"x-api-key: lq-…"`. */
  hint: string;
}

/** What the request's URL says: its path parameters and query. */
export interface UrlFacts {
  params: Record<string, string>;
  query(name: string): string | undefined;
}

/** What admission needs to know of a parsed request. */
export interface AdmissionFacts {
  model: string;
  /** The body's end-user field (OpenAI's `user`): a service key may name the payer with it. */
  bodyUser: unknown;
  /** The output the request asks for (its max tokens, or the model's cap). 0 for embeddings. */
  wantOutput: number;
  /** Whether the client asked for a stream. */
  streaming: boolean;
  /**
   * A stream whose output may not all be visible as it goes (a model thinking without showing its
   * thoughts): it holds its whole output allowance up front rather than a lease that grows with
   * the output counted, since hidden output is billed but never counted live.
   */
  hiddenOutput?: boolean;
  /** The least output the upstream accepts as a limit. */
  minOutput?: number;
  /**
   * The request asks for its prompt to be written to a cache (Anthropic's `cache_control`), which
   * is billed above the input price: admission quotes the prompt at that write price.
   */
  promptCacheWrite?: PromptCacheWrite;
  /** Whether a `downgrade` budget may send the request to its cheaper model. */
  downgradable: boolean;
  /** Which counter reads the prompt, and the part of the body it reads. */
  prompt: { kind: PromptKind; body: unknown };
}

/** How long a request asks its prompt to be cached for, where that is billed apart. */
export type PromptCacheWrite = '5m' | '1h';

/** What the upstream body is written with, once the request is admitted. */
export interface ForwardFacts {
  /** The model to ask for: the client's, or a budget's cheaper one. */
  model: string;
  /** The tightest budget's room for output, at most `wantOutput`. */
  outputLimit: number;
  wantOutput: number;
  /** Ask the upstream for a stream, to assemble the whole answer the client asked for from it. */
  assemble: boolean;
}

/**
 * What the relay loop does with one upstream stream event:
 * - `pass`: sends it on unchanged, once the `output` text it carries is counted (and fits);
 * - `rewrite`: sends `text` instead (nothing counted);
 * - `hold`: sends nothing now (the dialect's stream state may keep it for the end);
 * - `terminal`: the upstream's last word: the request is settled on `usage`, then it is sent and
 *   the stream ends.
 * `usage` on the others is usage the upstream reported along the way: the latest is what a stream
 * that closes without a terminal event is settled on.
 */
export type StreamStep =
  | { kind: 'pass'; output: readonly string[]; usage?: UpstreamUsage }
  | { kind: 'rewrite'; text: string; usage?: UpstreamUsage }
  | { kind: 'hold'; usage?: UpstreamUsage }
  | { kind: 'terminal'; usage: UpstreamUsage | null };

/**
 * An API's stream events, classified, and the events the proxy writes itself. `State` is what the
 * format must remember while a stream runs (ids, sequence numbers, a held-back event): created per
 * stream by `begin`, so the loop stays generic.
 */
export interface StreamFormat<Request, State> {
  /**
   * How the stream's bytes are cut into events (absent: `sse`). An `ndjson` stream's events are
   * its lines: `data` is the line, `raw` the line with its line break.
   */
  readonly framing?: StreamFraming;
  begin(request: Request, context: { model: string; assemble: boolean }): State;
  classify(state: State, event: SseEvent): StreamStep;
  /**
   * Called once the event last classified `pass` reached the client (it does not when its output
   * did not fit and the stream was cut in its place).
   */
  delivered?(state: State): void;
  /**
   * The upstream closed its stream without a terminal event. `complete`: that is how this API ends
   * a stream (settled on the usage seen, then `events` are sent). Otherwise the answer is
   * unfinished: nothing charged but what was delivered, and `events` tell the client
   * (`unfinishedMessage`), or nothing when the upstream said why itself.
   */
  closed(state: State, unfinishedMessage: string): { complete: boolean; events: string };
  /** The events that end a stream cut at the budget (it is settled first). */
  cutEvents(state: State, cut: CutFacts): string;
  /** The events that tell the client the upstream broke off (`message` says how). */
  brokeOffEvents(state: State, message: string): string;
  /** Builds a whole answer from the stream's events (`proxy.streamWholeAnswers`). */
  assembler(): Assembler;
}

/** What a stream cut at the budget was charged, for the usage its last events report. */
export interface CutFacts {
  /** As settled (null: it had been settled already). */
  charged: { inputTokens: number; outputTokens: number } | null;
  /** The output counted as it was delivered. */
  countedOutputTokens: number;
  nowMs: number;
}

/** The text of a refusal answered as an ordinary assistant message. */
export interface AnswerText {
  /** Unique per answer; prefixed per format. */
  id: string;
  text: string;
  model: string;
  createdSeconds: number;
}

/** A refusal as the assistant's answer, in a chat API's format. */
export interface RefusalAnswer<Request> {
  /** The whole answer, as a request that did not stream gets it. */
  whole(answer: AnswerText): object;
  /** The answer as the stream events the request asked for. */
  events(answer: AnswerText, request: Request): string;
}
