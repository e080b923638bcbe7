/**
 * A fake upstream that speaks Google's Generative Language API (v1beta, the Gemini API), for the
 * proxy's tests of the Gemini dialect (no network here, so it stands in for
 * generativelanguage.googleapis.com). It mirrors fake-openai.ts and fake-anthropic.ts: `enqueue`
 * of behaviours (FIFO, then `defaultBehaviour`), `requests`, `waitForRequests`, `aborted`, `close`,
 * plain `node:http` on 127.0.0.1 with an OS-chosen port.
 *
 * Endpoints, as Google serves them:
 * - `POST /v1beta/models/{model}:generateContent`: a whole answer, as pretty-printed JSON;
 * - `POST /v1beta/models/{model}:streamGenerateContent?alt=sse`: one `data: {…}\r\n\r\n` event per
 *   chunk; the stream ends when the connection does (no terminal event). Every chunk carries
 *   `usageMetadata`, but a middle chunk only its prompt count (`promptTokenCount` and an equal
 *   `totalTokenCount`): the output is counted only in the last chunk, beside its `finishReason`.
 *   (`runningUsage` makes middle chunks carry running output counts instead, as some 2.5 models do.)
 *   A failure mid-stream is Google's bare JSON error object after the last event, not an SSE event;
 * - `POST /v1beta/models/{model}:countTokens`;
 * - `GET /v1beta/models` (paged: `pageSize`, default 50, at most 1000, and `pageToken`) and
 *   `GET /v1beta/models/{model}`.
 * Anything else gets Google's 404 `NOT_FOUND`. The key goes in `x-goog-api-key` (what @google/genai
 * sends) or `?key=` (what LobeChat's model list uses).
 *
 * Token accounting is deterministic so tests can assert exact usage: every output piece (text or
 * thought) is one token, streamed as one chunk; a function call costs {@link functionCallTokens}.
 * Thoughts count against `maxOutputTokens` and are billed (`thoughtsTokenCount`, not part of
 * `candidatesTokenCount`), but are sent only when `thinkingConfig.includeThoughts` asks for them,
 * as upstream. `promptTokenCount` is {@link promptTokensOf} the body and includes
 * `cachedContentTokenCount`.
 */
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { drop, isObject, readRequest, sleep, startFakeServer, write, type DropBehaviour, type Exchange as FakeExchange, type FakeServer, type HangBehaviour, type RawBehaviour } from './fake-http.js';

export type { DropBehaviour, HangBehaviour, RawBehaviour };

export { waitFor } from './fake-openai.js';

export interface RecordedRequest {
  method: string;
  /** The path without the query string, e.g. "/v1beta/models/gemini-2.5-flash:generateContent". */
  path: string;
  /** The request target as sent, query string included. */
  url: string;
  /** The query string's parameters. */
  query: Record<string, string>;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** The parsed JSON body, or null when there is none or it is not JSON. */
  body: unknown;
  rawBody: string;
  /** The `x-goog-api-key` header, else the `key` query parameter, else null. */
  apiKey: string | null;
  /** The model the URL names (without `models/`), or null. */
  model: string | null;
  /** The URL's method (`generateContent`, `streamGenerateContent`, `countTokens`), or null. */
  action: string | null;
  /**
   * Output pieces (one token each) written to the client so far: a whole answer's once it is sent,
   * a stream's as they go out (a function call counts its tokens). What a proxy may charge for this
   * request's visible output at most, unless the answer reported more.
   */
  servedPieces: number;
}

/** What `usageMetadata` reports, in place of what the fake would compute. */
export interface UsageOverride {
  /** The whole prompt, cached content included. */
  promptTokenCount: number;
  cachedContentTokenCount: number;
  candidatesTokenCount: number;
  thoughtsTokenCount: number;
}

export interface ReplyBehaviour {
  kind: 'reply';
  /** How many " hi" pieces to produce when `text` is not given (default 20; 0 with `functionCall`). */
  outputTokens?: number;
  /** Explicit text pieces; each counts as one token. */
  text?: string[];
  /** " hmm" thinking pieces before the text: billed always, sent only when the request includes thoughts. */
  thoughtTokens?: number;
  /** A function call after the text, sent whole in one chunk (as Gemini sends them). */
  functionCall?: { name: string; args: Record<string, unknown> };
  usage?: Partial<UsageOverride>;
  /** Produce every piece whatever `generationConfig.maxOutputTokens` says. */
  ignoreMaxOutputTokens?: boolean;
  /** Streams: middle chunks carry running output counts instead of the prompt count alone. */
  runningUsage?: boolean;
  /** Delay between stream chunks (default 0). */
  chunkDelayMs?: number;
  /** Delay before the status line is sent. */
  firstByteDelayMs?: number;
}

