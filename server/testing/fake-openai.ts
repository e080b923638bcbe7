/**
 * A fake upstream model server that speaks OpenAI's HTTP wire format, for the proxy's tests (there
 * is no network here, so it stands in for api.openai.com). Plain `node:http`, bound to 127.0.0.1 on
 * an OS-chosen port.
 *
 * Endpoints: `POST /v1/chat/completions` (JSON and SSE), `POST /v1/responses` (JSON and SSE with
 * `event:` lines), `POST /v1/embeddings` (float and base64), `GET /v1/models`. Anything else gets
 * OpenAI's 404 `Invalid URL (METHOD /path)` error.
 *
 * Every request to one of those four endpoints takes the next queued {@link Behaviour} (FIFO), or
 * `defaultBehaviour` when the queue is empty. Requests to unknown paths take none.
 */
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { drop, isObject, readRequest, sleep, startFakeServer, write, type DropBehaviour, type Exchange as FakeExchange, type HangBehaviour, type RawBehaviour } from './fake-http.js';

export type { DropBehaviour, HangBehaviour, RawBehaviour };

export interface RecordedRequest {
  method: string;
  /** The path without the query string, e.g. "/v1/chat/completions". */
  path: string;
  /** The request target as sent, query string included. */
  url: string;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** The parsed JSON body, or null when there is none or it is not JSON. */
  body: unknown;
  rawBody: string;
  /** The bearer token of the Authorization header, or null when there is none. */
  apiKey: string | null;
  /**
   * Output pieces (one token each) written to the client so far: a whole answer's once it is sent,
   * a stream's as they go out. What a proxy may charge for this request's output at most, unless
   * the answer reported more.
   */
  servedPieces: number;
}

export interface UsageOverride {
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  reasoning_tokens: number;
}

export interface ReplyBehaviour {
  kind: 'reply';
  /** How many " hi" pieces to produce when `text` is not given (default 20). */
  outputTokens?: number;
  /** Explicit output pieces; each piece counts as one token. */
  text?: string[];
  /** Reasoning pieces produced before the content (chat: streamed as `delta.reasoning_content`). */
  reasoningTokens?: number;
  /** A function call instead of (or after explicit `text`) content; each argument piece is one token. */
  toolCall?: { name: string; arguments: string[] };
  /** Overrides what is reported (responses: input/output tokens and their details). */
  usage?: Partial<UsageOverride>;
  /** Whether usage is reported at all (default true). */
  reportUsage?: boolean;
  /** Produce every piece whatever `max_tokens` / `max_completion_tokens` / `max_output_tokens` say. */
  ignoreMaxTokens?: boolean;
  /** Delay between stream chunks (default 0). */
  chunkDelayMs?: number;
  /** Delay before the status line is sent. */
  firstByteDelayMs?: number;
}

export interface ErrorBehaviour {
  kind: 'error';
  status: number;
  /** Defaults to OpenAI's `{error: {message, type, param: null, code}}` for the status. */
  body?: object;
  headers?: Record<string, string>;
  firstByteDelayMs?: number;
}

/** A dropped stream's pieces are chat content chunks after the role chunk, or Responses `output_text` deltas after the preamble. */
export type Behaviour = ReplyBehaviour | ErrorBehaviour | HangBehaviour | DropBehaviour | RawBehaviour;

export interface FakeOpenAIOptions {
  defaultBehaviour?: Behaviour;
  /** The ids `GET /v1/models` lists. */
  models?: string[];
}

export interface FakeOpenAI {
  /** e.g. "http://127.0.0.1:PORT/v1": what OPENAI_BASE_URL would be. */
  baseUrl: string;
  /** Every request received, in order. */
  requests: RecordedRequest[];
  /** Queue behaviours for the next requests (FIFO); when the queue is empty, `defaultBehaviour` is used. */
  enqueue(...behaviours: Behaviour[]): void;
  defaultBehaviour: Behaviour;
  /** Resolves when `n` requests have been received; rejects after `timeoutMs` (default 5000). */
  waitForRequests(n: number, timeoutMs?: number): Promise<void>;
  /** Number of requests whose client went away before the response finished. */
  aborted: number;
  close(): Promise<void>;
}

