/**
 * A fake upstream that speaks Anthropic's Messages API wire format, for the proxy's tests of the
 * Anthropic dialect (no network here, so it stands in for api.anthropic.com). It mirrors
 * fake-openai.ts: same `enqueue` of behaviours (FIFO, then `defaultBehaviour`), `requests`,
 * `waitForRequests`, `aborted`, `close`, plain `node:http` on 127.0.0.1 with an OS-chosen port.
 *
 * Endpoints: `POST /v1/messages` (JSON, or SSE with `event:` lines when `"stream": true`),
 * `POST /v1/messages/count_tokens` and `GET /v1/models`. Anything else gets Anthropic's 404 `not_found_error`.
 *
 * Token accounting is deterministic so tests can assert exact usage: every output piece (text,
 * thinking, or tool-input JSON fragment) is one output token, streamed as one delta; input tokens
 * are {@link inputTokensOf} the body. Thinking counts against `max_tokens`, as it does upstream.
 */
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { drop, isObject, readRequest, sleep, startFakeServer, write, type DropBehaviour, type Exchange as FakeExchange, type HangBehaviour, type RawBehaviour } from './fake-http.js';

export type { DropBehaviour, HangBehaviour, RawBehaviour };

export { waitFor } from './fake-openai.js';

export interface RecordedRequest {
  method: string;
  /** The path without the query string, e.g. "/v1/messages". */
  path: string;
  /** The request target as sent, query string included. */
  url: string;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** The parsed JSON body, or null when there is none or it is not JSON. */
  body: unknown;
  rawBody: string;
  /** The `x-api-key` header, else the bearer token of `authorization` (Anthropic accepts both), else null. */
  apiKey: string | null;
  /** The `anthropic-version` header, or null. */
  anthropicVersion: string | null;
  /**
   * Output pieces (one token each) written to the client so far: a whole answer's once it is sent,
   * a stream's as they go out. What a proxy may charge for this request's output at most, unless
   * the answer reported more.
   */
  servedPieces: number;
}

/** What usage reports, in place of what the fake would compute. */
export interface UsageOverride {
  /** Uncached input tokens (Anthropic's `input_tokens` excludes cache reads and writes). */
  input_tokens: number;
  output_tokens: number;
  cache_read_input_tokens: number;
  /** Cache writes with the 5-minute TTL; `cache_creation_input_tokens` is the sum of both TTLs. */
  cache_creation_5m: number;
  cache_creation_1h: number;
}

export interface ReplyBehaviour {
  kind: 'reply';
  /** How many " hi" pieces to produce when `text` is not given (default 20; 0 with `toolUse`). */
  outputTokens?: number;
  /** Explicit text pieces; each counts as one token. */
  text?: string[];
  /** " hmm" thinking pieces in a `thinking` block before the text (streamed as `thinking_delta`s). */
  thinkingTokens?: number;
  /** A `tool_use` block after the text; `input` is the JSON of its input cut into pieces (one token each). */
  toolUse?: { name: string; input: string[] };
  usage?: Partial<UsageOverride>;
  /** Produce every piece whatever `max_tokens` says. */
  ignoreMaxTokens?: boolean;
  /** Delay between stream events (default 0). */
  chunkDelayMs?: number;
  /** Delay before the status line is sent. */
  firstByteDelayMs?: number;
  /** Streams: an extra `ping` after every this many pieces (one ping follows the first block start regardless). */
  pingEvery?: number;
}

export type AnthropicErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'billing_error'
  | 'permission_error'
  | 'not_found_error'
  | 'request_too_large'
  | 'rate_limit_error'
  | 'timeout_error'
  | 'api_error'
  | 'overloaded_error';

/** The HTTP status Anthropic answers each error type with. */
export const ERROR_STATUS: Record<AnthropicErrorType, number> = {
  invalid_request_error: 400,
  authentication_error: 401,
  billing_error: 402,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  timeout_error: 504,
  api_error: 500,
  overloaded_error: 529,
};

export interface ErrorBehaviour {
  kind: 'error';
  type: AnthropicErrorType;
  /** Defaults to {@link ERROR_STATUS}[type]. */
  status?: number;
  message?: string;
  /** Replaces the whole `{type:"error", error:{…}}` body. */
  body?: object;
  headers?: Record<string, string>;
  /** Sets `x-should-retry`, which the SDK obeys over its own status-based retry rule. */
  shouldRetry?: boolean;
  firstByteDelayMs?: number;
}