/** Google's canonical error statuses, and the HTTP status each is answered with. */
export const ERROR_STATUS = {
  INVALID_ARGUMENT: 400,
  FAILED_PRECONDITION: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  RESOURCE_EXHAUSTED: 429,
  CANCELLED: 499,
  INTERNAL: 500,
  UNAVAILABLE: 503,
  DEADLINE_EXCEEDED: 504,
} as const;

export type GoogleErrorStatus = keyof typeof ERROR_STATUS;

export interface ErrorBehaviour {
  kind: 'error';
  status: GoogleErrorStatus;
  /** Defaults to {@link ERROR_STATUS}[status]. */
  httpStatus?: number;
  message?: string;
  /** Replaces the whole `{error:{…}}` body. */
  body?: object;
  headers?: Record<string, string>;
  firstByteDelayMs?: number;
}

/**
 * Streams: send `afterPieces` output pieces, then Google's bare JSON error object (no `data:`), and
 * end the stream, as Google does when it fails mid-stream (e.g. shed for load). Whole answers get
 * the error as an HTTP error with its status.
 */
export interface StreamErrorBehaviour {
  kind: 'stream-error';
  afterPieces: number;
  status?: GoogleErrorStatus;
  message?: string;
  chunkDelayMs?: number;
}

/** A dropped stream stops before its last chunk (the one with the `finishReason` and the output count). */
export type Behaviour = ReplyBehaviour | ErrorBehaviour | StreamErrorBehaviour | HangBehaviour | DropBehaviour | RawBehaviour;

/** One entry of `GET /v1beta/models`, as Google lists it. */
export interface GeminiModelInfo {
  /** "models/gemini-2.5-flash". */
  name: string;
  version: string;
  displayName: string;
  description: string;
  inputTokenLimit: number;
  outputTokenLimit: number;
  supportedGenerationMethods: string[];
  [field: string]: unknown;
}

export interface FakeGeminiOptions {
  defaultBehaviour?: Behaviour;
  /** When set, requests without this key get Google's 403 (none) or 400 (another) and take no behaviour. */
  apiKey?: string;
  /** What `GET /v1beta/models` lists (default {@link DEFAULT_MODELS}). */
  models?: GeminiModelInfo[];
}

export interface FakeGemini extends FakeServer<RecordedRequest, Behaviour> {
  /** e.g. "http://127.0.0.1:PORT": what @google/genai's `httpOptions.baseUrl` would be (no "/v1beta"). */
  baseUrl: string;
  /** The key requests must carry; undefined accepts any (or none). Can be changed between requests. */
  apiKey: string | undefined;
  models: GeminiModelInfo[];
}

export const DEFAULT_PIECE = ' hi';
export const THOUGHT_PIECE = ' hmm';
const DEFAULT_OUTPUT_TOKENS = 20;
/** Google's default page size for `models.list`, and its largest. */
export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 1000;

const GENERATE_METHODS = ['generateContent', 'countTokens', 'createCachedContent', 'batchGenerateContent'];

/** A model as `models.list` describes it. */
export function modelInfo(id: string, displayName = id, extra: Partial<GeminiModelInfo> = {}): GeminiModelInfo {
  return {
    name: `models/${id}`,
    version: '001',
    displayName,
    description: `${displayName}, as the fake lists it`,
    inputTokenLimit: 1_048_576,
    outputTokenLimit: 65_536,
    supportedGenerationMethods: id.includes('embedding') ? ['embedContent', 'countTextTokens', 'countTokens'] : GENERATE_METHODS,
    temperature: 1,
    topP: 0.95,
    topK: 64,
    maxTemperature: 2,
    ...(id.startsWith('gemini-2.5') ? { thinking: true } : {}),
    ...extra,
  };
}

