import { encode as encodeCl100k } from 'gpt-tokenizer/encoding/cl100k_base';
import { encode as encodeO200k } from 'gpt-tokenizer/encoding/o200k_base';
import fc from 'fast-check';
import { CL100K_TOKEN_SPLIT_REGEX, O200K_TOKEN_SPLIT_REGEX, R50K_TOKEN_SPLIT_REGEX } from 'gpt-tokenizer/encodingParams/constants';
import { describe, expect, it } from 'vitest';
import {
  AUDIO_PART_TOKENS,
  FILE_PART_TOKENS,
  IMAGE_DEFAULT_TOKENS,
  IMAGE_LOW_DETAIL_TOKENS,
  MAX_PRE_TOKEN_CHARS,
  chunksAtPreTokenBoundaries,
  countByPieces,
  countChatPrompt,
  countText,
  createTokenCounter,
  encodingFor,
  isWhitespace,
  splitLongPreTokens,
  startsPreToken,
  tokenCountStats,
  type TokenEncoding,
} from './token-count.js';

/** Reference counts straight from gpt-tokenizer, special-token text treated as plain text. */
const plain = { disallowedSpecial: new Set<string>() };
const ref = (encoding: TokenEncoding, text: string): number =>
  (encoding === 'cl100k_base' ? encodeCl100k(text, plain) : encodeO200k(text, plain)).length;
const o200k = (text: string): number => ref('o200k_base', text);

describe('encodingFor', () => {
  it.each<[string, TokenEncoding]>([
    ['gpt-4o', 'o200k_base'],
    ['gpt-4o-mini-2024-07-18', 'o200k_base'],
    ['chatgpt-4o-latest', 'o200k_base'],
    ['gpt-4.1-nano', 'o200k_base'],
    ['gpt-4.5-preview', 'o200k_base'],
    ['gpt-5', 'o200k_base'],
    ['gpt-5.9-future', 'o200k_base'],
    ['o1', 'o200k_base'],
    ['o3-mini-2025-01-31', 'o200k_base'],
    ['o4-mini', 'o200k_base'],
    ['gpt-oss-120b', 'o200k_base'], // o200k_harmony in gpt-tokenizer: same vocabulary
    ['gpt-4', 'cl100k_base'],
    ['gpt-4-0613', 'cl100k_base'],
    ['gpt-4-32k-0314', 'cl100k_base'],
    ['gpt-4-turbo-2024-04-09', 'cl100k_base'],
    ['gpt-3.5-turbo', 'cl100k_base'],
    ['gpt-3.5-turbo-0301', 'cl100k_base'],
    ['gpt-35-turbo', 'cl100k_base'], // Azure's spelling
    ['text-embedding-3-small', 'cl100k_base'],
    ['text-embedding-3-large', 'cl100k_base'],
    ['text-embedding-ada-002', 'cl100k_base'],
    ['ft:gpt-3.5-turbo-0125:acme::abc123', 'cl100k_base'],
    ['GPT-4', 'cl100k_base'],
    ['text-davinci-003', 'p50k_base'], // from gpt-tokenizer's own map
    ['davinci', 'r50k_base'],
    ['deepseek-chat', 'o200k_base'], // unknown: the default, an estimate
    ['', 'o200k_base'],
    ['constructor', 'o200k_base'],
  ])('%s → %s', (model, encoding) => {
    expect(encodingFor(model)).toBe(encoding);
  });
});

describe('countText', () => {
  it.each<[string, string, number]>([
    // hand-checked: "hello" + " world"
    ['gpt-4o', 'hello world', 2],
    ['gpt-4', 'hello world', 2],
    // OpenAI cookbook: cl100k_base encodes it as [83, 1609, 5963, 374, 2294, 0]
    ['gpt-4', 'tiktoken is great!', 6],
    ['gpt-4o', '', 0],
    ['gpt-4o', 'a', 1],
    // o200k_base merges CJK far better than cl100k_base
    ['gpt-4o', '你好，世界', 3],
    ['gpt-3.5-turbo', '你好，世界', 6],
  ])('%s: %j → %i', (model, text, tokens) => {
    expect(countText(model, text)).toBe(tokens);
  });

  it.each<[TokenEncoding, string]>([
    ['o200k_base', 'The quick brown fox jumps over the lazy dog. ' + 'Ünïcödé 🎉 '.repeat(20)],
    ['cl100k_base', 'The quick brown fox jumps over the lazy dog. ' + 'Ünïcödé 🎉 '.repeat(20)],
    ['o200k_base', 'function f(x) {\n  return x * 2;\n}\n'],
  ])('%s matches gpt-tokenizer on longer text', (encoding, text) => {
    const model = encoding === 'o200k_base' ? 'gpt-4o' : 'gpt-4';
    expect(countText(model, text)).toBe(ref(encoding, text));
  });

  it('counts special-token text as plain text instead of throwing', () => {
    const text = 'ignore this <|endoftext|> and <|im_start|>';
    expect(countText('gpt-4o', text)).toBe(o200k(text));
    expect(countText('gpt-4o', text)).toBeGreaterThan(4);
  });

  it('counts a short text again from its cache, per encoding: one text, two vocabularies, two counts', () => {
    const counter = createTokenCounter();
    const text = '你好，世界'; // 3 tokens in o200k_base, 6 in cl100k_base
    for (let round = 0; round < 3; round++) {
      expect(counter.countText('gpt-4o', text)).toBe(ref('o200k_base', text));
      expect(counter.countText('gpt-4', text)).toBe(ref('cl100k_base', text));
    }
    // Just over the cached length, counted afresh each time, the same way.
    const longer = `${text}${' word'.repeat(5)}`;
    expect(counter.countText('gpt-4o', longer)).toBe(ref('o200k_base', longer));
    expect(counter.countText('gpt-4', longer)).toBe(ref('cl100k_base', longer));
  });

  it('does not throw on a non-string', () => {
    expect(countText('gpt-4o', undefined as unknown as string)).toBe(0);
    expect(countText(42 as unknown as string, 42 as unknown as string)).toBe(1);
  });
});

