/**
 * A fake upstream that speaks Ollama's native API (https://docs.ollama.com/api), for the proxy's
 * tests of the Ollama dialects (no network or models here, so it stands in for a local Ollama). It
 * mirrors fake-openai.ts and fake-anthropic.ts: the same `enqueue` of behaviours (FIFO, then
 * `defaultBehaviour`), `requests`, `waitForRequests`, `aborted`, `close`, plain `node:http` on
 * 127.0.0.1 with an OS-chosen port.
 *
 * Endpoints: `POST /api/chat` and `POST /api/generate` (newline-delimited JSON, `application/x-ndjson`,
 * unless the body says `"stream": false`: Ollama streams by default), `POST /api/embed`, the older
 * `POST /api/embeddings` (LobeChat's provider still calls it), `GET /api/tags`, `GET /api/version`.
 * Anything else gets gin's plain-text `404 page not found`, as Ollama's router answers.
 *
 * As Ollama reports it, only the last line of a stream (`"done": true`) carries `done_reason`
 * (`stop` or `length`), `prompt_eval_count`, `eval_count` and the durations; the lines before it
 * carry `message.content` (and `message.thinking`, `message.tool_calls`), or `response` (and
 * `thinking`) for generate. Errors are `{"error": "…"}` with a status, or that line in the middle of
 * a stream already under way.
 *
 * Token accounting is deterministic so tests can assert exact usage: every output piece (text,
 * thinking, or one whole tool call) is one output token, streamed as one line; `options.num_predict`
 * stops the output there (`done_reason: "length"`) unless the behaviour ignores it; the prompt
 * counts {@link promptEvalCountOf} the body.
 */
import type { ServerResponse } from 'node:http';
import { drop, isObject, readRequest, sleep, startFakeServer, write, type Exchange as FakeExchange, type HangBehaviour, type RawBehaviour, type ReadRequest } from './fake-http.js';

export type { HangBehaviour, RawBehaviour } from './fake-http.js';

export { waitFor } from './fake-openai.js';

/** A request as the fake saw it (its `path`, e.g. "/api/chat"). */
export interface RecordedRequest extends Omit<ReadRequest, 'badJson'> {
  /** The `authorization` header as sent (Ollama itself takes none; a proxy in front of it may), or null. */
  authorization: string | null;
  /**
   * Output pieces (one token each) written to the client so far: a whole answer's once it is sent,
   * a stream's as they go out. What a proxy may charge for this request's output at most, unless
   * the answer reported more.
   */
  servedPieces: number;
}

/** Tool calls come whole in one line, as Ollama sends them (arguments an object, not JSON text). */
export interface ToolCall {
  name: string;
  arguments: Record<string, unknown>;
}

export interface ReplyBehaviour {
  kind: 'reply';
  /** How many " hi" pieces to produce when `text` is not given (default 20; 0 with `toolCalls`). */
  outputTokens?: number;
  /** Explicit text pieces; each counts as one token. */
  text?: string[];
  /** " hmm" pieces of thinking (`message.thinking`, generate's `thinking`) before the text. */
  thinkingTokens?: number;
  /** Chat only: tool calls after the text, one line (and one token) each. */
  toolCalls?: ToolCall[];
  /** What the last line reports instead of what the fake computed; null leaves the field out. */
  usage?: { prompt_eval_count?: number | null; eval_count?: number | null };
  /** Produce every piece whatever `options.num_predict` says. */
  ignoreNumPredict?: boolean;
  /** Delay between stream lines (default 0). */
  chunkDelayMs?: number;
  /** Delay before the status line is sent. */
  firstByteDelayMs?: number;
}

export interface ErrorBehaviour {
  kind: 'error';
  status: number;
  /** The `error` text (default: one for the status). */
  message?: string;
  /** Replaces the whole `{"error": …}` body. */
  body?: object;
  headers?: Record<string, string>;
}

/**
 * Streams: `afterPieces` output lines, then `{"error": "…"}` as a line of the stream (Ollama's way
 * once the status has gone out, e.g. the runner crashed) and the end of the stream, without a done
 * line. Requests that do not stream get the error with status 500.
 */
