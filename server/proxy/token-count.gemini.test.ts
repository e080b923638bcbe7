import { describe, expect, it } from 'vitest';
import { countingAsTheFakes } from '../testing/counting-as-the-fakes.js';
import { countPrompt, countPromptWith, INLINE_NEW_TEXT_CHARS } from './prompt-count.js';
import { AUDIO_PART_TOKENS, createTokenCounter, FILE_PART_TOKENS, IMAGE_DEFAULT_TOKENS, REPLY_PRIMING_TOKENS, TOKENS_PER_MESSAGE } from './token-count.js';

const model = 'gemini-2.5-flash';
const user = (...parts: object[]) => ({ role: 'user', parts });

describe('a Gemini prompt, counted for admission', () => {
  // Counting as o200k_base does, so that the structure of the count is what these tests see (the
  // Gemini family's safety factor, applied once per request, has its own tests).
  const counter = countingAsTheFakes();
  const text = (t: string) => counter.countText(model, t);

  it('counts the text of each part, framed per content as a chat message is, and primes the reply', () => {
    const body = { contents: [user({ text: 'Hello there' }), { role: 'model', parts: [{ text: 'Hi!' }] }, user({ text: 'How are you?' })] };
    const expected = REPLY_PRIMING_TOKENS + 3 * TOKENS_PER_MESSAGE + text('user') * 2 + text('model') + text('Hello there') + text('Hi!') + text('How are you?');
    expect(counter.countGeminiPrompt(model, body)).toBe(expected);
  });

  it('counts the system instruction, tools and a response schema besides the contents', () => {
    const base = { contents: [user({ text: 'What is the weather?' })] };
    const tools = [{ functionDeclarations: [{ name: 'get_weather', description: 'Weather of a city', parameters: { type: 'OBJECT', properties: { city: { type: 'STRING' } } } }] }];
    const schema = { type: 'OBJECT', properties: { answer: { type: 'STRING' } } };
    const plain = counter.countGeminiPrompt(model, base);
    expect(counter.countGeminiPrompt(model, { ...base, systemInstruction: { parts: [{ text: 'Be brief.' }] } })).toBe(plain + TOKENS_PER_MESSAGE + text('Be brief.'));
    expect(counter.countGeminiPrompt(model, { ...base, tools })).toBe(plain + text(JSON.stringify(tools)));
    expect(counter.countGeminiPrompt(model, { ...base, generationConfig: { responseSchema: schema } })).toBe(plain + text(JSON.stringify(schema)));
  });

  it('counts function calls and responses by their names and JSON; thought signatures are not text', () => {
    const call = { functionCall: { name: 'get_weather', args: { city: 'Paris' } }, thoughtSignature: 'c2lnbmF0dXJl'.repeat(100) };
    const response = { functionResponse: { name: 'get_weather', response: { temperature: 21 } } };
    const body = { contents: [{ role: 'model', parts: [call] }, user(response)] };
    const calls = 3 + text('get_weather') + text('{"city":"Paris"}') + 3 + text('get_weather') + text('{"temperature":21}');
    expect(counter.countGeminiPrompt(model, body)).toBe(REPLY_PRIMING_TOKENS + 2 * TOKENS_PER_MESSAGE + text('model') + text('user') + calls);
  });

  it('never reads media: an inline image is a fixed estimate by its MIME type, however large its base64', () => {
    const image = { inlineData: { mimeType: 'image/png', data: 'A'.repeat(2_000_000) } };
    const audio = { inlineData: { mimeType: 'audio/mp3', data: 'B'.repeat(1_000) } };
    const pdf = { fileData: { mimeType: 'application/pdf', fileUri: 'https://generativelanguage.googleapis.com/v1beta/files/abc' } };
    const started = performance.now();
    const counted = counter.countGeminiPrompt(model, { contents: [user(image, audio, pdf)] });
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(counted).toBe(REPLY_PRIMING_TOKENS + TOKENS_PER_MESSAGE + text('user') + IMAGE_DEFAULT_TOKENS + AUDIO_PART_TOKENS + FILE_PART_TOKENS);
  });

  it('is what admission counts for the `gemini` prompt kind, and a shape it does not know is counted as its JSON (never throws)', () => {
    const body = { contents: [user({ text: 'hi' })] };
    expect(countPromptWith(counter, { kind: 'gemini', model, body })).toBe(counter.countGeminiPrompt(model, body));
    expect(counter.countGeminiPrompt(model, { contents: 'not a list' })).toBe(REPLY_PRIMING_TOKENS + text('not a list'));
    expect(counter.countGeminiPrompt(model, null)).toBe(0);
    expect(() => counter.countGeminiPrompt(model, { contents: [null, 3, { parts: 'x' }, { parts: [null, { unknown: 1 }] }] })).not.toThrow();
  });

  it('a prompt with more new text than is counted inline goes to the counting thread, and counts the same there', async () => {
    const body = { contents: [user({ text: Array.from({ length: INLINE_NEW_TEXT_CHARS }, (_, i) => `w${i}`).join(' ') })] };
    const counted = countPrompt(createTokenCounter(), { kind: 'gemini', model, body });
    expect(counted).toBeInstanceOf(Promise);
    expect(await counted).toBe(createTokenCounter().countGeminiPrompt(model, body));
  });

  it("reuses the counts of a conversation's earlier contents", () => {
    const fresh = createTokenCounter();
    const history = [user({ text: 'first question' }), { role: 'model', parts: [{ text: 'first answer' }] }];
    fresh.countGeminiPrompt(model, { contents: history });
    const before = fresh.stats();
    fresh.countGeminiPrompt(model, { contents: [...history, user({ text: 'second question' })] });
    const after = fresh.stats();
    expect(after.hits - before.hits).toBe(2);
    expect(after.misses - before.misses).toBe(1);
  });
});
