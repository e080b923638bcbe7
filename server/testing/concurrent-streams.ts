import OpenAI from 'openai';
import { createTokenCounter } from '../proxy/token-count.js';
import type { FakeOpenAI } from './fake-openai.js';

/** How one of the concurrent streams ended, as its client saw it. */
export interface StreamOutcome {
  /** Content chunks received. */
  pieces: number;
  finish: string | null;
  /** Refused with a 429 before anything was streamed. */
  refused: boolean;
}

/**
 * The concurrent-streams scenario of the proxy's budget guarantee: `count` stories asked at once
 * through the official SDK (`clientFor(i)` picks each one's client, e.g. its instance), each read to
 * its end. The fake answers each with `outputTokens` content pieces and reports the prompt as the
 * proxy counted it at admission, so the ledger and the clients can be compared token for token.
 */
export async function streamStories(fake: FakeOpenAI, clientFor: (i: number) => OpenAI, count: number, outputTokens: number): Promise<StreamOutcome[]> {
  const counter = createTokenCounter();
  const body = (i: number) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: `Tell story number ${i}.` }], stream: true as const });
  for (let i = 0; i < count; i++) {
    fake.enqueue({ kind: 'reply', outputTokens, chunkDelayMs: 1, usage: { prompt_tokens: counter.countChatPrompt('gpt-4o-mini', body(i)) } });
  }
  return Promise.all(
    Array.from({ length: count }, async (_, i): Promise<StreamOutcome> => {
      try {
        const stream = await clientFor(i).chat.completions.create(body(i));
        let pieces = 0;
        let finish: string | null = null;
        for await (const chunk of stream) {
          if (chunk.choices[0]?.delta.content) pieces++;
          finish = chunk.choices[0]?.finish_reason ?? finish;
        }
        return { pieces, finish, refused: false };
      } catch (error) {
        if (error instanceof OpenAI.RateLimitError) return { pieces: 0, finish: null, refused: true };
        throw error;
      }
    }),
  );
}