export const DEFAULT_MODELS: GeminiModelInfo[] = [
  modelInfo('gemini-2.5-flash', 'Gemini 2.5 Flash'),
  modelInfo('gemini-2.5-pro', 'Gemini 2.5 Pro'),
  modelInfo('gemini-2.5-flash-lite', 'Gemini 2.5 Flash-Lite'),
  modelInfo('gemini-2.0-flash', 'Gemini 2.0 Flash', { outputTokenLimit: 8_192 }),
  modelInfo('gemini-embedding-001', 'Gemini Embedding 001', { inputTokenLimit: 2_048, outputTokenLimit: 1 }),
];

/**
 * The prompt tokens the fake reports (generateContent and countTokens alike):
 * `ceil(len(JSON({contents, systemInstruction, tools})) / 4)`, of a countTokens body's
 * `generateContentRequest` when it has one. It matches no tokenizer; it is only deterministic.
 */
export function promptTokensOf(body: unknown): number {
  const b = isObject(body) ? body : {};
  const request = isObject(b.generateContentRequest) ? b.generateContentRequest : b;
  return Math.ceil(JSON.stringify({ contents: request.contents, systemInstruction: request.systemInstruction, tools: request.tools }).length / 4);
}

/** The output tokens a function call costs: `ceil(len(JSON({name, args})) / 4)`. */
export function functionCallTokens(call: { name: string; args: Record<string, unknown> }): number {
  return Math.ceil(JSON.stringify({ name: call.name, args: call.args }).length / 4);
}

/** Google's error body (the fake, like Google, pretty-prints its JSON). */
export function googleErrorBody(status: GoogleErrorStatus, message?: string, httpStatus: number = ERROR_STATUS[status]) {
  const defaults: Partial<Record<GoogleErrorStatus, string>> = {
    RESOURCE_EXHAUSTED: 'Resource has been exhausted (e.g. check quota).',
    UNAVAILABLE: 'The model is overloaded. Please try again later.',
    INTERNAL: 'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting',
    NOT_FOUND: 'Requested entity was not found.',
  };
  return { error: { code: httpStatus, message: message ?? defaults[status] ?? status, status } };
}