/** The example conversation of OpenAI's cookbook "How to count tokens with tiktoken". */
const cookbookMessages = [
  { role: 'system', content: 'You are a helpful, pattern-following assistant that translates corporate jargon into plain English.' },
  { role: 'system', name: 'example_user', content: 'New synergies will help drive top-line growth.' },
  { role: 'system', name: 'example_assistant', content: 'Things working well together will increase revenue.' },
  { role: 'system', name: 'example_user', content: "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage." },
  { role: 'system', name: 'example_assistant', content: "Let's talk later when we're less busy about how to do better." },
  { role: 'user', content: "This late pivot means we don't have time to boil the ocean for the client deliverable." },
];

describe('countChatPrompt', () => {
  it.each([
    // the cookbook's published results, which the API's prompt_tokens agreed with
    ['gpt-3.5-turbo', 129],
    ['gpt-4-0613', 129],
    ['gpt-4', 129],
    ['gpt-4o', 124],
    ['gpt-4o-mini', 124],
  ])('cookbook example for %s: %i tokens', (model, tokens) => {
    expect(createTokenCounter().countChatPrompt(model, { model, messages: cookbookMessages })).toBe(tokens);
  });

  // "hello world" = 2, "user" / "assistant" / "system" / "tool" = 1 each in both encodings
  it.each<[string, unknown, number]>([
    ['no messages: only the reply priming', { messages: [] }, 3],
    ['one message: 3 framing + role + content + 3 priming', { messages: [{ role: 'user', content: 'hello world' }] }, 3 + 1 + 2 + 3],
    [
      'a name costs its tokens + 1',
      { messages: [{ role: 'user', name: 'bob', content: 'hello world' }] },
      3 + 1 + 2 + o200k('bob') + 1 + 3,
    ],
    [
      'two messages',
      { messages: [{ role: 'system', content: 'hello world' }, { role: 'user', content: 'hello world' }] },
      2 * (3 + 1 + 2) + 3,
    ],
    ['text parts count their text', { messages: [{ role: 'user', content: [{ type: 'text', text: 'hello world' }] }] }, 9],
    [
      'a low-detail image is 85 tokens',
      { messages: [{ role: 'user', content: [{ type: 'text', text: 'hello world' }, { type: 'image_url', image_url: { url: 'https://x/y.png', detail: 'low' } }] }] },
      9 + IMAGE_LOW_DETAIL_TOKENS,
    ],
    [
      'a high-detail image is the fixed 765',
      { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA', detail: 'high' } }] }] },
      3 + 1 + IMAGE_DEFAULT_TOKENS + 3,
    ],
    [
      'an image without detail (auto) is the fixed 765',
      { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://x/y.png' } }] }] },
      3 + 1 + IMAGE_DEFAULT_TOKENS + 3,
    ],
    [
      'audio and file parts are fixed estimates',
      { messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } }, { type: 'file', file: { file_id: 'file-1' } }] }] },
      3 + 1 + AUDIO_PART_TOKENS + FILE_PART_TOKENS + 3,
    ],
    [
      'assistant tool calls: 3 + name + arguments each',
      {
        messages: [
          {
            role: 'assistant',
            content: null,
            tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }],
          },
        ],
      },
      3 + 1 + (3 + 2 + 5) + 3,
    ],
    [
      'a tool message counts its content, not its tool_call_id',
      { messages: [{ role: 'tool', tool_call_id: 'call_abcdefghijklmnop', content: 'hello world' }] },
      3 + 1 + 2 + 3,
    ],
    [
      'legacy function_call in an assistant message',
      { messages: [{ role: 'assistant', content: null, function_call: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      3 + 1 + (3 + 2 + 5) + 3,
    ],
  ])('%s', (_label, body, tokens) => {
    expect(createTokenCounter().countChatPrompt('gpt-4o', body)).toBe(tokens);
  });

  const tools = [
    {
      type: 'function',
      function: {
        name: 'get_weather',
        description: 'Look up the weather for a city.',
        parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
      },
    },
  ];
  const schema = { name: 'answer', strict: true, schema: { type: 'object', properties: { answer: { type: 'string' } } } };
  const hello = { role: 'user', content: 'hello world' };

  it.each<[string, Record<string, unknown>, number]>([
    ['tools count their JSON text', { tools }, o200k(JSON.stringify(tools))],
    ['legacy functions count their JSON text', { functions: [tools[0]!.function] }, o200k(JSON.stringify([tools[0]!.function]))],
    ['a json_schema response_format counts its schema JSON', { response_format: { type: 'json_schema', json_schema: schema } }, o200k(JSON.stringify(schema))],
    ['json_object / text response formats are free', { response_format: { type: 'json_object' } }, 0],
    [
      'a named tool_choice counts its JSON',
      { tool_choice: { type: 'function', function: { name: 'get_weather' } } },
      o200k(JSON.stringify({ type: 'function', function: { name: 'get_weather' } })),
    ],
  ])('%s', (_label, extra, extraTokens) => {
    const counter = createTokenCounter();
    expect(counter.countChatPrompt('gpt-4o', { messages: [hello], ...extra })).toBe(9 + extraTokens);
  });

  it('counts with the model’s encoding', () => {
    const text = '你好，世界 — 今天天气怎么样？';
    const body = { messages: [{ role: 'user', content: text }] };
    const counter = createTokenCounter();
    expect(counter.countChatPrompt('gpt-4o', body)).toBe(3 + 1 + ref('o200k_base', text) + 3);
    expect(counter.countChatPrompt('gpt-4', body)).toBe(3 + 1 + ref('cl100k_base', text) + 3);
  });
});