export interface StreamErrorBehaviour {
  kind: 'stream-error';
  afterPieces: number;
  message?: string;
  chunkDelayMs?: number;
}

/** Streams: `afterPieces` output lines, then the socket is destroyed (no done line). Otherwise: destroyed at once. */
export interface DropBehaviour {
  kind: 'drop';
  afterPieces: number;
  chunkDelayMs?: number;
}

export type Behaviour = ReplyBehaviour | ErrorBehaviour | StreamErrorBehaviour | HangBehaviour | DropBehaviour | RawBehaviour;

export interface FakeOllamaOptions {
  defaultBehaviour?: Behaviour;
  /** The models `GET /api/tags` lists (default {@link DEFAULT_MODELS}). */
  models?: string[];
  /** When set, requests without `Authorization: Bearer <apiKey>` get 401 (Ollama behind an authenticating proxy). */
  apiKey?: string;
}

export interface FakeOllama {
  /** e.g. "http://127.0.0.1:PORT": what ollama-js takes as `host`. */
  baseUrl: string;
  requests: RecordedRequest[];
  enqueue(...behaviours: Behaviour[]): void;
  defaultBehaviour: Behaviour;
  models: string[];
  waitForRequests(n: number, timeoutMs?: number): Promise<void>;
  /** Number of requests whose client went away before the response finished. */
  aborted: number;
  close(): Promise<void>;
}

export const DEFAULT_MODELS = ['llama3.2:latest', 'qwen3:8b', 'nomic-embed-text:latest'];
export const DEFAULT_PIECE = ' hi';
export const THINKING_PIECE = ' hmm';
export const FAKE_OLLAMA_VERSION = '0.12.6';
const DEFAULT_OUTPUT_TOKENS = 20;

/**
 * The `prompt_eval_count` the fake reports: `ceil(len(JSON(prompt part)) / 4)`, where the prompt
 * part is chat's `{messages, tools}`, generate's `{system, prompt}`, and for embed each input on its
 * own (summed). It matches no tokenizer; it is only deterministic.
 */
export function promptEvalCountOf(body: unknown): number {
  const b = isObject(body) ? body : {};
  if (b.messages !== undefined) return Math.ceil(JSON.stringify({ messages: b.messages, tools: b.tools }).length / 4);
  if (b.input !== undefined) return embedInputs(b.input).reduce((sum, input) => sum + Math.ceil(input.length / 4), 0);
  return Math.ceil(JSON.stringify({ system: b.system, prompt: b.prompt }).length / 4);
}

/** The vector the fake returns for one input: a few deterministic floats, unit length. */
export function embeddingOf(input: string): number[] {
  const v: number[] = [];
  let h = 2166136261;
  for (let i = 0; i < input.length; i++) h = Math.imul(h ^ input.charCodeAt(i), 16777619);
  for (let i = 0; i < 8; i++) {
    h = Math.imul(h ^ (h >>> 13), 3266489917) ^ i;
    v.push(((h >>> 0) / 0xffffffff) * 2 - 1);
  }
  const norm = Math.hypot(...v) || 1;
  return v.map((x) => x / norm);
}

const RUNNER_CRASHED = 'llama runner process has terminated: exit status 2';

const STATUS_MESSAGES: Record<number, string> = {
  400: 'invalid request',
  401: 'unauthorized',
  404: 'model not found, try pulling it first',
  429: 'too many requests',
  500: RUNNER_CRASHED,
  503: 'server busy, please try again.  maximum pending requests exceeded',
};