export async function startFakeGemini(options: FakeGeminiOptions = {}): Promise<FakeGemini> {
  const server = await startFakeServer<RecordedRequest, Behaviour>({
    defaultBehaviour: options.defaultBehaviour ?? { kind: 'reply' },
    handle: (ex) => handle(ex),
    crashed: (res, error) => sendJson(res, 500, googleErrorBody('INTERNAL', `fake-gemini crashed: ${String(error)}`)),
  });
  const fake: FakeGemini = Object.assign(server, { baseUrl: server.origin, apiKey: options.apiKey, models: options.models ?? DEFAULT_MODELS });

  async function handle(ex: Exchange): Promise<void> {
    const { req, res } = ex;
    const { method, url, path, rawBody, body, badJson, headers } = await readRequest(req);
    const query = Object.fromEntries(new URL(url, 'http://fake').searchParams);
    const apiKey = headers['x-goog-api-key'] ?? query.key ?? null;
    const route = routeOf(method, path);
    const recorded: RecordedRequest = { method, path, url, query, headers, body, rawBody, apiKey, model: route?.model ?? null, action: route?.action ?? null, servedPieces: 0 };
    ex.recorded = recorded;
    fake.record(recorded);

    if (route === null) return sendError(res, 'NOT_FOUND', `The requested URL ${path} was not found on this server.`);
    // Upstream checks the key before anything else, so a bad key consumes no behaviour.
    if (fake.apiKey !== undefined && apiKey !== fake.apiKey) {
      if (apiKey === null) {
        return sendError(res, 'PERMISSION_DENIED', "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.");
      }
      return sendJson(res, 400, {
        error: {
          ...googleErrorBody('INVALID_ARGUMENT', 'API key not valid. Please pass a valid API key.').error,
          details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID', domain: 'googleapis.com', metadata: { service: 'generativelanguage.googleapis.com' } }],
        },
      });
    }
    if (route.action === 'list') return listModels(res, query);
    if (route.action === 'get') {
      const found = fake.models.find((m) => m.name === `models/${route.model}`);
      return found ? sendJson(res, 200, found) : sendError(res, 'NOT_FOUND', `models/${route.model} is not found for API version v1beta.`);
    }
    if (route.action !== 'generateContent' && route.action !== 'streamGenerateContent' && route.action !== 'countTokens') {
      return sendError(res, 'NOT_FOUND', `models/${route.model} is not found for API version v1beta, or is not supported for ${route.action}.`);
    }
    const behaviour = fake.nextBehaviour();

    switch (behaviour.kind) {
      case 'hang':
        return;
      case 'error': {
        if (!(await sleep(behaviour.firstByteDelayMs ?? 0, ex.signal))) return;
        const status = behaviour.httpStatus ?? ERROR_STATUS[behaviour.status];
        sendJson(res, status, behaviour.body ?? googleErrorBody(behaviour.status, behaviour.message, status), behaviour.headers);
        return;
      }
      case 'raw':
        res.writeHead(behaviour.status, { ...behaviour.headers, 'content-length': Buffer.byteLength(behaviour.body) });
        res.end(behaviour.body);
        return;
      default:
        break;
    }

    if (badJson) return sendError(res, 'INVALID_ARGUMENT', `Invalid JSON payload received. Unexpected token.\n${rawBody.slice(0, 40)}\n^`);
    const b = isObject(body) ? body : {};
    if (route.action === 'countTokens') {
      const reply = behaviour.kind === 'reply' ? behaviour : null;
      const total = reply?.usage?.promptTokenCount ?? promptTokensOf(b);
      sendJson(res, 200, { totalTokens: total, promptTokensDetails: [{ modality: 'TEXT', tokenCount: total }] });
      return;
    }
    // The check upstream makes first, in its wording.
    if (!Array.isArray(b.contents) || b.contents.length === 0) return sendError(res, 'INVALID_ARGUMENT', '* GenerateContentRequest.contents: contents is not specified\n');

    const stream = route.action === 'streamGenerateContent';
    if (stream && query.alt !== 'sse') {
      // Without alt=sse Google streams a JSON array; the fake (like lobe-quota) speaks only SSE.
      return sendError(res, 'INVALID_ARGUMENT', 'fake-gemini streams only with ?alt=sse');
    }
    if (behaviour.kind === 'drop' && !stream) return drop(ex);
    if (behaviour.kind === 'stream-error' && !stream) return sendError(res, behaviour.status ?? 'UNAVAILABLE', behaviour.message);
    const reply: ReplyBehaviour = behaviour.kind === 'reply' ? behaviour : { kind: 'reply', chunkDelayMs: behaviour.chunkDelayMs ?? 0 };
    if (!(await sleep(reply.firstByteDelayMs ?? 0, ex.signal))) return;

    const plan = planOutput(b, reply);
    const answer = { model: route.model, responseId: randomId(22) };
    if (!stream) {
      sendJson(res, 200, wholeResponse(plan, usageOf(reply, plan, b), answer));
      recorded.servedPieces = plan.visibleThoughts.length + plan.text.length + (plan.functionCall ? plan.functionCallTokens : 0);
      return;
    }
    const interrupt: Interrupt | null =
      behaviour.kind === 'drop' ? { afterPieces: behaviour.afterPieces, error: null }
      : behaviour.kind === 'stream-error' ? { afterPieces: behaviour.afterPieces, error: googleErrorBody(behaviour.status ?? 'UNAVAILABLE', behaviour.message) }
      : null;
    await streamResponse(ex, reply, plan, usageOf(reply, plan, b), answer, interrupt);
  }

  function listModels(res: ServerResponse, query: Record<string, string>): void {
    const asked = Number(query.pageSize ?? DEFAULT_PAGE_SIZE);
    const pageSize = Number.isInteger(asked) && asked > 0 ? Math.min(asked, MAX_PAGE_SIZE) : DEFAULT_PAGE_SIZE;
    const start = query.pageToken ? Number(Buffer.from(query.pageToken, 'base64url').toString('utf8')) : 0;
    if (!Number.isInteger(start) || start < 0) return sendError(res, 'INVALID_ARGUMENT', 'Invalid page token.');
    const page = fake.models.slice(start, start + pageSize);
    const next = start + pageSize < fake.models.length ? Buffer.from(String(start + pageSize)).toString('base64url') : undefined;
    sendJson(res, 200, { models: page, ...(next ? { nextPageToken: next } : {}) });
  }

  return fake;
}

// ---------------------------------------------------------------------------------------------
// Internals

type Exchange = FakeExchange<RecordedRequest>;

type Route = { action: 'list'; model: null } | { action: string; model: string };

