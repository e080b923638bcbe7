import { readFileSync } from 'node:fs';
import type { UpstreamUsage } from '../meter.js';
import { SseSplitter, type SseEvent } from '../sse.js';
import type { StreamFormat, StreamStep } from './dialect.js';

/**
 * Upstream streams recorded from server/testing/fake-openai.ts (the proxy's stand-in for OpenAI),
 * byte for byte, as the proxy asks for them (`stream_options.include_usage` on chat):
 * - chat-content: three " hi" pieces, the finish chunk, the usage chunk, `[DONE]`;
 * - chat-reasoning: two `reasoning_content` pieces before two content pieces;
 * - chat-tool-call: a function call announced in the role chunk, its arguments in two pieces;
 * - chat-no-usage-asked: a stream without `include_usage` (no usage chunk at all);
 * - responses-content / responses-tool-call: the Responses API's numbered events, ending in
 *   `response.completed`;
 * - responses-incomplete: cut by the upstream at max_output_tokens (`response.incomplete`).
 * And from server/testing/fake-anthropic.ts (Anthropic's Messages API):
 * - anthropic-text: three " hi" pieces in one text block;
 * - anthropic-thinking-tool: two thinking pieces and their signature, a text piece, a tool call's
 *   input in two pieces, pings, and cache reads and 5-minute / 1-hour writes;
 * - anthropic-max-tokens: stopped by the upstream at `max_tokens: 2`.
 */
export type Fixture =
  | 'chat-content'
  | 'chat-reasoning'
  | 'chat-tool-call'
  | 'chat-no-usage-asked'
  | 'responses-content'
  | 'responses-tool-call'
  | 'responses-incomplete'
  | 'anthropic-text'
  | 'anthropic-thinking-tool'
  | 'anthropic-max-tokens';

export const fixtureText = (name: Fixture): string => readFileSync(new URL(`./fixtures/${name}.sse`, import.meta.url), 'utf8');

/** A stream's text as the events the relay loop sees. */
export function eventsOf(text: string): SseEvent[] {
  const splitter = new SseSplitter();
  return [...splitter.push(Buffer.from(text)), ...splitter.end()];
}

const usageText = (usage: UpstreamUsage | null | undefined) => (usage ? ` usage ${usage.inputTokens}/${usage.outputTokens}` : '');

/** A step in a line: `pass " hi"`, `hold usage 8/3`, `terminal usage 1/3`, `rewrite`… */
export function describeStep(step: StreamStep): string {
  const output = step.kind === 'pass' ? step.output.map((piece) => ` ${JSON.stringify(piece)}`).join('') : '';
  return `${step.kind}${output}${usageText(step.usage)}`;
}

/**
 * Classifies each event of a stream as the relay loop would, telling the format that each passed
 * event was delivered, and returns the steps in a line each with the state at the end.
 */
export function classifyAll<Request, State>(format: StreamFormat<Request, State>, request: Request, text: string, context = { model: 'gpt-4o-mini', assemble: false }) {
  const state = format.begin(request, context);
  const steps = eventsOf(text).map((event) => {
    const step = format.classify(state, event);
    if (step.kind === 'pass') format.delivered?.(state);
    return describeStep(step);
  });
  return { state, steps };
}