export const DEFAULT_MODELS = ['gpt-4o-mini', 'gpt-4o', 'o3-mini', 'text-embedding-3-small'];
/** The default output piece: one token in both cl100k_base and o200k_base. */
export const DEFAULT_PIECE = ' hi';
const DEFAULT_OUTPUT_TOKENS = 20;
const EMBEDDING_DIMENSIONS = 8;
const SYSTEM_FINGERPRINT = 'fp_fake0openai';

/**
 * The prompt token count the fake reports for a request body: `ceil(len(JSON(messages ?? input)) / 4)`.
 * It matches no tokenizer; it is only deterministic.
 */
export function promptTokensOf(body: unknown): number {
  const b = isObject(body) ? body : {};
  const source = b.messages !== undefined ? b.messages : b.input !== undefined ? b.input : '';
  return Math.ceil(JSON.stringify(source).length / 4);
}

/** Polls `condition` every 5 ms until it holds; rejects after `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** OpenAI's error body for a status. */
export function openAIErrorBody(status: number, message?: string): { error: { message: string; type: string; param: string | null; code: string | null } } {
  const known: Record<number, { message: string; type: string; code: string | null }> = {
    400: { message: 'Invalid request.', type: 'invalid_request_error', code: null },
    401: { message: 'Incorrect API key provided.', type: 'invalid_request_error', code: 'invalid_api_key' },
    403: { message: 'You are not allowed to sample from this model.', type: 'invalid_request_error', code: null },
    404: { message: 'The model does not exist or you do not have access to it.', type: 'invalid_request_error', code: 'model_not_found' },
    429: { message: 'Rate limit reached for requests. Please try again in 1s.', type: 'rate_limit_exceeded', code: 'rate_limit_exceeded' },
    500: { message: 'The server had an error while processing your request. Sorry about that!', type: 'server_error', code: null },
    502: { message: 'Bad gateway.', type: 'server_error', code: null },
    503: { message: 'The engine is currently overloaded, please try again later.', type: 'server_error', code: null },
  };
  const entry = known[status] ?? {
    message: `Error ${status}.`,
    type: status >= 500 ? 'server_error' : 'invalid_request_error',
    code: null,
  };
  return { error: { message: message ?? entry.message, type: entry.type, param: null, code: entry.code } };
}