describe('the per-message cache', () => {
  const history = [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'What is the capital of France?' },
    { role: 'assistant', content: 'Paris.' },
    { role: 'user', content: [{ type: 'text', text: 'And this?' }, { type: 'image_url', image_url: { url: 'https://x/y.png' } }] },
    { role: 'assistant', content: 'The Eiffel Tower.' },
  ];
  const next = { role: 'user', content: 'How tall is it?' };

  it('counts the repeated history of the next turn from the cache: only the new message misses', () => {
    const counter = createTokenCounter();
    const first = counter.countChatPrompt('gpt-4o', { messages: history });
    expect(counter.stats()).toEqual({ hits: 0, misses: 5, size: 5 });
    const second = counter.countChatPrompt('gpt-4o', { messages: [...history, next] });
    expect(counter.stats()).toEqual({ hits: 5, misses: 6, size: 6 });
    expect(second - first).toBe(3 + 1 + o200k('How tall is it?'));
    // and the cached result equals a cold count
    expect(createTokenCounter().countChatPrompt('gpt-4o', { messages: [...history, next] })).toBe(second);
  });

  it('caches tool definitions too', () => {
    const counter = createTokenCounter();
    const tools = [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }];
    counter.countChatPrompt('gpt-4o', { messages: history, tools });
    const before = counter.stats();
    counter.countChatPrompt('gpt-4o', { messages: [...history, next], tools });
    expect(counter.stats().misses - before.misses).toBe(1);
    expect(counter.stats().hits - before.hits).toBe(6);
  });

  it('keys on the encoding: the same history under another encoding is counted again', () => {
    const counter = createTokenCounter();
    counter.countChatPrompt('gpt-4o', { messages: history });
    counter.countChatPrompt('gpt-4o-mini', { messages: history }); // same encoding
    expect(counter.stats()).toMatchObject({ hits: 5, misses: 5 });
    counter.countChatPrompt('gpt-4', { messages: history });
    expect(counter.stats()).toMatchObject({ hits: 5, misses: 10 });
  });

  it('is bounded, dropping the least recently used', () => {
    const counter = createTokenCounter({ cacheSize: 2 });
    const a = { role: 'user', content: 'a' };
    const b = { role: 'user', content: 'b' };
    const c = { role: 'user', content: 'c' };
    counter.countChatPrompt('gpt-4o', { messages: [a, b] }); // miss a, miss b
    counter.countChatPrompt('gpt-4o', { messages: [a] }); // hit a (now most recent)
    counter.countChatPrompt('gpt-4o', { messages: [c] }); // miss c, evicts b
    expect(counter.stats()).toEqual({ hits: 1, misses: 3, size: 2 });
    counter.countChatPrompt('gpt-4o', { messages: [a, b] }); // hit a, miss b
    expect(counter.stats()).toEqual({ hits: 2, misses: 4, size: 2 });
  });

  it('works with no cache at all', () => {
    const counter = createTokenCounter({ cacheSize: 0 });
    expect(counter.countChatPrompt('gpt-4o', { messages: history })).toBe(createTokenCounter().countChatPrompt('gpt-4o', { messages: history }));
    counter.countChatPrompt('gpt-4o', { messages: history });
    expect(counter.stats()).toEqual({ hits: 0, misses: 10, size: 0 });
  });

  it('the shared counter reports its stats too', () => {
    const before = tokenCountStats();
    countChatPrompt('gpt-4o', { messages: [{ role: 'user', content: 'shared counter probe' }] });
    countChatPrompt('gpt-4o', { messages: [{ role: 'user', content: 'shared counter probe' }] });
    const after = tokenCountStats();
    expect(after.hits - before.hits).toBe(1);
    expect(after.misses - before.misses).toBe(1);
  });
});