/**
 * Streams: send `afterPieces` output pieces, then an `event: error` (as Anthropic does when it
 * fails mid-stream, e.g. overloaded) and end the stream cleanly. Non-streaming requests get the
 * error as an HTTP error with its status.
 */
export interface StreamErrorBehaviour {
  kind: 'stream-error';
  afterPieces: number;
  type?: AnthropicErrorType;
  message?: string;
  chunkDelayMs?: number;
}

/** A dropped stream stops before its `message_delta` and `message_stop`. */
export type Behaviour = ReplyBehaviour | ErrorBehaviour | StreamErrorBehaviour | HangBehaviour | DropBehaviour | RawBehaviour;

export interface FakeAnthropicOptions {
  defaultBehaviour?: Behaviour;
  /** What `GET /v1/models` lists (default {@link DEFAULT_CLAUDE_MODELS}). */
  models?: string[];
  /** When set, requests without this key (x-api-key or bearer) get 401 and take no behaviour. */
  apiKey?: string;
}

export interface FakeAnthropic {
  /** e.g. "http://127.0.0.1:PORT": what ANTHROPIC_BASE_URL / the SDK's `baseURL` would be (no "/v1"). */
  baseUrl: string;
  requests: RecordedRequest[];
  enqueue(...behaviours: Behaviour[]): void;
  defaultBehaviour: Behaviour;
  /** The key requests must carry; undefined accepts any (or none). Can be changed between requests. */
  apiKey: string | undefined;
  waitForRequests(n: number, timeoutMs?: number): Promise<void>;
  /** Number of requests whose client went away before the response finished. */
  aborted: number;
  close(): Promise<void>;
}

export const DEFAULT_CLAUDE_MODELS = ['claude-sonnet-4-5-20250929', 'claude-haiku-4-5-20251001', 'claude-opus-4-1-20250805'];

export const DEFAULT_PIECE = ' hi';
export const THINKING_PIECE = ' hmm';
const DEFAULT_OUTPUT_TOKENS = 20;

/**
 * The input token count the fake reports (messages and count_tokens alike):
 * `ceil(len(JSON({system, messages, tools})) / 4)`. It matches no tokenizer; it is only deterministic.
 */
export function inputTokensOf(body: unknown): number {
  const b = isObject(body) ? body : {};
  return Math.ceil(JSON.stringify({ system: b.system, messages: b.messages, tools: b.tools }).length / 4);
}

/** Anthropic's error body. */
export function anthropicErrorBody(type: AnthropicErrorType, message?: string): { type: 'error'; error: { type: AnthropicErrorType; message: string } } {
  const defaults: Partial<Record<AnthropicErrorType, string>> = {
    authentication_error: 'invalid x-api-key',
    rate_limit_error: 'Number of request tokens has exceeded your per-minute rate limit',
    overloaded_error: 'Overloaded',
    api_error: 'Internal server error',
    not_found_error: 'Not found',
  };
  return { type: 'error', error: { type, message: message ?? defaults[type] ?? type.replace(/_/g, ' ') } };
}