export async function startFakeOpenAI(options: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  const models = options.models ?? DEFAULT_MODELS;
  const server = await startFakeServer<RecordedRequest, Behaviour>({
    defaultBehaviour: options.defaultBehaviour ?? { kind: 'reply' },
    handle: (ex) => handle(ex),
    crashed: (res, error) => sendJson(res, 500, openAIErrorBody(500, `fake-openai crashed: ${String(error)}`)),
  });
  const fake = Object.assign(server, { baseUrl: `${server.origin}/v1` });

  async function handle(ex: Exchange): Promise<void> {
    const { req, res } = ex;
    const { method, url, path, rawBody, body, badJson, headers } = await readRequest(req);
    const bearer = /^Bearer\s+(.+)$/i.exec(headers.authorization ?? '');
    const recorded: RecordedRequest = { method, path, url, headers, body, rawBody, apiKey: bearer?.[1]?.trim() ?? null, servedPieces: 0 };
    ex.recorded = recorded;
    fake.record(recorded);

    const route = routeOf(method, path);
    if (route === null) {
      sendJson(res, 404, { error: { message: `Invalid URL (${method} ${path})`, type: 'invalid_request_error', param: null, code: null } });
      return;
    }
    const behaviour = fake.nextBehaviour();

    switch (behaviour.kind) {
      case 'hang':
        return; // the 'close' handler counts the client going away
      case 'error':
        if (!(await sleep(behaviour.firstByteDelayMs ?? 0, ex.signal))) return;
        sendJson(res, behaviour.status, behaviour.body ?? openAIErrorBody(behaviour.status), behaviour.headers);
        return;
      case 'raw':
        res.writeHead(behaviour.status, { ...behaviour.headers, 'content-length': Buffer.byteLength(behaviour.body) });
        res.end(behaviour.body);
        return;
      case 'drop':
      case 'reply':
        break;
    }

    if (badJson) {
      sendJson(res, 400, {
        error: {
          message: "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
          type: 'invalid_request_error',
          param: null,
          code: null,
        },
      });
      return;
    }
    if (route === 'models') {
      if (behaviour.kind === 'drop') return drop(ex);
      const created = 1_700_000_000;
      sendJson(res, 200, { object: 'list', data: models.map((id) => ({ id, object: 'model', created, owned_by: id.startsWith('text-') ? 'openai-internal' : 'system' })) });
      return;
    }
    const b = isObject(body) ? body : {};
    if (typeof b.model !== 'string' || b.model === '') {
      sendJson(res, 400, { error: { message: 'you must provide a model parameter', type: 'invalid_request_error', param: null, code: null } });
      return;
    }
    if (route === 'chat' && !Array.isArray(b.messages)) {
      sendJson(res, 400, { error: { message: "Missing required parameter: 'messages'.", type: 'invalid_request_error', param: 'messages', code: 'missing_required_parameter' } });
      return;
    }
    if (route === 'embeddings' && b.input === undefined) {
      sendJson(res, 400, { error: { message: "Missing required parameter: 'input'.", type: 'invalid_request_error', param: 'input', code: 'missing_required_parameter' } });
      return;
    }

    if (route === 'embeddings') {
      if (behaviour.kind === 'drop') return drop(ex);
      if (!(await sleep(behaviour.firstByteDelayMs ?? 0, ex.signal))) return;
      sendJson(res, 200, embeddings(b, behaviour));
      return;
    }

    const stream = b.stream === true;
    if (behaviour.kind === 'drop' && !stream) return drop(ex);
    const reply: ReplyBehaviour = behaviour.kind === 'reply' ? behaviour : { kind: 'reply', chunkDelayMs: behaviour.chunkDelayMs ?? 0 };
    const plan = planOutput(route, b, reply);
    const dropAfter = behaviour.kind === 'drop' ? behaviour.afterPieces : null;
    if (!(await sleep(reply.firstByteDelayMs ?? 0, ex.signal))) return;
    if (route === 'chat') {
      if (stream) await streamChat(ex, b, reply, plan, dropAfter);
      else sendJson(res, 200, chatCompletion(b, reply, plan));
    } else {
      if (stream) await streamResponse(ex, b, reply, plan, dropAfter);
      else sendJson(res, 200, responseObject(b, reply, plan, newIds()));
    }
    if (!stream) recorded.servedPieces = plan.reasoning.length + plan.content.length + plan.toolArgs.length;
  }

  return fake;
}

// ---------------------------------------------------------------------------------------------
// Internals

type Exchange = FakeExchange<RecordedRequest>;

type Route = 'chat' | 'responses' | 'embeddings' | 'models';

function routeOf(method: string, path: string): Route | null {
  const p = path.replace(/\/+$/, '');
  if (method === 'POST' && p === '/v1/chat/completions') return 'chat';
  if (method === 'POST' && p === '/v1/responses') return 'responses';
  if (method === 'POST' && p === '/v1/embeddings') return 'embeddings';
  if (method === 'GET' && p === '/v1/models') return 'models';
  return null;
}




const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
function randomId(length: number, alphabet = ALPHABET): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const byte of bytes) out += alphabet[byte % alphabet.length];
  return out;
}
const hexId = (length: number) => randomBytes(Math.ceil(length / 2)).toString('hex').slice(0, length);

function requestId(): string {
  return `req_${hexId(32)}`;
}

function sendJson(res: ServerResponse, status: number, body: unknown, extraHeaders: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
    'x-request-id': requestId(),
    'openai-processing-ms': '1',
    ...extraHeaders,
  });
  res.end(payload);
}



