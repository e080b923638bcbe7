import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { messagesPromptAsChat } from './dialects/anthropic-prompt.js';
import { countOllamaPrompt } from './dialects/ollama-prompt.js';
import { countWithin, type TokenCounter } from './token-count.js';

/** Which API's prompt a body holds (`ollama`: a chat or generate request of Ollama's). */
export type PromptKind = 'chat' | 'responses' | 'embeddings' | 'anthropic' | 'gemini' | 'ollama';

export interface PromptCountJob {
  kind: PromptKind;
  model: string;
  /** The parsed request body (for embeddings, its `input`). */
  body: unknown;
}

/**
 * The most text a prompt may give the tokenizer on the event loop. gpt-tokenizer takes 1–2 s per MB
 * of text it has not seen (BENCHMARKS.md), so 2,048 characters cost at most a few ms; history
 * already counted is free (the per-message cache). A prompt with more new text than that is counted
 * on the counting thread, and no client can hold up the others with what it sends.
 */
export const INLINE_NEW_TEXT_CHARS = 2_048;

export function countPromptWith(tokens: TokenCounter, { kind, model, body }: PromptCountJob): number {
  if (kind === 'chat') return tokens.countChatPrompt(model, body);
  if (kind === 'responses') return tokens.countResponsesInput(model, body);
  if (kind === 'anthropic') {
    const { chat, extraTokens } = messagesPromptAsChat(body);
    return tokens.countChatPrompt(model, chat) + extraTokens;
  }
  if (kind === 'ollama') return countOllamaPrompt(tokens, model, body);
  if (kind === 'gemini') return tokens.countGeminiPrompt(model, body);
  return tokens.countEmbeddingInput(model, body);
}

/**
 * A prompt's tokens: counted in place when that is cheap, else on the counting thread. Both count
 * with the same code, so the number is the same either way.
 */
export function countPrompt(tokens: TokenCounter, job: PromptCountJob): number | Promise<number> {
  return countWithin(INLINE_NEW_TEXT_CHARS, () => countPromptWith(tokens, job)) ?? countingThread.count(tokens, job);
}

/**
 * The worker's script. Beside this module in dist/; when the tests run the TypeScript sources
 * (which a worker cannot load), the build in dist/ that their global setup makes.
 */
function workerScript(): URL {
  const beside = new URL('./prompt-count-worker.js', import.meta.url);
  return existsSync(fileURLToPath(beside)) ? beside : new URL('../../dist/server/proxy/prompt-count-worker.js', import.meta.url);
}

interface Pending {
  job: PromptCountJob;
  /** The caller's counter, should the job have to be counted here after all. */
  tokens: TokenCounter;
  resolve: (tokens: number) => void;
}

/**
 * One worker thread that counts large prompts, started on first use and kept. It holds the process
 * open only while it has a count to answer (an idle one must not keep a finished process alive; a
 * busy one must, or a caller's await would never end). Its own counter caches what it counted, so
 * the next turn of a long conversation finds its history there. Should the worker fail, the jobs it
 * had are counted here instead: a count is never lost, only slower.
 */
class CountingThread {
  private worker: Worker | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;

  count(tokens: TokenCounter, job: PromptCountJob): Promise<number> {
    return new Promise((resolve) => {
      const id = this.nextId++;
      this.pending.set(id, { job, tokens, resolve });
      try {
        const worker = this.started();
        if (this.pending.size === 1) worker.ref();
        worker.postMessage({ id, job, estimates: tokens.estimates });
      } catch {
        this.countHere(id);
      }
    });
  }

  private started(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(workerScript());
    worker.on('message', ({ id, tokens }: { id: number; tokens: number }) => {
      const pending = this.pending.get(id);
      this.pending.delete(id);
      if (this.pending.size === 0) worker.unref();
      pending?.resolve(tokens);
    });
    const failed = (error: unknown) => {
      if (this.worker !== worker) return;
      this.worker = null;
      console.error('[lobe-quota] the prompt-counting thread stopped; counting its prompts on the main thread:', error);
      for (const id of [...this.pending.keys()]) this.countHere(id);
    };
    worker.on('error', failed);
    worker.on('exit', (code) => failed(new Error(`exit code ${code}`)));
    // Idle until count() refs it (after the listeners: adding a 'message' listener refs it again).
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private countHere(id: number): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    pending.resolve(countPromptWith(pending.tokens, pending.job));
  }
}

const countingThread = new CountingThread();
