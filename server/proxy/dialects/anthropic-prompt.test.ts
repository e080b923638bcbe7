import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { countPrompt, countPromptWith, type PromptCountJob } from '../prompt-count.js';
import { createTokenCounter } from '../token-count.js';
import { CLAUDE_DOCUMENT_TOKENS, CLAUDE_TOOL_SYSTEM_PROMPT_TOKENS, CLAUDE_IMAGE_TOKENS, messagesPromptAsChat } from './anthropic-prompt.js';

const MODEL = 'claude-sonnet-4-5';
const job = (body: object): PromptCountJob => ({ kind: 'anthropic', model: MODEL, body: { model: MODEL, max_tokens: 10, ...body } });
const count = (body: object) => countPromptWith(createTokenCounter(), job(body));

describe('Messages prompts, counted as the chat counter counts a prompt', () => {
  it('counts the system prompt, in either form, and every message', () => {
    const messages = [{ role: 'user', content: 'What is the capital of France?' }];
    const bare = count({ messages });
    expect(count({ messages, system: 'You are terse.' })).toBeGreaterThan(bare);
    expect(count({ messages, system: [{ type: 'text', text: 'You are terse.', cache_control: { type: 'ephemeral' } }] })).toBe(count({ messages, system: 'You are terse.' }));
    expect(count({ messages: [...messages, { role: 'assistant', content: 'Paris.' }, { role: 'user', content: 'And of Spain?' }] })).toBeGreaterThan(bare);
  });

  it('counts a tool call by its name and input, a tool result by its content, and tool definitions', () => {
    const call = { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } }] };
    const result = { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: 'Sunny, 24 °C and a light breeze from the west.' }] }] };
    const ask = { role: 'user', content: 'Weather in Paris?' };
    expect(count({ messages: [ask, call] })).toBeGreaterThan(count({ messages: [ask] }));
    expect(count({ messages: [ask, call, result] })).toBeGreaterThan(count({ messages: [ask, call] }) + 10);
    const tools = [{ name: 'get_weather', description: 'The weather in a city.', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }];
    expect(count({ messages: [ask], tools })).toBeGreaterThan(count({ messages: [ask] }) + CLAUDE_TOOL_SYSTEM_PROMPT_TOKENS + 10);
  });

  it("counts each image and document at Claude's most, whatever its bytes, and no redacted thinking", () => {
    const image = { type: 'image', source: { type: 'base64', media_type: 'image/png', data: randomBytes(300_000).toString('base64') } };
    const text = { type: 'text', text: 'What is in this picture?' };
    expect(count({ messages: [{ role: 'user', content: [text, image] }] })).toBe(count({ messages: [{ role: 'user', content: [text] }] }) + CLAUDE_IMAGE_TOKENS);
    const pdf = { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0x' } };
    expect(count({ messages: [{ role: 'user', content: [text, pdf] }] })).toBe(count({ messages: [{ role: 'user', content: [text] }] }) + CLAUDE_DOCUMENT_TOKENS);
    const redacted = { role: 'assistant', content: [{ type: 'redacted_thinking', data: 'EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP' }, { type: 'text', text: 'ok' }] };
    expect(messagesPromptAsChat({ messages: [redacted] }).chat).toEqual({ messages: [{ role: 'assistant', content: [{ type: 'text', text: 'ok' }] }] });
  });

  it('counts a body that is not a Messages request without throwing', () => {
    for (const body of [{ messages: 'nope' }, { messages: [null, 3, { role: 7, content: { weird: true } }] }, { system: 42, messages: [] }]) {
      expect(count(body)).toBeGreaterThanOrEqual(0);
    }
  });

  it('a prompt with much new text is counted off the event loop, to the same number', async () => {
    const novel = randomBytes(150_000).toString('base64');
    const large = job({ system: 'be brief', messages: [{ role: 'user', content: [{ type: 'text', text: novel }] }] });
    const counted = countPrompt(createTokenCounter(), large);
    expect(counted).toBeInstanceOf(Promise);
    expect(await counted).toBe(countPromptWith(createTokenCounter(), large));
  });
});