export async function startFakeOllama(options: FakeOllamaOptions = {}): Promise<FakeOllama> {
  const server = await startFakeServer<RecordedRequest, Behaviour>({
    defaultBehaviour: options.defaultBehaviour ?? { kind: 'reply' },
    handle: (ex) => handle(ex),
    crashed: (res, error) => sendError(res, 500, `fake-ollama crashed: ${String(error)}`),
  });
  const fake = Object.assign(server, { baseUrl: server.origin, models: options.models ?? [...DEFAULT_MODELS] });
  return fake;

  async function handle(ex: Exchange): Promise<void> {
    const { res } = ex;
    const { method, url, path, headers, rawBody, body, badJson } = await readRequest(ex.req);
    const recorded: RecordedRequest = { method, path, url, headers, body, rawBody, authorization: headers.authorization ?? null, servedPieces: 0 };
    ex.recorded = recorded;
    fake.record(recorded);

    if (options.apiKey !== undefined && headers.authorization !== `Bearer ${options.apiKey}`) return sendError(res, 401, 'unauthorized');
    const route = routeOf(method, path);
    if (route === null) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('404 page not found');
      return;
    }
    if (route === 'version') return sendJson(res, 200, { version: FAKE_OLLAMA_VERSION });
    if (route === 'tags') return sendJson(res, 200, { models: fake.models.map(tagEntry) });

    const behaviour = fake.nextBehaviour();
    switch (behaviour.kind) {
      case 'hang':
        return;
      case 'error':
        res.writeHead(behaviour.status, { 'content-type': 'application/json; charset=utf-8', ...behaviour.headers });
        res.end(JSON.stringify(behaviour.body ?? { error: behaviour.message ?? STATUS_MESSAGES[behaviour.status] ?? 'error' }));
        return;
      case 'raw':
        res.writeHead(behaviour.status, { ...behaviour.headers, 'content-length': Buffer.byteLength(behaviour.body) });
        res.end(behaviour.body);
        return;
      default:
        break;
    }

    // The checks Ollama makes first, in its wording.
    if (badJson) return sendError(res, 400, 'invalid character in JSON body');
    const b = isObject(body) ? body : {};
    if (typeof b.model !== 'string' || b.model === '') return sendError(res, 400, 'model is required');
    if (route === 'chat' && b.messages !== undefined && !Array.isArray(b.messages)) return sendError(res, 400, 'messages must be an array');

    const reply: ReplyBehaviour = behaviour.kind === 'reply' ? behaviour : { kind: 'reply', chunkDelayMs: behaviour.chunkDelayMs ?? 0 };
    if (!(await sleep(reply.firstByteDelayMs ?? 0, ex.signal))) return;
    if (route === 'embed' || route === 'embeddings') return sendEmbeddings(res, route, b, reply, behaviour.kind === 'drop' ? ex : null);

    // Ollama streams unless told not to.
    const stream = b.stream !== false;
    if (behaviour.kind === 'drop' && !stream) return drop(ex);
    if (behaviour.kind === 'stream-error' && !stream) return sendError(res, 500, behaviour.message ?? RUNNER_CRASHED);
    const plan = planOutput(route, b, reply);
    const usage = usageOf(reply, plan, b);
    if (!stream) {
      sendJson(res, 200, wholeAnswer(route, b, plan, usage));
      recorded.servedPieces = plan.pieces.length;
      return;
    }
    const interrupt: Interrupt | null =
      behaviour.kind === 'drop' ? { afterPieces: behaviour.afterPieces, error: null }
      : behaviour.kind === 'stream-error' ? { afterPieces: behaviour.afterPieces, error: behaviour.message ?? RUNNER_CRASHED }
      : null;
    await streamAnswer(ex, route, b, reply, plan, usage, interrupt);
  }
}

// ---------------------------------------------------------------------------------------------
// Internals

type Route = 'chat' | 'generate' | 'embed' | 'embeddings' | 'tags' | 'version';

function routeOf(method: string, path: string): Route | null {
  const p = path.replace(/\/+$/, '');
  if (method === 'POST' && p === '/api/chat') return 'chat';
  if (method === 'POST' && p === '/api/generate') return 'generate';
  if (method === 'POST' && p === '/api/embed') return 'embed';
  if (method === 'POST' && p === '/api/embeddings') return 'embeddings';
  if ((method === 'GET' || method === 'HEAD') && p === '/api/tags') return 'tags';
  if ((method === 'GET' || method === 'HEAD') && p === '/api/version') return 'version';
  return null;
}

type Exchange = FakeExchange<RecordedRequest>;

/** Where a stream stops early: a dropped socket (`error` null) or an `{"error": …}` line. */
interface Interrupt {
  afterPieces: number;
  error: string | null;
}

type Piece = { kind: 'thinking' | 'text'; text: string } | { kind: 'tool'; call: ToolCall };