export async function startFakeAnthropic(options: FakeAnthropicOptions = {}): Promise<FakeAnthropic> {
  const server = await startFakeServer<RecordedRequest, Behaviour>({
    defaultBehaviour: options.defaultBehaviour ?? { kind: 'reply' },
    handle: (ex) => handle(ex),
    crashed: (res, error) => sendJson(res, 500, anthropicErrorBody('api_error', `fake-anthropic crashed: ${String(error)}`)),
  });
  const fake = Object.assign(server, { baseUrl: server.origin, apiKey: options.apiKey });

  async function handle(ex: Exchange): Promise<void> {
    const { req, res } = ex;
    const { method, url, path, rawBody, body, badJson, headers } = await readRequest(req);
    const bearer = /^Bearer\s+(.+)$/i.exec(headers.authorization ?? '')?.[1]?.trim();
    const apiKey = headers['x-api-key'] ?? bearer ?? null;
    const recorded: RecordedRequest = { method, path, url, headers, body, rawBody, apiKey, anthropicVersion: headers['anthropic-version'] ?? null, servedPieces: 0 };
    ex.recorded = recorded;
    fake.record(recorded);

    const p = path.replace(/\/+$/, '');
    const route = method === 'POST' && p === '/v1/messages' ? 'messages' : method === 'POST' && p === '/v1/messages/count_tokens' ? 'count' : method === 'GET' && p === '/v1/models' ? 'models' : null;
    if (route === null) return sendError(res, 'not_found_error', 'Not found');
    // Upstream checks the key before anything else, so a bad key consumes no behaviour.
    if (fake.apiKey !== undefined && apiKey !== fake.apiKey) {
      return sendError(res, 'authentication_error', apiKey === null ? 'x-api-key header is required' : 'invalid x-api-key');
    }
    if (route === 'models') {
      // One page as Anthropic lists them, newest first; display names made from the ids.
      const data = (options.models ?? DEFAULT_CLAUDE_MODELS).map((id, i) => ({ type: 'model', id, display_name: id.replace(/-\d{8}$/, ''), created_at: new Date(Date.UTC(2025, 9 - i, 1)).toISOString() }));
      sendJson(res, 200, { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null });
      return;
    }
    const behaviour = fake.nextBehaviour();

    switch (behaviour.kind) {
      case 'hang':
        return;
      case 'error': {
        if (!(await sleep(behaviour.firstByteDelayMs ?? 0, ex.signal))) return;
        const extra = { ...(behaviour.shouldRetry === undefined ? {} : { 'x-should-retry': String(behaviour.shouldRetry) }), ...behaviour.headers };
        sendJson(res, behaviour.status ?? ERROR_STATUS[behaviour.type], behaviour.body ?? anthropicErrorBody(behaviour.type, behaviour.message), extra);
        return;
      }
      case 'raw':
        res.writeHead(behaviour.status, { ...behaviour.headers, 'content-length': Buffer.byteLength(behaviour.body) });
        res.end(behaviour.body);
        return;
      default:
        break;
    }

    if (badJson) return sendError(res, 'invalid_request_error', 'There was an error parsing the body of your request as JSON.');
    const b = isObject(body) ? body : {};
    // The checks upstream makes first, in its wording (field errors name the field).
    if (typeof b.model !== 'string' || b.model === '') return sendError(res, 'invalid_request_error', 'model: Field required');
    if (!Array.isArray(b.messages)) return sendError(res, 'invalid_request_error', 'messages: Field required');
    if (route === 'messages' && typeof b.max_tokens !== 'number') return sendError(res, 'invalid_request_error', 'max_tokens: Field required');

    const stream = route === 'messages' && b.stream === true;
    if (behaviour.kind === 'drop' && !stream) return drop(ex);
    if (behaviour.kind === 'stream-error' && !stream) {
      const type = behaviour.type ?? 'overloaded_error';
      return sendError(res, type, behaviour.message);
    }
    const reply: ReplyBehaviour = behaviour.kind === 'reply' ? behaviour : { kind: 'reply', chunkDelayMs: behaviour.chunkDelayMs ?? 0 };
    if (!(await sleep(reply.firstByteDelayMs ?? 0, ex.signal))) return;

    if (route === 'count') {
      sendJson(res, 200, { input_tokens: reply.usage?.input_tokens ?? inputTokensOf(b) });
      return;
    }
    const plan = planOutput(b, reply);
    if (!stream) {
      sendJson(res, 200, messageObject(b, plan, usageOf(reply, plan, b), 'final'));
      recorded.servedPieces = plan.thinking.length + plan.text.length + plan.toolInput.length;
      return;
    }
    const interrupt: Interrupt | null =
      behaviour.kind === 'drop' ? { afterPieces: behaviour.afterPieces, error: null }
      : behaviour.kind === 'stream-error' ? { afterPieces: behaviour.afterPieces, error: anthropicErrorBody(behaviour.type ?? 'overloaded_error', behaviour.message) }
      : null;
    await streamMessage(ex, b, reply, plan, interrupt);
  }

  return fake;
}

// ---------------------------------------------------------------------------------------------
// Internals

type Exchange = FakeExchange<RecordedRequest>;

/** Where a stream stops early: a dropped socket (`error` null) or an `event: error`. */
interface Interrupt {
  afterPieces: number;
  error: object | null;
}

