import { describe, expect, it } from 'vitest';
import { countPromptWith } from '../prompt-count.js';
import { createTokenCounter, IMAGE_DEFAULT_TOKENS } from '../token-count.js';
import { countOllamaPrompt } from './ollama-prompt.js';

const model = 'llama3.2';
const tokens = createTokenCounter();
const chat = (body: object) => tokens.countChatPrompt(model, body);

describe('an Ollama prompt, counted for admission', () => {
  it('chat: its messages are counted as chat messages (text, thinking, tool calls and tools included)', () => {
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: '', thinking: 'I should call the tool.', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
      { role: 'tool', content: '{"temp": 21}', tool_name: 'get_weather' },
    ];
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
    expect(countOllamaPrompt(tokens, model, { model, messages, tools })).toBe(chat({ messages, tools }));
    // The thinking, the tool call and the tool's name are counted, not dropped.
    const bare = messages.map(({ role, content }) => ({ role, content }));
    expect(countOllamaPrompt(tokens, model, { model, messages })).toBeGreaterThan(countOllamaPrompt(tokens, model, { model, messages: bare }) + 10);
    expect(countOllamaPrompt(tokens, model, { model, messages })).toBeLessThan(countOllamaPrompt(tokens, model, { model, messages, tools }));
  });

  it('images (base64) are one image each, never their base64 read as text', () => {
    const image = 'iVBORw0KGgo'.repeat(10_000);
    const withImage = countOllamaPrompt(tokens, model, { model, messages: [{ role: 'user', content: 'What is this?', images: [image, image] }] });
    const without = countOllamaPrompt(tokens, model, { model, messages: [{ role: 'user', content: 'What is this?' }] });
    expect(withImage - without).toBe(2 * IMAGE_DEFAULT_TOKENS);
  });

  it('generate: system, prompt and suffix as messages, its images, and one token per id of context', () => {
    const body = { model, system: 'Be brief.', prompt: 'Why is the sky blue?', suffix: 'That is why.' };
    expect(countOllamaPrompt(tokens, model, body)).toBe(
      chat({ messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Why is the sky blue?' }, { role: 'user', content: 'That is why.' }] }),
    );
    expect(countOllamaPrompt(tokens, model, { ...body, context: [1, 2, 3, 4, 5] })).toBe(countOllamaPrompt(tokens, model, body) + 5);
    expect(countOllamaPrompt(tokens, model, { ...body, images: ['aGk='] })).toBe(countOllamaPrompt(tokens, model, body) + IMAGE_DEFAULT_TOKENS);
  });

  it('a JSON-schema format counts, as a response format does', () => {
    const body = { model, messages: [{ role: 'user', content: 'hi' }] };
    expect(countOllamaPrompt(tokens, model, { ...body, format: { type: 'object', properties: { answer: { type: 'string' } } } })).toBeGreaterThan(countOllamaPrompt(tokens, model, body));
    // "json" (the plain JSON mode) is no schema.
    expect(countOllamaPrompt(tokens, model, { ...body, format: 'json' })).toBe(countOllamaPrompt(tokens, model, body));
  });

  it('is the prompt kind "ollama" of the counting job (the counting thread counts it the same way)', () => {
    const body = { model, messages: [{ role: 'user', content: 'hi' }] };
    expect(countPromptWith(tokens, { kind: 'ollama', model, body })).toBe(countOllamaPrompt(tokens, model, body));
  });
});