describe('countResponsesInput', () => {
  // "hello world" = 2; "user" / "developer" = 1
  it.each<[string, unknown, number]>([
    ['a string input is one user message', { input: 'hello world' }, 3 + 1 + 2 + 3],
    ['instructions are one more (developer) message', { instructions: 'hello world', input: 'hello world' }, 2 * (3 + 1 + 2) + 3],
    ['a message item with string content', { input: [{ role: 'user', content: 'hello world' }] }, 9],
    ['a typed message item', { input: [{ type: 'message', role: 'user', content: 'hello world', id: 'msg_1', status: 'completed' }] }, 9],
    [
      'input_text, input_image (low and auto) and input_file parts',
      {
        input: [
          {
            role: 'user',
            content: [
              { type: 'input_text', text: 'hello world' },
              { type: 'input_image', image_url: 'https://x/y.png', detail: 'low' },
              { type: 'input_image', file_id: 'file-1', detail: 'auto' },
              { type: 'input_file', file_id: 'file-2' },
            ],
          },
        ],
      },
      9 + IMAGE_LOW_DETAIL_TOKENS + IMAGE_DEFAULT_TOKENS + FILE_PART_TOKENS,
    ],
    [
      'assistant output_text history (its text only)',
      { input: [{ type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'hello world', annotations: [] }] }] },
      3 + 1 + 2 + 3,
    ],
    [
      'a function call and its output',
      {
        input: [
          { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
          { type: 'function_call_output', call_id: 'call_1', output: 'hello world' },
        ],
      },
      3 + 2 + 5 + (3 + 2) + 3,
    ],
    [
      'a reasoning item counts its summary only',
      { input: [{ type: 'reasoning', id: 'rs_1', summary: [{ type: 'summary_text', text: 'hello world' }], encrypted_content: 'x'.repeat(5000) }] },
      2 + 3,
    ],
    ['tools count their JSON', { input: 'hello world', tools: [{ type: 'function', name: 'f' }] }, 9 + o200k('[{"type":"function","name":"f"}]')],
    [
      'a json_schema text format counts its JSON',
      { input: 'hello world', text: { format: { type: 'json_schema', name: 'a', schema: { type: 'object' } } } },
      9 + o200k('{"type":"json_schema","name":"a","schema":{"type":"object"}}'),
    ],
    ['an unknown item counts its JSON', { input: [{ type: 'item_reference', id: 'msg_1' }] }, o200k('{"type":"item_reference","id":"msg_1"}') + 3],
  ])('%s', (_label, body, tokens) => {
    expect(createTokenCounter().countResponsesInput('gpt-5', body)).toBe(tokens);
  });

  it('caches items across turns', () => {
    const counter = createTokenCounter();
    const items = [
      { role: 'user', content: 'first question' },
      { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'first answer' }] },
    ];
    counter.countResponsesInput('gpt-5', { instructions: 'Be brief.', input: items });
    expect(counter.stats()).toMatchObject({ hits: 0, misses: 3 });
    counter.countResponsesInput('gpt-5', { instructions: 'Be brief.', input: [...items, { role: 'user', content: 'second' }] });
    expect(counter.stats()).toMatchObject({ hits: 3, misses: 4 });
  });
});

describe('countEmbeddingInput', () => {
  const counter = createTokenCounter();
  it.each<[string, unknown, number]>([
    ['a string', 'hello world', 2],
    ['strings', ['hello world', 'tiktoken is great!'], 8],
    ['token ids', [15339, 1917, 0], 3],
    ['arrays of token ids', [[1, 2, 3], [4, 5]], 5],
    ['an empty array', [], 0],
    ['an empty string', '', 0],
  ])('%s', (_label, input, tokens) => {
    expect(counter.countEmbeddingInput('text-embedding-3-small', input)).toBe(tokens);
  });
});