interface Plan {
  thinking: string[];
  text: string[];
  toolInput: string[];
  toolUse: { name: string; id: string } | null;
  truncated: boolean;
}

function planOutput(body: Record<string, unknown>, reply: ReplyBehaviour): Plan {
  const thinkingAll = Array.from({ length: reply.thinkingTokens ?? 0 }, () => THINKING_PIECE);
  const textAll = reply.text ?? Array.from({ length: reply.outputTokens ?? (reply.toolUse ? 0 : DEFAULT_OUTPUT_TOKENS) }, () => DEFAULT_PIECE);
  const inputAll = reply.toolUse?.input ?? [];
  const limit = !reply.ignoreMaxTokens && typeof body.max_tokens === 'number' ? Math.max(0, Math.floor(body.max_tokens)) : Number.POSITIVE_INFINITY;
  let left = limit;
  const take = (pieces: string[]) => {
    const taken = pieces.slice(0, Math.max(0, Math.min(pieces.length, left)));
    left -= taken.length;
    return taken;
  };
  const thinking = take(thinkingAll);
  const text = take(textAll);
  const toolInput = take(inputAll);
  return {
    thinking,
    text,
    toolInput,
    toolUse: reply.toolUse ? { name: reply.toolUse.name, id: `toolu_${randomId(24)}` } : null,
    truncated: thinking.length + text.length + toolInput.length < thinkingAll.length + textAll.length + inputAll.length,
  };
}

interface Usage {
  input: number;
  output: number;
  cacheRead: number;
  cache5m: number;
  cache1h: number;
}

function usageOf(reply: ReplyBehaviour, plan: Plan, body: Record<string, unknown>): Usage {
  const o = reply.usage ?? {};
  return {
    input: o.input_tokens ?? inputTokensOf(body),
    output: o.output_tokens ?? plan.thinking.length + plan.text.length + plan.toolInput.length,
    cacheRead: o.cache_read_input_tokens ?? 0,
    cache5m: o.cache_creation_5m ?? 0,
    cache1h: o.cache_creation_1h ?? 0,
  };
}

/** The message's `usage`; `outputTokens` differs in `message_start` (1, as upstream). */
function messageUsage(u: Usage, outputTokens: number) {
  return {
    input_tokens: u.input,
    cache_creation_input_tokens: u.cache5m + u.cache1h,
    cache_read_input_tokens: u.cacheRead,
    cache_creation: { ephemeral_5m_input_tokens: u.cache5m, ephemeral_1h_input_tokens: u.cache1h },
    output_tokens: outputTokens,
    service_tier: 'standard',
  };
}

function stopReason(plan: Plan): 'end_turn' | 'max_tokens' | 'tool_use' {
  if (plan.truncated) return 'max_tokens';
  return plan.toolUse ? 'tool_use' : 'end_turn';
}

/** A stable stand-in for the opaque signature upstream puts on thinking blocks. */
const signatureOf = (thinking: string) => Buffer.from(`fake-signature:${thinking.length}`).toString('base64');

function toolInputOf(pieces: string[]): unknown {
  try {
    return JSON.parse(pieces.join('') || '{}');
  } catch {
    return {}; // cut short by max_tokens: not valid JSON
  }
}

function contentBlocks(plan: Plan) {
  const blocks: Record<string, unknown>[] = [];
  if (plan.thinking.length > 0) {
    const thinking = plan.thinking.join('');
    blocks.push({ type: 'thinking', thinking, signature: signatureOf(thinking) });
  }
  if (plan.text.length > 0 || !plan.toolUse) blocks.push({ type: 'text', text: plan.text.join('') });
  if (plan.toolUse && (plan.toolInput.length > 0 || !plan.truncated)) {
    blocks.push({ type: 'tool_use', id: plan.toolUse.id, name: plan.toolUse.name, input: toolInputOf(plan.toolInput) });
  }
  return blocks;
}

function messageObject(body: Record<string, unknown>, plan: Plan, usage: Usage, phase: 'start' | 'final', id = `msg_${randomId(24)}`) {
  const final = phase === 'final';
  return {
    id,
    type: 'message',
    role: 'assistant',
    model: body.model,
    content: final ? contentBlocks(plan) : [],
    stop_reason: final ? stopReason(plan) : null,
    stop_sequence: null,
    usage: messageUsage(usage, final ? usage.output : 1),
  };
}

