import type { Assembler } from '../assembled-answer.js';
import { isRecord } from '../../util/is-record.js';
import type { StreamFormat, StreamStep } from './dialect.js';
import { ollamaUsage } from './ollama-common.js';

/** Ollama's two generating APIs: `/api/chat` (`message.*`) and `/api/generate` (`response`, `thinking`). */
export type OllamaApi = 'chat' | 'generate';

/**
 * The generated text of one line (or a whole answer): chat's `message.content`, `message.thinking`
 * and tool calls (their name and arguments, which Ollama sends whole, as an object), or generate's
 * `response` and `thinking`. Ollama reports its counts only on the last line, so output is counted
 * from this as it streams.
 */
export function ollamaOutputText(api: OllamaApi, line: Record<string, unknown>): string[] {
  const pieces: string[] = [];
  const add = (v: unknown) => {
    if (typeof v === 'string' && v !== '') pieces.push(v);
  };
  if (api === 'generate') {
    add(line.response);
    add(line.thinking);
    return pieces;
  }
  const message = line.message;
  if (!isRecord(message)) return pieces;
  add(message.content);
  add(message.thinking);
  if (Array.isArray(message.tool_calls)) {
    for (const call of message.tool_calls) {
      const fn = isRecord(call) && isRecord(call.function) ? call.function : null;
      if (!fn) continue;
      add(fn.name);
      if (fn.arguments !== undefined) add(typeof fn.arguments === 'string' ? fn.arguments : JSON.stringify(fn.arguments));
    }
  }
  return pieces;
}

/** What an Ollama stream remembers while it runs. */
export interface OllamaStreamState {
  api: OllamaApi;
  /** The model the lines name (the one asked upstream until a line says): a cut's last line names it too. */
  model: string;
  /** Whether the upstream wrote an `{"error": …}` line: then its closing the stream needs no word of ours. */
  upstreamFailed: boolean;
}

const PASS_AS_IS: StreamStep = { kind: 'pass', output: [] };

const line = (json: object): string => `${JSON.stringify(json)}\n`;

/** Ollama's timestamps (`created_at`): RFC 3339 in UTC. */
const createdAt = (nowMs: number): string => new Date(nowMs).toISOString();

/**
 * Ollama streams (`application/x-ndjson`): a JSON object a line, ended by the line that says
 * `"done": true` and carries the counts — the terminal event, settled on them. Output lines pass
 * through unchanged once counted. An upstream that fails mid-stream writes `{"error": …}` and
 * closes without a done line: what reached the client is charged, and ollama-js throws the error.
 */
export function ollamaStream(api: OllamaApi): StreamFormat<unknown, OllamaStreamState> {
  return {
    framing: 'ndjson',

    begin: (_request, { model }) => ({ api, model, upstreamFailed: false }),

    classify(state, event) {
      if (event.data === null) return PASS_AS_IS;
      let json: unknown;
      try {
        json = JSON.parse(event.data);
      } catch {
        return PASS_AS_IS;
      }
      if (!isRecord(json)) return PASS_AS_IS;
      if (typeof json.model === 'string') state.model = json.model;
      if (json.error !== undefined) {
        state.upstreamFailed = true;
        return PASS_AS_IS;
      }
      if (json.done === true) return { kind: 'terminal', usage: ollamaUsage(json) };
      return { kind: 'pass', output: ollamaOutputText(api, json) };
    },

    // Ollama ends every answer with its done line: a stream closed without one is unfinished.
    closed: (state, unfinishedMessage) => ({ complete: false, events: state.upstreamFailed ? '' : line({ error: unfinishedMessage }) }),

    // The last line Ollama itself writes when num_predict stops the model: done_reason "length", with the counts charged.
    cutEvents(state, { charged, countedOutputTokens, nowMs }) {
      const counts = charged ? { prompt_eval_count: charged.inputTokens, eval_count: charged.outputTokens } : { eval_count: countedOutputTokens };
      const base = { model: state.model, created_at: createdAt(nowMs) };
      return state.api === 'chat'
        ? line({ ...base, message: { role: 'assistant', content: '' }, done_reason: 'length', done: true, ...counts })
        : line({ ...base, response: '', done: true, done_reason: 'length', ...counts });
    },

    brokeOffEvents: (_state, message) => line({ error: message }),

    assembler: () => new OllamaAnswerAssembler(api),
  };
}

/**
 * A whole Ollama answer from its stream's lines (`proxy.streamWholeAnswers`): the last line, with
 * the text of every line before it joined in (as Ollama answers a request with `"stream": false`).
 */
export class OllamaAnswerAssembler implements Assembler {
  error: Record<string, unknown> | null = null;
  private last: Record<string, unknown> = {};
  private content = '';
  private thinking = '';
  private readonly toolCalls: unknown[] = [];

  constructor(private readonly api: OllamaApi) {}

  add(json: Record<string, unknown>): void {
    if (json.error !== undefined) {
      this.error = { message: typeof json.error === 'string' ? json.error : JSON.stringify(json.error) };
      return;
    }
    const source = this.api === 'chat' ? (isRecord(json.message) ? json.message : {}) : json;
    const text = this.api === 'chat' ? source.content : source.response;
    if (typeof text === 'string') this.content += text;
    if (typeof source.thinking === 'string') this.thinking += source.thinking;
    if (Array.isArray(source.tool_calls)) this.toolCalls.push(...source.tool_calls);
    if (json.done === true) this.last = json;
  }

  answer(): Record<string, unknown> {
    const thinking = this.thinking === '' ? {} : { thinking: this.thinking };
    if (this.api === 'generate') return { ...this.last, response: this.content, ...thinking };
    const message = isRecord(this.last.message) ? this.last.message : {};
    const toolCalls = this.toolCalls.length === 0 ? {} : { tool_calls: this.toolCalls };
    return { ...this.last, message: { ...message, role: 'assistant', content: this.content, ...thinking, ...toolCalls } };
  }
}