describe('garbage in, a count out', () => {
  const garbage: unknown[] = [
    undefined,
    null,
    42,
    'just a string',
    [],
    [1, 'two', null],
    {},
    { messages: 'not an array' },
    { messages: [null, 7, 'hi', [], { role: 5, content: { weird: true } }, { content: [null, 3, 'part', { type: 'image_url' }, { type: 'mystery', x: 1 }] }] },
    { messages: [{ role: 'assistant', tool_calls: 'nope', function_call: 'nope' }, { role: 'assistant', tool_calls: [null, { function: null }, {}] }] },
    { messages: [{ role: 'user', content: 'x', constructor: 'y', __proto__: { polluted: true } }] },
    JSON.parse('{"messages":[{"role":"user","content":"hi","__proto__":{"x":1}}]}'),
    { tools: 'x', functions: 3, response_format: { type: 'json_schema' }, tool_choice: 'auto' },
    { input: { not: 'an array' }, instructions: 5, tools: null, text: { format: 'json' } },
    { input: [null, 1, 'str', { type: 'reasoning' }, { type: 'function_call_output', output: [{ type: 'input_text', text: 'x' }] }, { role: 'user', content: null }] },
    { input: '<|endoftext|><|im_start|>system' },
    { messages: [{ role: 'user', content: '\ud800 lone surrogate \udfff' }] },
    [[['deep']], { a: { b: { c: [] } } }],
    { big: 10n as unknown },
  ];

  it.each(garbage.map((body, i) => [i, body] as const))('#%i never throws and gives a whole count', (_i, body) => {
    const counter = createTokenCounter();
    for (const model of ['gpt-4o', 'gpt-4', 'unknown-model', undefined as unknown as string, {} as unknown as string]) {
      for (const count of [
        counter.countChatPrompt(model, body),
        counter.countResponsesInput(model, body),
        counter.countEmbeddingInput(model, body),
        counter.countText(model, body as string),
      ]) {
        expect(Number.isInteger(count)).toBe(true);
        expect(count).toBeGreaterThanOrEqual(0);
      }
    }
  });

  it('a circular structure (not from JSON, but still) does not throw', () => {
    const message: Record<string, unknown> = { role: 'user', content: 'x' };
    message.self = message;
    expect(() => createTokenCounter().countChatPrompt('gpt-4o', { messages: [message] })).not.toThrow();
  });
});

// ---------------------------------------------------------------------------------------------
// Long pre-tokens: gpt-tokenizer merges one pre-token in time that grows with the square of its
// length ("A" × 300,000 took 52 s). These tests are not timed: they check that the encoder is never
// handed a pre-token longer than MAX_PRE_TOKEN_CHARS (which bounds the work per character) with the
// encoders' own regexes, and the counts.

/** The three pre-tokenizers: o200k_base, cl100k_base, and r50k_base's (which p50k_base shares). */
const splitRegexes = { o200k_base: O200K_TOKEN_SPLIT_REGEX, cl100k_base: CL100K_TOKEN_SPLIT_REGEX, r50k_base: R50K_TOKEN_SPLIT_REGEX };

/** The longest pre-token of `text` under every encoding, in UTF-16 code units. */
function longestPreToken(text: string): number {
  let longest = 0;
  for (const regex of Object.values(splitRegexes)) {
    for (const [preToken] of text.matchAll(regex)) longest = Math.max(longest, preToken.length);
  }
  return longest;
}

/** `symbols` symbols drawn from `alphabet` by a seeded generator: the same text on every run. */
function randomText(alphabet: readonly string[], symbols: number, seed = 1): string {
  let state = seed;
  const drawn: string[] = [];
  for (let i = 0; i < symbols; i++) {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    drawn.push(alphabet[state % alphabet.length] ?? '');
  }
  return drawn.join('');
}

const chars = (text: string): string[] => [...text];
const codePoints = (first: number, count: number): string[] => Array.from({ length: count }, (_, i) => String.fromCodePoint(first + i));
const LOWERCASE = chars('abcdefghijklmnopqrstuvwxyz');
const BASE64 = chars('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');
const PUNCTUATION = chars('!"#$%&()*+,-.:;<=>?@[]^_`{|}~');
const CJK = codePoints(0x4e00, 3_000);
const EMOJI = codePoints(0x1f600, 80);