/** `GET /v1beta/models`, `GET /v1beta/models/{model}`, `POST /v1beta/models/{model}:{method}`. */
function routeOf(method: string, path: string): Route | null {
  const p = path.replace(/\/+$/, '');
  if (method === 'GET' && p === '/v1beta/models') return { action: 'list', model: null };
  const match = /^\/v1beta\/models\/([^/:]+)(?::([A-Za-z]+))?$/.exec(p);
  if (!match?.[1]) return null;
  const model = decodeURIComponent(match[1]);
  if (method === 'GET' && match[2] === undefined) return { action: 'get', model };
  if (method === 'POST' && match[2] !== undefined) return { action: match[2], model };
  return null;
}

/** Where a stream stops early: a dropped socket (`error` null) or Google's bare error object. */
interface Interrupt {
  afterPieces: number;
  error: object | null;
}

interface Plan {
  /** Thought pieces produced (billed), and those sent (only when the request includes thoughts). */
  thoughts: string[];
  visibleThoughts: string[];
  text: string[];
  functionCall: { name: string; args: Record<string, unknown> } | null;
  functionCallTokens: number;
  truncated: boolean;
}

function includesThoughts(body: Record<string, unknown>): boolean {
  const config = isObject(body.generationConfig) ? body.generationConfig : {};
  return isObject(config.thinkingConfig) && config.thinkingConfig.includeThoughts === true;
}

function planOutput(body: Record<string, unknown>, reply: ReplyBehaviour): Plan {
  const thoughtsAll = Array.from({ length: reply.thoughtTokens ?? 0 }, () => THOUGHT_PIECE);
  const textAll = reply.text ?? Array.from({ length: reply.outputTokens ?? (reply.functionCall ? 0 : DEFAULT_OUTPUT_TOKENS) }, () => DEFAULT_PIECE);
  const config = isObject(body.generationConfig) ? body.generationConfig : {};
  const limit = !reply.ignoreMaxOutputTokens && typeof config.maxOutputTokens === 'number' ? Math.max(0, Math.floor(config.maxOutputTokens)) : Number.POSITIVE_INFINITY;
  let left = limit;
  const take = (pieces: string[]) => {
    const taken = pieces.slice(0, Math.max(0, Math.min(pieces.length, left)));
    left -= taken.length;
    return taken;
  };
  const thoughts = take(thoughtsAll);
  const text = take(textAll);
  const callTokens = reply.functionCall ? functionCallTokens(reply.functionCall) : 0;
  // A function call is generated whole or not at all.
  const functionCall = reply.functionCall && callTokens <= left ? reply.functionCall : null;
  return {
    thoughts,
    visibleThoughts: includesThoughts(body) ? thoughts : [],
    text,
    functionCall,
    functionCallTokens: functionCall ? callTokens : 0,
    truncated: thoughts.length < thoughtsAll.length || text.length < textAll.length || (reply.functionCall !== undefined && functionCall === null),
  };
}

interface Usage {
  prompt: number;
  cached: number;
  candidates: number;
  thoughts: number;
}

function usageOf(reply: ReplyBehaviour, plan: Plan, body: Record<string, unknown>): Usage {
  const o = reply.usage ?? {};
  return {
    prompt: o.promptTokenCount ?? promptTokensOf(body),
    cached: o.cachedContentTokenCount ?? 0,
    candidates: o.candidatesTokenCount ?? plan.text.length + plan.functionCallTokens,
    thoughts: o.thoughtsTokenCount ?? plan.thoughts.length,
  };
}

/** `usageMetadata` as Google writes it: counts that are 0 are left out, the total adds them up. */
function usageMetadata(u: Usage) {
  return {
    promptTokenCount: u.prompt,
    ...(u.candidates > 0 ? { candidatesTokenCount: u.candidates } : {}),
    totalTokenCount: u.prompt + u.candidates + u.thoughts,
    ...(u.cached > 0 ? { cachedContentTokenCount: u.cached } : {}),
    promptTokensDetails: [{ modality: 'TEXT', tokenCount: u.prompt }],
    ...(u.cached > 0 ? { cacheTokensDetails: [{ modality: 'TEXT', tokenCount: u.cached }] } : {}),
    ...(u.thoughts > 0 ? { thoughtsTokenCount: u.thoughts } : {}),
  };
}

const finishReason = (plan: Plan): 'STOP' | 'MAX_TOKENS' => (plan.truncated ? 'MAX_TOKENS' : 'STOP');

type Part = Record<string, unknown>;