interface Plan {
  pieces: Piece[];
  truncated: boolean;
}

/** The output, cut at `options.num_predict` (thinking counts against it, as upstream). */
function planOutput(route: Route, body: Record<string, unknown>, reply: ReplyBehaviour): Plan {
  const calls = route === 'chat' ? (reply.toolCalls ?? []) : [];
  const all: Piece[] = [
    ...Array.from({ length: reply.thinkingTokens ?? 0 }, (): Piece => ({ kind: 'thinking', text: THINKING_PIECE })),
    ...(reply.text ?? Array.from({ length: reply.outputTokens ?? (calls.length > 0 ? 0 : DEFAULT_OUTPUT_TOKENS) }, () => DEFAULT_PIECE)).map((text): Piece => ({ kind: 'text', text })),
    ...calls.map((call): Piece => ({ kind: 'tool', call })),
  ];
  const numPredict = isObject(body.options) ? body.options.num_predict : undefined;
  // -1 (the default) is no limit; -2 fills the context.
  const limit = !reply.ignoreNumPredict && typeof numPredict === 'number' && numPredict >= 0 ? Math.floor(numPredict) : Number.POSITIVE_INFINITY;
  const pieces = all.slice(0, Math.min(all.length, limit));
  return { pieces, truncated: pieces.length < all.length };
}

interface Usage {
  prompt: number | null;
  output: number | null;
}

function usageOf(reply: ReplyBehaviour, plan: Plan, body: Record<string, unknown>): Usage {
  const o = reply.usage ?? {};
  return {
    prompt: o.prompt_eval_count === undefined ? promptEvalCountOf(body) : o.prompt_eval_count,
    output: o.eval_count === undefined ? plan.pieces.length : o.eval_count,
  };
}

/** Ollama's timestamps: RFC 3339 with fractional seconds, UTC. */
const createdAt = () => new Date().toISOString();

/** The counts and durations (nanoseconds) of a last line; a count set to null is left out. */
function metrics(usage: Usage, pieces: number) {
  return {
    total_duration: 1_000_000 * (10 + pieces),
    load_duration: 1_000_000,
    ...(usage.prompt === null ? {} : { prompt_eval_count: usage.prompt }),
    prompt_eval_duration: 2_000_000,
    ...(usage.output === null ? {} : { eval_count: usage.output }),
    eval_duration: 1_000_000 * pieces,
  };
}

const doneReason = (plan: Plan) => (plan.truncated ? 'length' : 'stop');

/** The conversation's token ids generate hands back for the next turn (a stand-in: a few numbers). */
const contextOf = (usage: Usage, plan: Plan) => Array.from({ length: Math.min(8, (usage.prompt ?? 0) + plan.pieces.length) }, (_, i) => 100 + i);

function joined(plan: Plan, kind: 'thinking' | 'text'): string {
  return plan.pieces
    .filter((p) => p.kind === kind)
    .map((p) => (p.kind === 'tool' ? '' : p.text))
    .join('');
}

function chatMessage(plan: Plan) {
  const thinking = joined(plan, 'thinking');
  const calls = plan.pieces.flatMap((p) => (p.kind === 'tool' ? [toolCallJson(p.call)] : []));
  return { role: 'assistant', content: joined(plan, 'text'), ...(thinking ? { thinking } : {}), ...(calls.length > 0 ? { tool_calls: calls } : {}) };
}

const toolCallJson = (call: ToolCall) => ({ function: { name: call.name, arguments: call.arguments } });

function wholeAnswer(route: Route, body: Record<string, unknown>, plan: Plan, usage: Usage) {
  const base = { model: body.model, created_at: createdAt() };
  if (route === 'chat') return { ...base, message: chatMessage(plan), done_reason: doneReason(plan), done: true, ...metrics(usage, plan.pieces.length) };
  const thinking = joined(plan, 'thinking');
  return {
    ...base,
    response: joined(plan, 'text'),
    ...(thinking ? { thinking } : {}),
    done: true,
    done_reason: doneReason(plan),
    context: contextOf(usage, plan),
    ...metrics(usage, plan.pieces.length),
  };
}