/** Texts of about `size` code units holding one long pre-token, as a client could send them. */
const pathological: [string, (size: number) => string][] = [
  ['one character ("A")', (size) => 'A'.repeat(size)],
  ['random lowercase letters, no space', (size) => randomText(LOWERCASE, size)],
  ['base64, as in a pasted data URL', (size) => `data:image/png;base64,${randomText(BASE64, size)}`],
  ['one punctuation character ("!")', (size) => '!'.repeat(size)],
  ['random punctuation', (size) => randomText(PUNCTUATION, size)],
  ['random digits', (size) => randomText(chars('0123456789'), size)],
  ['spaces', (size) => `x${' '.repeat(size)}x`],
  ['newlines', (size) => `x${'\n'.repeat(size)}x`],
  ['random whitespace (space, tab, newline)', (size) => `x${randomText(chars(' \t\n'), size)}x`],
  ['punctuation, then line breaks and slashes (one o200k_base pre-token)', (size) => `!${randomText(chars('\n/'), size)}`],
  ['CJK without punctuation', (size) => randomText(CJK, size)],
  ['random emoji (surrogate pairs)', (size) => randomText(EMOJI, size / 2)],
  ['one emoji repeated', (size) => '😀'.repeat(size / 2)],
];

describe('isWhitespace', () => {
  it('agrees with \\s (as the encoders\' regexes read it) on every UTF-16 code unit', () => {
    const disagreements: number[] = [];
    for (let code = 0; code <= 0xffff; code++) {
      if (isWhitespace(code) !== /\s/u.test(String.fromCharCode(code))) disagreements.push(code);
    }
    expect(disagreements).toEqual([]);
  });
});

/** Symbols whose runs and mixes make the pre-tokenizers' corner cases. */
const awkward = fc.constantFrom('a', 'Z', '7', '½', 'ʰ', ' ', '\n', '\r', '\t', '\v', '\u0085', '\u00a0', '!', ',', '/', "'", '\u0301', '你', '，', '😀', '\ud83d', '\ude00', '\u3000');
const awkwardText = fc.array(fc.tuple(awkward, fc.integer({ min: 1, max: 30 })).map(([s, times]) => s.repeat(times)), { maxLength: 12 }).map((runs) => runs.join(''));