function startStream(res: ServerResponse): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-request-id': requestId(),
    'openai-processing-ms': '1',
  });
  res.flushHeaders();
}

function endStream(res: ServerResponse): void {
  if (!res.destroyed) res.end();
}

interface Plan {
  reasoning: string[];
  content: string[];
  toolArgs: string[];
  toolCall: { name: string; id: string } | null;
  /** True when the output limit cut the output short. */
  truncated: boolean;
  promptTokens: number;
}

function outputLimit(route: Route, body: Record<string, unknown>): number | null {
  const pick = (...names: string[]) => {
    for (const name of names) {
      const value = body[name];
      if (typeof value === 'number' && Number.isFinite(value)) return Math.max(0, Math.floor(value));
    }
    return null;
  };
  return route === 'responses' ? pick('max_output_tokens') : pick('max_completion_tokens', 'max_tokens');
}

function planOutput(route: Route, body: Record<string, unknown>, reply: ReplyBehaviour): Plan {
  const reasoningAll = Array.from({ length: reply.reasoningTokens ?? 0 }, () => DEFAULT_PIECE);
  const contentAll = reply.text ?? (reply.toolCall ? [] : Array.from({ length: reply.outputTokens ?? DEFAULT_OUTPUT_TOKENS }, () => DEFAULT_PIECE));
  const argsAll = reply.toolCall?.arguments ?? [];
  const limit = reply.ignoreMaxTokens ? null : outputLimit(route, body);
  let left = limit ?? Number.POSITIVE_INFINITY;
  const take = (pieces: string[]) => {
    const taken = pieces.slice(0, Math.max(0, Math.min(pieces.length, left)));
    left -= taken.length;
    return taken;
  };
  const reasoning = take(reasoningAll);
  const content = take(contentAll);
  const toolArgs = take(argsAll);
  const total = reasoningAll.length + contentAll.length + argsAll.length;
  return {
    reasoning,
    content,
    toolArgs,
    toolCall: reply.toolCall ? { name: reply.toolCall.name, id: `call_${randomId(24)}` } : null,
    truncated: reasoning.length + content.length + toolArgs.length < total,
    promptTokens: promptTokensOf(body),
  };
}

interface Usage {
  prompt: number;
  completion: number;
  cached: number;
  reasoning: number;
}

function usageOf(reply: ReplyBehaviour, plan: Plan): Usage {
  const o = reply.usage ?? {};
  return {
    prompt: o.prompt_tokens ?? plan.promptTokens,
    completion: o.completion_tokens ?? plan.reasoning.length + plan.content.length + plan.toolArgs.length,
    cached: o.cached_tokens ?? 0,
    reasoning: o.reasoning_tokens ?? plan.reasoning.length,
  };
}

function chatUsage(u: Usage) {
  return {
    prompt_tokens: u.prompt,
    completion_tokens: u.completion,
    total_tokens: u.prompt + u.completion,
    prompt_tokens_details: { cached_tokens: u.cached, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: u.reasoning, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  };
}

function chatFinishReason(plan: Plan): 'stop' | 'length' | 'tool_calls' {
  if (plan.truncated) return 'length';
  return plan.toolCall ? 'tool_calls' : 'stop';
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

function chatCompletion(body: Record<string, unknown>, reply: ReplyBehaviour, plan: Plan) {
  const content = plan.content.join('');
  const message: Record<string, unknown> = {
    role: 'assistant',
    content: plan.toolCall && plan.content.length === 0 ? null : content,
    refusal: null,
    annotations: [],
  };
  if (plan.reasoning.length > 0) message.reasoning_content = plan.reasoning.join('');
  if (plan.toolCall) {
    message.tool_calls = [{ id: plan.toolCall.id, type: 'function', function: { name: plan.toolCall.name, arguments: plan.toolArgs.join('') } }];
  }
  return {
    id: `chatcmpl-${randomId(29)}`,
    object: 'chat.completion',
    created: nowSeconds(),
    model: body.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: chatFinishReason(plan) }],
    ...(reply.reportUsage === false ? {} : { usage: chatUsage(usageOf(reply, plan)) }),
    service_tier: 'default',
    system_fingerprint: SYSTEM_FINGERPRINT,
  };
}