async function streamMessage(ex: Exchange, body: Record<string, unknown>, reply: ReplyBehaviour, plan: Plan, interrupt: Interrupt | null): Promise<void> {
  const { res } = ex;
  const delay = reply.chunkDelayMs ?? 0;
  const usage = usageOf(reply, plan, body);
  let first = true;
  const send = async (type: string, payload: Record<string, unknown> = {}): Promise<boolean> => {
    if (!first && !(await sleep(delay, ex.signal))) return false;
    first = false;
    return write(res, `event: ${type}\ndata: ${JSON.stringify({ type, ...payload })}\n\n`);
  };

  startStream(res);
  if (!(await send('message_start', { message: messageObject(body, plan, usage, 'start') }))) return;

  // The blocks as they will stream: a start, one delta per piece, extra deltas that carry no token.
  const blocks: { start: object; deltas: object[]; trailer: object[] }[] = [];
  if (plan.thinking.length > 0) {
    blocks.push({
      start: { type: 'thinking', thinking: '', signature: '' },
      deltas: plan.thinking.map((thinking) => ({ type: 'thinking_delta', thinking })),
      trailer: [{ type: 'signature_delta', signature: signatureOf(plan.thinking.join('')) }],
    });
  }
  if (plan.text.length > 0 || !plan.toolUse) {
    blocks.push({ start: { type: 'text', text: '' }, deltas: plan.text.map((text) => ({ type: 'text_delta', text })), trailer: [] });
  }
  if (plan.toolUse && (plan.toolInput.length > 0 || !plan.truncated)) {
    blocks.push({
      start: { type: 'tool_use', id: plan.toolUse.id, name: plan.toolUse.name, input: {} },
      deltas: plan.toolInput.map((partial_json) => ({ type: 'input_json_delta', partial_json })),
      trailer: [],
    });
  }

  let sent = 0;
  const stopHere = async (): Promise<boolean> => {
    if (interrupt === null || sent < interrupt.afterPieces) return false;
    if (interrupt.error === null) drop(ex);
    else if (await send('error', interrupt.error as Record<string, unknown>)) res.end();
    return true;
  };
  for (const [index, block] of blocks.entries()) {
    if (!(await send('content_block_start', { index, content_block: block.start }))) return;
    // Upstream sends a ping right after the first block opens.
    if (index === 0 && !(await send('ping'))) return;
    for (const delta of block.deltas) {
      if (await stopHere()) return;
      if (!(await send('content_block_delta', { index, delta }))) return;
      sent += 1;
      if (ex.recorded) ex.recorded.servedPieces += 1;
      if (reply.pingEvery && sent % reply.pingEvery === 0 && !(await send('ping'))) return;
    }
    for (const delta of block.trailer) if (!(await send('content_block_delta', { index, delta }))) return;
    if (!(await send('content_block_stop', { index }))) return;
  }
  if (interrupt !== null) {
    sent = Math.max(sent, interrupt.afterPieces); // fewer pieces than afterPieces: stop before the end all the same
    await stopHere();
    return;
  }
  const finalUsage = { input_tokens: usage.input, cache_creation_input_tokens: usage.cache5m + usage.cache1h, cache_read_input_tokens: usage.cacheRead, output_tokens: usage.output };
  if (!(await send('message_delta', { delta: { stop_reason: stopReason(plan), stop_sequence: null }, usage: finalUsage }))) return;
  if (!(await send('message_stop'))) return;
  if (!res.destroyed) res.end();
}




const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
function randomId(length: number): string {
  let out = '';
  for (const byte of randomBytes(length)) out += ALPHABET[byte % ALPHABET.length];
  return out;
}

/** Anthropic names the request id header `request-id` (not OpenAI's `x-request-id`). */
const requestId = () => `req_${randomId(24)}`;

function sendJson(res: ServerResponse, status: number, body: unknown, extraHeaders: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), 'request-id': requestId(), ...extraHeaders });
  res.end(payload);
}

function sendError(res: ServerResponse, type: AnthropicErrorType, message?: string): void {
  sendJson(res, ERROR_STATUS[type], anthropicErrorBody(type, message));
}



function startStream(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'request-id': requestId() });
  res.flushHeaders();
}