describe('startsPreToken', () => {
  it.each<[string, string, number, boolean]>([
    ['after a word, at punctuation', 'abc,def', 3, true],
    ['after a number, at punctuation', '123,4', 3, true],
    ['after a word, at a space', 'abc def', 3, true],
    ['after punctuation, at a space', 'a! b', 2, true],
    ['after a word, at a line break', 'abc\ndef', 3, true],
    ['after a word, at a number', 'abc123', 3, true],
    ['after a number, at a word', '123abc', 3, true],
    ['not after punctuation at a line break (punctuation takes its line breaks)', 'a!\nb', 2, false],
    ['not within a word', 'abcdef', 3, false],
    ["not at an apostrophe (o200k_base's 's, 't, …)", "it's", 2, false],
    ['not at a combining mark', 'e\u0301', 1, false],
    ['not after a combining mark (cl100k_base takes it with the punctuation)', 'e\u0301,', 2, false],
    ['not at a word after punctuation (the punctuation starts the pre-token: ",b")', 'a,b', 2, false],
    ['not within whitespace', 'a   b', 2, false],
    ['not between the halves of a surrogate pair', '😀😀', 1, false],
    ['after a CJK character, at CJK punctuation', '你好，世界', 2, true],
  ])('%s', (_label, text, i, expected) => {
    expect(startsPreToken(text, i)).toBe(expected);
  });

  it('is right for every encoding: each encoder regex starts a pre-token wherever it says', () => {
    fc.assert(
      fc.property(awkwardText, (text) => {
        for (const regex of Object.values(splitRegexes)) {
          const starts = new Set([...text.matchAll(regex)].map((match) => match.index));
          for (let i = 1; i < text.length; i++) {
            if (startsPreToken(text, i)) expect(starts.has(i)).toBe(true);
          }
        }
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('splitLongPreTokens', () => {
  // A limit of 8 keeps the table readable; MAX_PRE_TOKEN_CHARS works the same way.
  it.each<[string, string, string[]]>([
    ['ordinary text is one piece', 'hello world, how are you?', ['hello world, how are you?']],
    ['an empty text', '', ['']],
    ['a run of exactly the limit is not cut', 'AAAAAAAA', ['AAAAAAAA']],
    ['one more character is', 'AAAAAAAAA', ['AAAAAAAA', 'A']],
    ['a long run: in pieces of the limit', 'A'.repeat(20), ['AAAAAAAA', 'AAAAAAAA', 'AAAA']],
    ['counted from where its pre-token starts (the space before a word)', 'hi AAAAAAAAAA yo', ['hi AAAAAAA', 'AAA yo']],
    ['a run of spaces', `a${' '.repeat(10)}b`, [`a${' '.repeat(8)}`, '  b']],
    ['a run of line breaks', '\n'.repeat(17), ['\n'.repeat(8), '\n'.repeat(8), '\n']],
    ['punctuation with the line breaks and slashes o200k_base takes with it', '!\n/\n/\n/\n/\n/\n/', ['!\n/\n/\n/\n', '/\n/\n/']],
    ['never between the halves of a surrogate pair', '.😀😀😀😀😀', ['.😀😀😀', '😀😀']],
    ['emoji between spaces are short pre-tokens', '😀 😀 😀 😀 😀 😀', ['😀 😀 😀 😀 😀 😀']],
    ['CJK with punctuation is not cut', '你好世界你好，世界你好世界，你好', ['你好世界你好，世界你好世界，你好']],
    ['CJK without punctuation is', '你好世界你好世界你好', ['你好世界你好世界', '你好']],
    ['a URL is short pre-tokens', 'https://a.io/b/c?d=1', ['https://a.io/b/c?d=1']],
    ['JSON is short pre-tokens', '{"a":"b","c":[1,2],"d":null}', ['{"a":"b","c":[1,2],"d":null}']],
    ['digits', '123456789012', ['12345678', '9012']],
  ])('%s', (_label, text, pieces) => {
    expect(splitLongPreTokens(text, 8)).toEqual(pieces);
  });

  it('hands back the text itself when there is nothing to cut', () => {
    const text = 'The quick brown fox jumps over the lazy dog. '.repeat(1_000);
    expect(splitLongPreTokens(text)[0]).toBe(text);
  });

  it('on any text and limit: pieces join back into the text, hold no pre-token over the limit under any encoding, split no surrogate pair, and all but the last are at least the limit less one long', () => {
    fc.assert(
      fc.property(awkwardText, fc.integer({ min: 2, max: 20 }), (text, limit) => {
        const pieces = splitLongPreTokens(text, limit);
        expect(pieces.join('')).toBe(text);
        pieces.forEach((piece, i) => {
          expect(longestPreToken(piece)).toBeLessThanOrEqual(limit);
          const next = pieces[i + 1];
          if (next === undefined) return;
          expect(piece.length).toBeGreaterThanOrEqual(limit - 1);
          const splitsPair = /[\ud800-\udbff]$/.test(piece) && /^[\udc00-\udfff]/.test(next);
          expect(splitsPair).toBe(false);
        });
      }),
      { numRuns: 1_000 },
    );
  });
});

describe('counting long pre-tokens', () => {
  it.each(pathological)('1 MB of %s: the encoder is never handed a pre-token longer than MAX_PRE_TOKEN_CHARS', (_label, make) => {
    const text = make(1_000_000);
    const handed: string[] = [];
    const tokens = countByPieces(text, (piece) => {
      handed.push(piece);
      return 1;
    });
    const pieces = splitLongPreTokens(text);
    expect(pieces.join('')).toBe(text);
    expect(Math.max(...handed.map(longestPreToken))).toBeLessThanOrEqual(MAX_PRE_TOKEN_CHARS);
    // Linear: a piece is at least the limit less one long, so calls grow with the text's length.
    expect(pieces.length).toBeLessThanOrEqual(1 + text.length / (MAX_PRE_TOKEN_CHARS - 1));
    // Equal pieces in a row (a run of one character) are counted once; each cut adds one token.
    expect(handed.length).toBeLessThanOrEqual(pieces.length);
    expect(tokens).toBe(pieces.length + (pieces.length - 1));
  });

  const cheapSize = 4_000; // exact counts of these texts take well under a second at this size
  it.each(pathological.flatMap(([label, make]) => (['o200k_base', 'cl100k_base'] as const).map((encoding) => [label, encoding, make] as const)))(
    '%s (%s): at least the exact count, and at most 3 tokens more per cut',
    (_label, encoding, make) => {
      const text = make(cheapSize);
      const exact = ref(encoding, text);
      const cuts = splitLongPreTokens(text).length - 1;
      const tokens = countText(encoding === 'o200k_base' ? 'gpt-4o' : 'gpt-4', text);
      expect(tokens).toBeGreaterThanOrEqual(exact);
      expect(tokens).toBeLessThanOrEqual(exact + 3 * cuts);
    },
  );

  const tools = Array.from({ length: 40 }, (_, i) => ({
    type: 'function',
    function: { name: `tool_${i}`, parameters: { type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'Tokyo', `n${i * 7_919}`] } }, required: ['city'] } },
  }));
  it.each<[string, string]>([
    ['JSON without a space (a tools block)', JSON.stringify(tools)],
    ['CJK with punctuation', '今天天气很好，我们去公园散步吧。'.repeat(200)],
    ['a long URL', `https://example.com/${Array.from({ length: 200 }, (_, i) => `segment${i}`).join('/')}?q=1&r=2`],
    ['minified code', 'f=(a,b)=>a.map(x=>x*b).filter(Boolean).join(",");'.repeat(100)],
    ['base64 in a data URL', `data:image/png;base64,${randomText(BASE64, 20_000, 7)}`],
    ['a hex dump', randomText(chars('0123456789abcdef'), 20_000, 8)],
  ])('%s: a long run without a space, but short pre-tokens: not cut, counted exactly', (_label, text) => {
    expect(splitLongPreTokens(text)).toEqual([text]);
    expect(countText('gpt-4o', text)).toBe(ref('o200k_base', text));
    expect(countText('gpt-4', text)).toBe(ref('cl100k_base', text));
  });

  it.each([300_000, 1_000_000])('"A" × %i: the exact n / 8, plus at most 3 per cut', (size) => {
    // o200k_base has "AAAAAAAA" as one token and counts "A" × n as n / 8: checked at a size that is
    // still cheap to count whole, the way the encoder did before long pre-tokens were cut.
    expect(o200k('A'.repeat(16_000))).toBe(16_000 / 8);
    const text = 'A'.repeat(size);
    const cuts = splitLongPreTokens(text).length - 1;
    const tokens = countText('gpt-4o', text);
    expect(tokens).toBeGreaterThanOrEqual(size / 8);
    expect(tokens).toBeLessThanOrEqual(size / 8 + 3 * cuts);
  });

  // Every path counts its text through the same function. Each case has a run of its own letter,
  // so that gpt-tokenizer's cache of merged pre-tokens cannot carry one case's work into the next.
  type Counter = ReturnType<typeof createTokenCounter>;
  it.each<[string, string, string, (counter: Counter, model: string, text: string) => number]>([
    ['a stream delta or an answer (countText)', 'B', 'gpt-4o', (counter, model, text) => counter.countText(model, text)],
    ['a chat message', 'C', 'gpt-4o', (counter, model, text) => counter.countChatPrompt(model, { messages: [{ role: 'user', content: text }] })],
    ['a chat text part', 'D', 'gpt-4o', (counter, model, text) => counter.countChatPrompt(model, { messages: [{ role: 'user', content: [{ type: 'text', text }] }] })],
    [
      'tool call arguments',
      'E',
      'gpt-4o',
      (counter, model, text) => counter.countChatPrompt(model, { messages: [{ role: 'assistant', content: null, tool_calls: [{ function: { name: 'f', arguments: text } }] }] }),
    ],
    ['a tools block (its JSON)', 'F', 'gpt-4o', (counter, model, text) => counter.countChatPrompt(model, { messages: [], tools: [{ type: 'function', function: { name: 'f', description: text } }] })],
    ['Responses input', 'G', 'gpt-5', (counter, model, text) => counter.countResponsesInput(model, { input: text })],
    ['Responses instructions', 'H', 'gpt-5', (counter, model, text) => counter.countResponsesInput(model, { instructions: text, input: [] })],
    ['a function call output', 'I', 'gpt-5', (counter, model, text) => counter.countResponsesInput(model, { input: [{ type: 'function_call_output', call_id: 'c', output: text }] })],
    ['embeddings input', 'J', 'text-embedding-3-small', (counter, model, text) => counter.countEmbeddingInput(model, [text])],
  ])('%s: a run of 300,000 is counted as its pieces, plus the framing around it', (_label, letter, model, count) => {
    const text = letter.repeat(300_000);
    const counter = createTokenCounter();
    const tokens = count(counter, model, text);
    const textTokens = counter.countText(model, text);
    expect(tokens).toBeGreaterThanOrEqual(textTokens);
    expect(tokens).toBeLessThanOrEqual(textTokens + 30); // roles, priming, the JSON around the text
  });
});

describe('chunksAtPreTokenBoundaries: long texts counted in chunks, exactly', () => {
  const words = Array.from({ length: 40_000 }, (_, i) => `word${i % 977}`).join(' ');

  it('cuts only where every encoding starts a pre-token, about every chunkChars, and joins back into the text', () => {
    const chunks = chunksAtPreTokenBoundaries(words, 10_000);
    expect(chunks.join('')).toBe(words);
    expect(chunks.length).toBeGreaterThan(20);
    let at = 0;
    for (const chunk of chunks.slice(0, -1)) {
      expect(chunk.length).toBeGreaterThanOrEqual(10_000);
      at += chunk.length;
      expect(startsPreToken(words, at)).toBe(true);
    }
  });

  it('keeps a stretch without such a place whole, and a short text as it is', () => {
    expect(chunksAtPreTokenBoundaries('A'.repeat(50_000), 10_000)).toEqual(['A'.repeat(50_000)]);
    expect(chunksAtPreTokenBoundaries('short text', 10_000)).toEqual(['short text']);
  });

  it.each([
    ['o200k_base', 'gpt-4o', encodeO200k],
    ['cl100k_base', 'gpt-4', encodeCl100k],
  ] as const)('%s: a text long enough to be counted in chunks counts exactly what the encoder gives for it whole', (_encoding, model, encode) => {
    expect(words.length).toBeGreaterThan(4 * 65_536);
    expect(createTokenCounter().countText(model, words)).toBe(encode(words).length);
  });
});