async function streamChat(ex: Exchange, body: Record<string, unknown>, reply: ReplyBehaviour, plan: Plan, dropAfter: number | null): Promise<void> {
  const { res } = ex;
  const options = isObject(body.stream_options) ? body.stream_options : {};
  const includeUsage = options.include_usage === true;
  const obfuscate = options.include_obfuscation !== false;
  const base = { id: `chatcmpl-${randomId(29)}`, object: 'chat.completion.chunk', created: nowSeconds(), model: body.model, service_tier: 'default', system_fingerprint: SYSTEM_FINGERPRINT };
  const delay = reply.chunkDelayMs ?? 0;
  let first = true;
  const send = async (payload: Record<string, unknown>): Promise<boolean> => {
    if (!first && !(await sleep(delay, ex.signal))) return false;
    first = false;
    const chunk = { ...base, ...payload, ...(includeUsage && !('usage' in payload) ? { usage: null } : {}), ...(obfuscate ? { obfuscation: randomId(4 + Math.floor(Math.random() * 12)) } : {}) };
    return write(res, `data: ${JSON.stringify(chunk)}\n\n`);
  };
  const choice = (delta: Record<string, unknown>, finishReason: string | null = null) => ({ choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }] });

  startStream(res);
  const toolOnly = plan.toolCall !== null && plan.content.length === 0 && plan.reasoning.length === 0;
  const toolStart = plan.toolCall ? { index: 0, id: plan.toolCall.id, type: 'function', function: { name: plan.toolCall.name, arguments: '' } } : null;
  // The role chunk; a bare function call announces itself in it, as OpenAI does.
  if (!(await send(choice(toolOnly ? { role: 'assistant', content: null, tool_calls: [toolStart], refusal: null } : { role: 'assistant', content: '', refusal: null })))) return;

  const pieces: Record<string, unknown>[] = [
    ...plan.reasoning.map((piece) => ({ content: null, reasoning_content: piece })),
    ...plan.content.map((piece) => ({ content: piece })),
    ...(plan.toolCall && !toolOnly ? [{ tool_calls: [toolStart] }] : []),
    ...plan.toolArgs.map((piece) => ({ tool_calls: [{ index: 0, function: { arguments: piece } }] })),
  ];
  let sent = 0;
  for (const delta of pieces) {
    if (dropAfter !== null && sent >= dropAfter) return drop(ex);
    if (!(await send(choice(delta)))) return;
    sent += 1;
    const announcement = plan.toolCall !== null && !toolOnly && sent === plan.reasoning.length + plan.content.length;
    if (!announcement && ex.recorded) ex.recorded.servedPieces += 1;
  }
  if (dropAfter !== null) return drop(ex);
  if (!(await send(choice({}, chatFinishReason(plan))))) return;
  if (includeUsage && reply.reportUsage !== false) {
    if (!(await send({ choices: [], usage: chatUsage(usageOf(reply, plan)) }))) return;
  }
  if (!(await write(res, 'data: [DONE]\n\n'))) return;
  endStream(res);
}

interface ResponseIds {
  id: string;
  messageId: string;
  functionId: string;
  createdAt: number;
}

function newIds(): ResponseIds {
  return { id: `resp_${hexId(48)}`, messageId: `msg_${hexId(48)}`, functionId: `fc_${hexId(48)}`, createdAt: nowSeconds() };
}

function responseOutput(plan: Plan, ids: ResponseIds, status: 'completed' | 'incomplete') {
  const output: Record<string, unknown>[] = [];
  // Cut short before any visible output (e.g. while reasoning): OpenAI then has no message item.
  const nothingVisible = plan.truncated && plan.content.length === 0 && plan.toolArgs.length === 0;
  if (plan.content.length > 0 || (!plan.toolCall && !nothingVisible)) output.push(messageItem(ids, plan.content.join(''), status));
  if (plan.toolCall && !nothingVisible) output.push(functionItem(plan, ids, status));
  return output;
}