function wholeParts(plan: Plan): Part[] {
  const parts: Part[] = [];
  if (plan.visibleThoughts.length > 0) parts.push({ text: plan.visibleThoughts.join(''), thought: true });
  if (plan.text.length > 0 || !plan.functionCall) parts.push({ text: plan.text.join('') });
  if (plan.functionCall) parts.push({ functionCall: plan.functionCall });
  return parts;
}

interface AnswerIds {
  model: string;
  responseId: string;
}

function wholeResponse(plan: Plan, usage: Usage, { model, responseId }: AnswerIds) {
  return {
    candidates: [{ content: { parts: wholeParts(plan), role: 'model' }, finishReason: finishReason(plan), index: 0 }],
    usageMetadata: usageMetadata(usage),
    modelVersion: model,
    responseId,
  };
}

async function streamResponse(ex: Exchange, reply: ReplyBehaviour, plan: Plan, usage: Usage, ids: AnswerIds, interrupt: Interrupt | null): Promise<void> {
  const { res } = ex;
  const delay = reply.chunkDelayMs ?? 0;
  /** The chunks as they will stream: each with its parts and the output tokens it carries. */
  const chunks: { parts: Part[]; tokens: number; thoughts: number }[] = [
    ...plan.visibleThoughts.map((text) => ({ parts: [{ text, thought: true }], tokens: 1, thoughts: 1 })),
    ...plan.text.map((text) => ({ parts: [{ text }], tokens: 1, thoughts: 0 })),
    ...(plan.functionCall ? [{ parts: [{ functionCall: plan.functionCall }], tokens: plan.functionCallTokens, thoughts: 0 }] : []),
  ];
  // Nothing visible to send (hidden thoughts only): one chunk with an empty text carries the end.
  if (chunks.length === 0) chunks.push({ parts: [{ text: '' }], tokens: 0, thoughts: 0 });

  res.writeHead(200, { 'content-type': 'text/event-stream', 'x-content-type-options': 'nosniff', server: 'scaffolding on HTTPServer2' });
  res.flushHeaders();
  let sentTokens = 0;
  let sentThoughts = 0;
  for (const [i, chunk] of chunks.entries()) {
    if (interrupt !== null && i >= interrupt.afterPieces) return stopStream(ex, interrupt);
    if (i > 0 && !(await sleep(delay, ex.signal))) return;
    // An interrupted stream never reaches its last chunk, whatever `afterPieces` said.
    const last = interrupt === null && i === chunks.length - 1;
    sentTokens += chunk.tokens;
    sentThoughts += chunk.thoughts;
    const metadata = last
      ? usageMetadata(usage)
      : reply.runningUsage
        ? usageMetadata({ prompt: usage.prompt, cached: usage.cached, candidates: sentTokens - sentThoughts, thoughts: sentThoughts })
        : { promptTokenCount: usage.prompt, totalTokenCount: usage.prompt, promptTokensDetails: [{ modality: 'TEXT', tokenCount: usage.prompt }] };
    const candidate = { content: { parts: chunk.parts, role: 'model' }, ...(last ? { finishReason: finishReason(plan) } : {}), index: 0 };
    const data = { candidates: [candidate], usageMetadata: metadata, modelVersion: ids.model, responseId: ids.responseId };
    if (!(await write(res, `data: ${JSON.stringify(data)}\r\n\r\n`))) return;
    if (ex.recorded) ex.recorded.servedPieces += chunk.tokens;
  }
  if (interrupt !== null) return stopStream(ex, interrupt);
  if (!res.destroyed) res.end();
}

/** Ends a stream early: the socket dropped, or Google's bare error object and the end. */
async function stopStream(ex: Exchange, interrupt: Interrupt): Promise<void> {
  if (interrupt.error === null) return drop(ex);
  if (await write(ex.res, JSON.stringify(interrupt.error, null, 2))) ex.res.end();
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
function randomId(length: number): string {
  let out = '';
  for (const byte of randomBytes(length)) out += ALPHABET[byte % ALPHABET.length];
  return out;
}

/** Google pretty-prints its JSON answers. */
function sendJson(res: ServerResponse, status: number, body: unknown, extraHeaders: Record<string, string> = {}): void {
  const payload = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(payload), vary: 'Origin, X-Origin, Referer', ...extraHeaders });
  res.end(payload);
}

function sendError(res: ServerResponse, status: GoogleErrorStatus, message?: string): void {
  sendJson(res, ERROR_STATUS[status], googleErrorBody(status, message));
}