/** One middle line of a stream. */
function pieceLine(route: Route, model: unknown, piece: Piece) {
  const base = { model, created_at: createdAt() };
  if (route === 'chat') {
    const message =
      piece.kind === 'tool' ? { role: 'assistant', content: '', tool_calls: [toolCallJson(piece.call)] }
      : piece.kind === 'thinking' ? { role: 'assistant', content: '', thinking: piece.text }
      : { role: 'assistant', content: piece.text };
    return { ...base, message, done: false };
  }
  return piece.kind === 'thinking' ? { ...base, response: '', thinking: piece.text, done: false } : { ...base, response: piece.kind === 'text' ? piece.text : '', done: false };
}

function lastLine(route: Route, model: unknown, plan: Plan, usage: Usage) {
  const base = { model, created_at: createdAt() };
  if (route === 'chat') return { ...base, message: { role: 'assistant', content: '' }, done_reason: doneReason(plan), done: true, ...metrics(usage, plan.pieces.length) };
  return { ...base, response: '', done: true, done_reason: doneReason(plan), context: contextOf(usage, plan), ...metrics(usage, plan.pieces.length) };
}

async function streamAnswer(ex: Exchange, route: Route, body: Record<string, unknown>, reply: ReplyBehaviour, plan: Plan, usage: Usage, interrupt: Interrupt | null): Promise<void> {
  const { res } = ex;
  const delay = reply.chunkDelayMs ?? 0;
  let first = true;
  const send = async (line: object): Promise<boolean> => {
    if (!first && !(await sleep(delay, ex.signal))) return false;
    first = false;
    return write(res, `${JSON.stringify(line)}\n`);
  };
  res.writeHead(200, { 'content-type': 'application/x-ndjson' });
  res.flushHeaders();

  let sent = 0;
  for (const piece of plan.pieces) {
    if (interrupt && sent >= interrupt.afterPieces) break;
    if (!(await send(pieceLine(route, body.model, piece)))) return;
    sent += 1;
    if (ex.recorded) ex.recorded.servedPieces += 1;
  }
  if (interrupt) {
    if (interrupt.error === null) return drop(ex);
    if (await send({ error: interrupt.error })) res.end();
    return;
  }
  if (!(await send(lastLine(route, body.model, plan, usage)))) return;
  if (!res.destroyed) res.end();
}

function embedInputs(input: unknown): string[] {
  if (typeof input === 'string') return [input];
  if (Array.isArray(input)) return input.map((x) => (typeof x === 'string' ? x : JSON.stringify(x)));
  return [JSON.stringify(input ?? '')];
}

/** `/api/embed` (`embeddings`, with its prompt count) or the older `/api/embeddings` (one `embedding`, no counts). */
function sendEmbeddings(res: ServerResponse, route: 'embed' | 'embeddings', body: Record<string, unknown>, reply: ReplyBehaviour, dropping: Exchange | null): void {
  if (dropping) return drop(dropping);
  if (route === 'embeddings') {
    if (typeof body.prompt !== 'string') return sendError(res, 400, 'prompt is required');
    return sendJson(res, 200, { embedding: embeddingOf(body.prompt) });
  }
  if (body.input === undefined) return sendError(res, 400, 'input is required');
  const prompt = reply.usage?.prompt_eval_count === undefined ? promptEvalCountOf(body) : reply.usage.prompt_eval_count;
  sendJson(res, 200, {
    model: body.model,
    embeddings: embedInputs(body.input).map(embeddingOf),
    total_duration: 14_143_917,
    load_duration: 1_019_500,
    ...(prompt === null ? {} : { prompt_eval_count: prompt }),
  });
}

function tagEntry(name: string) {
  return {
    name,
    model: name,
    modified_at: '2025-10-01T12:00:00.000000000Z',
    size: 2_019_393_189,
    digest: `${Buffer.from(name).toString('hex').padEnd(64, '0').slice(0, 64)}`,
    details: { parent_model: '', format: 'gguf', family: 'llama', families: ['llama'], parameter_size: '3.2B', quantization_level: 'Q4_K_M' },
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(payload) });
  res.end(payload);
}

function sendError(res: ServerResponse, status: number, message: string): void {
  sendJson(res, status, { error: message });
}