function messageItem(ids: ResponseIds, text: string, status: string) {
  return { id: ids.messageId, type: 'message', status, content: [outputText(text)], role: 'assistant' };
}

function outputText(text: string) {
  return { type: 'output_text', annotations: [], logprobs: [], text };
}

function functionItem(plan: Plan, ids: ResponseIds, status: string, args = plan.toolArgs.join('')) {
  return { id: ids.functionId, type: 'function_call', status, arguments: args, call_id: plan.toolCall?.id ?? '', name: plan.toolCall?.name ?? '' };
}

function responsesUsage(u: Usage) {
  return {
    input_tokens: u.prompt,
    input_tokens_details: { cached_tokens: u.cached },
    output_tokens: u.completion,
    output_tokens_details: { reasoning_tokens: u.reasoning },
    total_tokens: u.prompt + u.completion,
  };
}

function responseObject(
  body: Record<string, unknown>,
  reply: ReplyBehaviour,
  plan: Plan,
  ids: ResponseIds,
  phase: 'in_progress' | 'final' = 'final',
) {
  const status = phase === 'in_progress' ? 'in_progress' : plan.truncated ? 'incomplete' : 'completed';
  const itemStatus = plan.truncated ? 'incomplete' : 'completed';
  const final = phase === 'final';
  return {
    id: ids.id,
    object: 'response',
    created_at: ids.createdAt,
    status,
    background: false,
    completed_at: final && status === 'completed' ? nowSeconds() : null,
    error: null,
    incomplete_details: final && plan.truncated ? { reason: 'max_output_tokens' } : null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    max_tool_calls: body.max_tool_calls ?? null,
    model: body.model,
    output: final ? responseOutput(plan, ids, itemStatus) : [],
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: body.previous_response_id ?? null,
    prompt_cache_key: body.prompt_cache_key ?? null,
    reasoning: isObject(body.reasoning) ? { effort: null, summary: null, ...body.reasoning } : { effort: null, summary: null },
    safety_identifier: body.safety_identifier ?? null,
    service_tier: 'default',
    store: body.store ?? true,
    temperature: body.temperature ?? 1,
    text: isObject(body.text) ? body.text : { format: { type: 'text' }, verbosity: 'medium' },
    tool_choice: body.tool_choice ?? 'auto',
    tools: body.tools ?? [],
    top_logprobs: body.top_logprobs ?? 0,
    top_p: body.top_p ?? 1,
    truncation: body.truncation ?? 'disabled',
    usage: final && reply.reportUsage !== false ? responsesUsage(usageOf(reply, plan)) : null,
    user: body.user ?? null,
    metadata: body.metadata ?? {},
  };
}

async function streamResponse(ex: Exchange, body: Record<string, unknown>, reply: ReplyBehaviour, plan: Plan, dropAfter: number | null): Promise<void> {
  const { res } = ex;
  const ids = newIds();
  const obfuscate = !(isObject(body.stream_options) && body.stream_options.include_obfuscation === false);
  const delay = reply.chunkDelayMs ?? 0;
  let sequence = 0;
  const send = async (type: string, payload: Record<string, unknown>): Promise<boolean> => {
    if (sequence > 0 && !(await sleep(delay, ex.signal))) return false;
    const data = { type, sequence_number: sequence, ...payload };
    sequence += 1;
    return write(res, `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  const itemStatus = plan.truncated ? 'incomplete' : 'completed';

  startStream(res);
  const inProgress = responseObject(body, reply, plan, ids, 'in_progress');
  if (!(await send('response.created', { response: inProgress }))) return;
  if (!(await send('response.in_progress', { response: inProgress }))) return;

  let sent = 0;
  const dropNow = () => dropAfter !== null && sent >= dropAfter;
  const final = responseObject(body, reply, plan, ids, 'final');
  for (const [outputIndex, item] of final.output.entries()) {
    if (item.type === 'message') {
      const itemId = ids.messageId;
      const text = plan.content.join('');
      if (!(await send('response.output_item.added', { output_index: outputIndex, item: { id: itemId, type: 'message', status: 'in_progress', content: [], role: 'assistant' } }))) return;
      const at = { item_id: itemId, output_index: outputIndex, content_index: 0 };
      if (!(await send('response.content_part.added', { ...at, part: outputText('') }))) return;
      for (const piece of plan.content) {
        if (dropNow()) return drop(ex);
        if (!(await send('response.output_text.delta', { ...at, delta: piece, logprobs: [], ...(obfuscate ? { obfuscation: randomId(4 + Math.floor(Math.random() * 12)) } : {}) }))) return;
        sent += 1;
        if (ex.recorded) ex.recorded.servedPieces += 1;
      }
      if (dropAfter !== null) return drop(ex);
      if (!(await send('response.output_text.done', { ...at, text, logprobs: [] }))) return;
      if (!(await send('response.content_part.done', { ...at, part: outputText(text) }))) return;
      if (!(await send('response.output_item.done', { output_index: outputIndex, item: messageItem(ids, text, itemStatus) }))) return;
    } else {
      const itemId = ids.functionId;
      if (!(await send('response.output_item.added', { output_index: outputIndex, item: functionItem(plan, ids, 'in_progress', '') }))) return;
      for (const piece of plan.toolArgs) {
        if (dropNow()) return drop(ex);
        if (!(await send('response.function_call_arguments.delta', { item_id: itemId, output_index: outputIndex, delta: piece, ...(obfuscate ? { obfuscation: randomId(8) } : {}) }))) return;
        sent += 1;
        if (ex.recorded) ex.recorded.servedPieces += 1;
      }
      if (dropAfter !== null) return drop(ex);
      const args = plan.toolArgs.join('');
      if (!(await send('response.function_call_arguments.done', { item_id: itemId, output_index: outputIndex, name: plan.toolCall?.name ?? '', arguments: args }))) return;
      if (!(await send('response.output_item.done', { output_index: outputIndex, item: functionItem(plan, ids, itemStatus) }))) return;
    }
  }
  if (dropAfter !== null) return drop(ex);
  if (!(await send(plan.truncated ? 'response.incomplete' : 'response.completed', { response: final }))) return;
  endStream(res);
}

/** A deterministic unit-ish vector for a text. */
function vectorOf(text: string): number[] {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  const v: number[] = [];
  for (let i = 0; i < EMBEDDING_DIMENSIONS; i++) {
    h = Math.imul(h ^ (h >>> 15), 2246822507) ^ i;
    v.push(Math.fround(((h >>> 0) / 0xffffffff) * 2 - 1));
  }
  const norm = Math.hypot(...v) || 1;
  return v.map((x) => Math.fround(x / norm));
}

/** The vector the fake returns for one embeddings input (a string, or an array of token ids). */
export function embeddingOf(input: string | number[]): number[] {
  return vectorOf(typeof input === 'string' ? input : JSON.stringify(input));
}

function embeddings(body: Record<string, unknown>, reply: ReplyBehaviour) {
  const input = body.input;
  let inputs: (string | number[])[];
  if (typeof input === 'string') inputs = [input];
  else if (Array.isArray(input) && input.every((x) => typeof x === 'number')) inputs = [input as number[]];
  else if (Array.isArray(input)) inputs = input.map((x) => (typeof x === 'string' || Array.isArray(x) ? (x as string | number[]) : JSON.stringify(x)));
  else inputs = [JSON.stringify(input)];
  const base64 = body.encoding_format === 'base64';
  const prompt = reply.usage?.prompt_tokens ?? promptTokensOf(body);
  return {
    object: 'list',
    data: inputs.map((x, index) => {
      const vector = embeddingOf(x);
      return { object: 'embedding', index, embedding: base64 ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector };
    }),
    model: body.model,
    ...(reply.reportUsage === false ? {} : { usage: { prompt_tokens: prompt, total_tokens: prompt } }),
  };
}
