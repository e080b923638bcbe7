/**
 * Token counting for admission (the prompt of a request, before it goes upstream) and for live
 * metering (streamed deltas), with `gpt-tokenizer`.
 *
 * These counts are estimates that reserve budget up front; a request is always settled from the
 * upstream's own `usage` when it reports one. Every function here is fed client bodies that were only
 * loosely validated, so none of them throws: a shape we do not know is counted as its JSON text.
 *
 * Models of other families (Claude, Gemini, Llama, Qwen…) are counted with o200k_base too, and the
 * count is raised by their family's estimate profile (model-family.ts) so that it errs high; the
 * sum of a request's texts is then rounded up once. OpenAI models are counted exactly, as before.
 *
 * Chat framing follows OpenAI's cookbook ("How to count tokens with tiktoken"): every message costs
 * 3 tokens plus the tokens of each of its values (role and content included), a `name` costs 1 more,
 * and every reply is primed with 3 tokens (`<|start|>assistant<|message|>`).
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { modelToEncodingMap } from 'gpt-tokenizer/mapping';
import { BoundedMemo } from '../util/bounded-memo.js';
import {
  baseModelId,
  CL100K_PREFIX,
  countingFor,
  ESTIMATE_PROFILES,
  estimateOf,
  O200K_PREFIX,
  type EstimateProfile,
  type EstimateProfileName,
} from './model-family.js';

/** The BPE vocabularies we count with (aliases sharing a vocabulary are folded into one). */
export type TokenEncoding = 'o200k_base' | 'cl100k_base' | 'p50k_base' | 'r50k_base';

/** Cookbook framing: per message, per `name`, and once per request to prime the reply. */
export const TOKENS_PER_MESSAGE = 3;
export const TOKENS_PER_NAME = 1;
export const REPLY_PRIMING_TOKENS = 3;
/**
 * An assistant tool call costs its function name, its arguments and this overhead (the same 3
 * tokens gpt-tokenizer's own function-calling estimator adds for a `function_call`).
 */
export const TOOL_CALL_OVERHEAD_TOKENS = 3;
/** OpenAI's vision pricing: an image with `detail: "low"` is a flat 85 tokens. */
export const IMAGE_LOW_DETAIL_TOKENS = 85;
/**
 * Any other image (`high` or `auto`): we do not download or decode it, so we take what OpenAI's
 * formula (85 + 170 per 512 px tile after scaling) gives for a 1024×1024 image: 85 + 4 × 170 = 765.
 * Very wide or tall images can cost more, and some models (gpt-4o-mini, the patch-based
 * gpt-4.1-mini/nano and gpt-5-mini/nano) report image tokens on another scale; the settlement from
 * upstream usage corrects both.
 */
export const IMAGE_DEFAULT_TOKENS = 765;
/** An audio part (`input_audio`, or an earlier assistant `audio` reply): ~100 s at 10 tokens/s. */
export const AUDIO_PART_TOKENS = 1_000;
/** A file part (`file` / `input_file`, e.g. a PDF): a fixed estimate, its content is not read. */
export const FILE_PART_TOKENS = 2_000;

/** Counts of the per-item cache: `hits` are items whose count was reused, `misses` were counted. */
export interface TokenCountStats {
  hits: number;
  misses: number;
  /** Items currently cached. */
  size: number;
}

export interface TokenCounter {
  /** Tokens of plain text, e.g. one streamed delta. Short texts are cached (see `shortTexts`). */
  countText(model: string, text: string): number;
  /** Prompt tokens of an OpenAI chat-completions request body. */
  countChatPrompt(model: string, body: unknown): number;
  /** Prompt tokens of an OpenAI Responses API request body. */
  countResponsesInput(model: string, body: unknown): number;
  /** Tokens of an embeddings `input`: string, string[], number[] (tokens already) or number[][]. */
  countEmbeddingInput(model: string, input: unknown): number;
  /**
   * A counter of one answer's output, piece by piece as it is delivered: each call returns the
   * tokens its pieces add. For a model counted exactly that is `countText` of each piece; for an
   * estimated one, the growth of the rounded-up estimate of everything counted so far, so that a
   * stream of one-token deltas is not rounded up delta by delta.
   */
  outputCounter(model: string): (text: readonly string[]) => number;
  /** The estimate overrides the counter was made with (the counting thread makes its own counter with them). */
  readonly estimates: EstimateOverrides | undefined;
  /** Prompt tokens of a Gemini `generateContent` request body. */
  countGeminiPrompt(model: string, body: unknown): number;
  stats(): TokenCountStats;
}

export interface TokenCounterOptions {
  /** Most items (messages, tool blocks, …) whose counts are kept; least recently used go first. */
  cacheSize?: number;
  /**
   * Estimate profiles to use in place of the measured ones (ESTIMATE_PROFILES), e.g. factors of 1
   * for a test whose fake upstream counts one token per piece. Large prompts counted on the
   * counting thread use them too.
   */
  estimates?: EstimateOverrides;
}

export type EstimateOverrides = Partial<Record<EstimateProfileName, EstimateProfile>>;

export const DEFAULT_CACHE_SIZE = 10_000;
/** Items whose JSON is at most this long are cached under the JSON itself, longer ones under its sha1. */
const KEY_TEXT_MAX = 1024;
/** Texts this short (most stream deltas: a token or two) have their counts cached, at most SHORT_TEXTS_MAX of them. */
const SHORT_TEXT_MAX = 24;
const SHORT_TEXTS_MAX = 50_000;

// ---------------------------------------------------------------------------------------------
// Encodings

const ENCODING_ALIASES: Record<string, TokenEncoding> = {
  o200k_base: 'o200k_base',
  o200k_harmony: 'o200k_base', // same vocabulary, only extra special tokens (gpt-oss)
  cl100k_base: 'cl100k_base',
  p50k_base: 'p50k_base',
  p50k_edit: 'p50k_base',
  r50k_base: 'r50k_base',
  gpt2: 'r50k_base',
};

/**
 * The encoding a model counts with: gpt-tokenizer's own model map for the ids it lists, then our
 * family prefixes, and o200k_base for anything else (for non-OpenAI models the count is an estimate).
 */
export function encodingFor(model: string): TokenEncoding {
  return encodingsByModel.through(model, lookUpEncoding);
}

/** A model id is looked up for every streamed delta. */
const encodingsByModel = new BoundedMemo<string, TokenEncoding>(1_000);

function lookUpEncoding(model: string): TokenEncoding {
  const id = baseModelId(model);
  if (Object.hasOwn(modelToEncodingMap, id)) {
    const known = ENCODING_ALIASES[(modelToEncodingMap as Record<string, string>)[id] ?? ''];
    if (known) return known;
  }
  if (O200K_PREFIX.test(id)) return 'o200k_base';
  if (CL100K_PREFIX.test(id)) return 'cl100k_base';
  return 'o200k_base';
}

interface Encoder {
  countTokens(text: string, options: { disallowedSpecial: Set<string> }): number;
  clearMergeCache(): void;
}

/**
 * gpt-tokenizer caches the merges of up to 100,000 pre-tokens per encoding and, once full, evicts
 * the oldest with `Map.delete` of its first key; V8 keeps deleted entries until the map is rehashed,
 * so each eviction walks past them, and text full of new pre-tokens then counts several times
 * slower (6.5 s per MB instead of 1-2 s, BENCHMARKS.md). Cleared after this much text, the cache
 * never fills: 256 K characters hold at most ~60,000 pre-tokens, and the common ones are merged
 * again at once.
 */
const MERGE_CACHE_CLEAR_CHARS = 256 * 1024;
/** A long text goes to the encoder in chunks of about this much, so the cache can be cleared between them. */
const ENCODER_CHUNK_CHARS = MERGE_CACHE_CLEAR_CHARS / 4;
/** Characters handed to each encoder since its merge cache was last cleared. */
const sinceMergeCacheCleared = new Map<TokenEncoding, number>();

function keepMergeCacheUnderFull(encoding: TokenEncoding, enc: Encoder, chars: number): void {
  const since = (sinceMergeCacheCleared.get(encoding) ?? 0) + chars;
  if (since < MERGE_CACHE_CLEAR_CHARS) {
    sinceMergeCacheCleared.set(encoding, since);
    return;
  }
  enc.clearMergeCache();
  sinceMergeCacheCleared.set(encoding, 0);
}

/**
 * Special-token text in a client's prompt (`<|endoftext|>`) is plain text to the API; gpt-tokenizer
 * throws on it by default, so nothing is disallowed.
 */
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

const requireCjs = createRequire(import.meta.url);
/** Loaded on first use, once per encoding (o200k_base takes a few hundred ms and ~30 MB). */
const encoders = new Map<TokenEncoding, Encoder | null>();

function encoder(encoding: TokenEncoding): Encoder | null {
  let loaded = encoders.get(encoding);
  if (loaded === undefined) {
    try {
      loaded = requireCjs(`gpt-tokenizer/encoding/${encoding}`) as Encoder;
    } catch {
      loaded = null;
    }
    encoders.set(encoding, loaded);
  }
  return loaded;
}

/** Loads encodings ahead of the first request (optional; counting loads them on demand). */
export function preloadEncodings(encodings: readonly TokenEncoding[] = ['o200k_base', 'cl100k_base']): void {
  for (const encoding of encodings) encoder(encoding);
}

/** If the tokenizer is unavailable or fails, a deliberately high guess of 1 token per 2 chars. */
const fallbackCount = (text: string): number => Math.ceil(text.length / 2);

/**
 * How much text the synchronous count in progress may still hand the encoder (see `countWithin`).
 * A module variable is enough: counting is synchronous, so one count runs at a time per thread.
 */
let encoderAllowance = Infinity;

/** Thrown through a count that would hand the encoder more than its allowance. */
const OVER_ALLOWANCE = new Error('token count over its allowance');

/**
 * The estimate profile of the count in progress, null when the model's own encoding is exact. Like
 * `encoderAllowance`, one module variable is enough: counting is synchronous. Set by the counter's
 * entry points (see `createTokenCounter`'s `estimated`).
 */
let estimating: EstimateProfile | null = null;

/**
 * Every count of text goes through here: the one place text is handed to the encoder. For a model
 * of another family, the o200k count is raised to its estimate (not rounded: entry points round
 * the sum up once).
 */
function countWith(encoding: TokenEncoding, text: string): number {
  if (text.length === 0) return 0;
  encoderAllowance -= text.length;
  if (encoderAllowance < 0) throw OVER_ALLOWANCE;
  const enc = encoder(encoding);
  if (!enc) return fallbackCount(text);
  let tokens = 0;
  try {
    for (const chunk of chunksAtPreTokenBoundaries(text, ENCODER_CHUNK_CHARS)) {
      keepMergeCacheUnderFull(encoding, enc, chunk.length);
      tokens += countByPieces(chunk, (piece) => enc.countTokens(piece, PLAIN_TEXT));
    }
  } catch {
    return fallbackCount(text);
  }
  return estimating === null ? tokens : estimateOf(estimating, text, tokens);
}

/**
 * A long text in chunks of about `chunkChars`, each ending where every encoding starts a new
 * pre-token, so that they count to exactly what the whole does; between chunks the merge cache can
 * be cleared (see keepMergeCacheUnderFull). A stretch without such a place stays in one chunk (it is
 * cut into pieces later, by countByPieces). One pass over the text.
 */
export function chunksAtPreTokenBoundaries(text: string, chunkChars: number): string[] {
  if (text.length <= chunkChars) return [text];
  const chunks: string[] = [];
  let start = 0;
  for (let i = chunkChars; i < text.length; i++) {
    if (!startsPreToken(text, i)) continue;
    chunks.push(text.slice(start, i));
    start = i;
    i += chunkChars - 1;
  }
  chunks.push(text.slice(start));
  return chunks;
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? '';
  } catch {
    return '';
  }
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Text as text, anything else (but null/undefined) as its JSON. */
function countValue(encoding: TokenEncoding, value: unknown): number {
  if (value === undefined || value === null) return 0;
  if (typeof value === 'string') return countWith(encoding, value);
  return countWith(encoding, safeJson(value));
}

// ---------------------------------------------------------------------------------------------
// Long pre-tokens
//
// gpt-tokenizer splits text into pre-tokens with its encoding's regex (a word with the character
// before it, a run of punctuation, a run of whitespace, …) and merges each pre-token's bytes in time
// that grows with the square of its length: "A" × 300,000 is one pre-token and took 52 s, on the
// event loop. So no text goes to the encoder with more than MAX_PRE_TOKEN_CHARS in a row without a
// place where every encoding starts a new pre-token; a longer stretch is cut, and each piece is
// counted on its own. Ordinary text has such places every few characters and is never cut.

/**
 * The longest pre-token the encoder is handed, in UTF-16 code units. 128 is longer than the words
 * and the indentation of ordinary text. In the bench's comparison of limits (BENCHMARKS.md), 32 to
 * 512 cost about the same per byte of random letters; CJK without punctuation costs more as the
 * limit grows (merging is quadratic in a piece's bytes, 3 per CJK character: about +15 % at 128 and
 * +35 % at 256 against 64), while the tokens added at the cuts halve with each doubling (12 % over
 * the exact count of "A" × n at 64, 6 % at 128). It also bounds each key of gpt-tokenizer's merge
 * cache (up to 100,000 pre-tokens) to 128 code units.
 */
export const MAX_PRE_TOKEN_CHARS = 128;

/**
 * `text` in pieces, cut wherever `maxChars` (at least 2) code units go by without a pre-token
 * boundary (see `startsPreToken`), never between the two halves of a surrogate pair: a long run of
 * one character, of random letters, of CJK without punctuation, of whitespace. `[text]` itself
 * when nothing is cut. No pre-token crosses a boundary, so in each piece every pre-token is at most
 * `maxChars` long, whatever the encoding. Linear in the text: each character is looked at once.
 */
export function splitLongPreTokens(text: string, maxChars: number = MAX_PRE_TOKEN_CHARS): string[] {
  const limit = Math.max(2, Math.floor(maxChars));
  if (text.length <= limit) return [text];
  const pieces: string[] = [];
  let pieceStart = 0;
  /** The latest position no pre-token crosses: a boundary, a cut, or the start. */
  let lastBoundary = 0;
  let before = classAt(text, 0);
  for (let i = 1; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const at = code < 0x80 ? (ASCII_CLASSES[code] as CharClass) : classAt(text, i);
    if (startsBetween(before, at)) {
      lastBoundary = i;
    } else if (i - lastBoundary >= limit) {
      const cut = at === PAIR_END ? i - 1 : i;
      pieces.push(text.slice(pieceStart, cut));
      pieceStart = cut;
      lastBoundary = cut;
    }
    if (at !== PAIR_END) before = at;
  }
  pieces.push(pieceStart === 0 ? text : text.slice(pieceStart));
  return pieces;
}

/**
 * The tokens of `text`, counted piece by piece with `countPiece` (see `splitLongPreTokens`). A cut
 * splits what the whole text would have merged as one pre-token, which moved the pieces' count by
 * -2 to +2 tokens against the whole's in our measurements (BPE is not additive, so no exact bound
 * holds). Each cut adds one token: the total was then never below the exact count, and at most 3
 * tokens per cut above it (1.2 on average), on the high side, the safe side for admission.
 * `maxChars` other than MAX_PRE_TOKEN_CHARS is for the bench, which compares limits.
 */
export function countByPieces(text: string, countPiece: (piece: string) => number, maxChars: number = MAX_PRE_TOKEN_CHARS): number {
  const pieces = splitLongPreTokens(text, maxChars);
  let tokens = pieces.length - 1;
  let previous = '';
  let previousTokens = 0;
  for (const piece of pieces) {
    // A run of one repeated character is cut into equal pieces: count them once, not once a call.
    if (piece !== previous) {
      previous = piece;
      previousTokens = countPiece(piece);
    }
    tokens += previousTokens;
  }
  return tokens;
}

/**
 * Whether every encoding (o200k_base, cl100k_base and r50k/p50k_base) starts a pre-token at
 * `text[i]`, whatever the text around, because no pattern of their regexes lets a match run from
 * `text[i - 1]` into `text[i]`, and none looks behind.
 */
export function startsPreToken(text: string, i: number): boolean {
  if (i <= 0 || i >= text.length) return false;
  const at = classAt(text, i);
  return startsBetween(classAt(text, classAt(text, i - 1) === PAIR_END ? i - 2 : i - 1), at);
}

/**
 * The boundaries of `startsPreToken`, by the classes of the characters on either side:
 * - after a letter, at a number, and after a number, at a letter;
 * - after a letter or a number, at anything but a letter, a number, a combining mark or `'` (marks
 *   and `'s`-like suffixes continue a word, and numbers go on in groups);
 * - after any non-whitespace, at whitespace other than a line break (punctuation takes the line
 *   breaks after it, and o200k_base any `/` among them too: `!\n/\n/…` is one pre-token).
 */
function startsBetween(before: CharClass, at: CharClass): boolean {
  switch (at) {
    case LETTER:
      return before === NUMBER;
    case NUMBER:
      return before === LETTER;
    case OTHER:
    case LINE_BREAK:
      return before === LETTER || before === NUMBER;
    case SPACE:
      return before !== SPACE && before !== LINE_BREAK;
    default: // CONTINUES_WORD, PAIR_END
      return false;
  }
}

/** Classes of characters, as far as pre-token boundaries go. */
type CharClass = typeof LETTER | typeof NUMBER | typeof CONTINUES_WORD | typeof OTHER | typeof SPACE | typeof LINE_BREAK | typeof PAIR_END;
const LETTER = 1;
const NUMBER = 2;
/** A combining mark, or the `'` that starts `'s`, `'ll`, …: both continue a word. */
const CONTINUES_WORD = 3;
/** Punctuation, symbols (emoji included), controls, lone surrogates. */
const OTHER = 4;
/** Whitespace but `\r` and `\n`. */
const SPACE = 5;
const LINE_BREAK = 6;
/** The second half of a surrogate pair: the pair is classed at its first half. */
const PAIR_END = 7;

/** Whether a UTF-16 code unit is whitespace as `\s` in the encoders' regexes sees it. */
export function isWhitespace(code: number): boolean {
  if (code <= 0x20) return code === 0x20 || (code >= 0x09 && code <= 0x0d);
  if (code < 0xa0) return false;
  return (
    code === 0xa0 ||
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000 ||
    code === 0xfeff
  );
}

const isHighSurrogate = (code: number): boolean => code >= 0xd800 && code <= 0xdbff;
const isLowSurrogate = (code: number): boolean => code >= 0xdc00 && code <= 0xdfff;

/** The class of the character at `text[i]` (a code point's, at the first half of a pair). */
function classAt(text: string, i: number): CharClass {
  const code = text.charCodeAt(i);
  if (code < 0x80) return ASCII_CLASSES[code] as CharClass;
  if (isWhitespace(code)) return SPACE;
  if (isLowSurrogate(code) && i > 0 && isHighSurrogate(text.charCodeAt(i - 1))) return PAIR_END;
  return classOfCodePoint(isHighSurrogate(code) ? (text.codePointAt(i) ?? code) : code);
}

const LETTER_CHAR = /^\p{L}$/u;
const NUMBER_CHAR = /^\p{N}$/u;
const MARK_CHAR = /^\p{M}$/u;
/** `classOfCodePoint`, worked out once per code point (0: not yet): one byte each, 1.1 MB. */
const codePointClasses = new Uint8Array(0x110000);

/** The class of a code point that is not whitespace (a lone surrogate is one code point). */
function classOfCodePoint(codePoint: number): CharClass {
  const known = codePointClasses[codePoint];
  if (known === LETTER || known === NUMBER || known === CONTINUES_WORD || known === OTHER) return known;
  const char = String.fromCodePoint(codePoint);
  const found = LETTER_CHAR.test(char) ? LETTER : NUMBER_CHAR.test(char) ? NUMBER : MARK_CHAR.test(char) ? CONTINUES_WORD : OTHER;
  codePointClasses[codePoint] = found;
  return found;
}

const ASCII_CLASSES = Uint8Array.from({ length: 0x80 }, (_, code) => {
  if (code === 0x0a || code === 0x0d) return LINE_BREAK;
  if (isWhitespace(code)) return SPACE;
  if (code === 0x27) return CONTINUES_WORD;
  const lower = code | 0x20;
  if (lower >= 0x61 && lower <= 0x7a) return LETTER;
  return code >= 0x30 && code <= 0x39 ? NUMBER : OTHER;
});

// ---------------------------------------------------------------------------------------------
// Content parts (chat and Responses share most of them)

function imageTokens(detail: unknown): number {
  return detail === 'low' ? IMAGE_LOW_DETAIL_TOKENS : IMAGE_DEFAULT_TOKENS;
}

function countPart(encoding: TokenEncoding, part: unknown): number {
  if (typeof part === 'string') return countWith(encoding, part);
  if (!isRecord(part)) return countValue(encoding, part);
  switch (part.type) {
    case 'text': // chat
    case 'input_text': // Responses
    case 'output_text': // Responses (assistant history)
    case 'summary_text': // Responses reasoning summary
    case 'reasoning_text': // Responses reasoning content
      return countValue(encoding, part.text);
    case 'refusal':
      return countValue(encoding, part.refusal);
    case 'image_url': // chat: { image_url: { url, detail } }
      return imageTokens(isRecord(part.image_url) ? part.image_url.detail : undefined);
    case 'input_image': // Responses: { image_url | file_id, detail }
      return imageTokens(part.detail);
    case 'input_audio':
      return AUDIO_PART_TOKENS;
    case 'file':
    case 'input_file':
      return FILE_PART_TOKENS;
    default:
      return countValue(encoding, part);
  }
}

function countContent(encoding: TokenEncoding, content: unknown): number {
  if (Array.isArray(content)) {
    let total = 0;
    for (const part of content) total += countPart(encoding, part);
    return total;
  }
  return countValue(encoding, content);
}

function countToolCall(encoding: TokenEncoding, call: unknown): number {
  if (!isRecord(call)) return countValue(encoding, call);
  const fn = isRecord(call.function) ? call.function : isRecord(call.custom) ? call.custom : null;
  if (!fn) return countValue(encoding, call);
  return TOOL_CALL_OVERHEAD_TOKENS + countValue(encoding, fn.name) + countValue(encoding, fn.arguments ?? fn.input);
}

// ---------------------------------------------------------------------------------------------
// Chat completions

/** Message fields the counter knows; any other field is counted as its text or JSON. */
const CHAT_MESSAGE_FIELDS = new Set(['role', 'content', 'name', 'tool_calls', 'function_call', 'tool_call_id', 'audio']);

function chatMessageTokens(encoding: TokenEncoding, message: unknown): number {
  if (!isRecord(message)) return TOKENS_PER_MESSAGE + countValue(encoding, message);
  let total = TOKENS_PER_MESSAGE;
  total += countValue(encoding, message.role);
  total += countContent(encoding, message.content);
  if (typeof message.name === 'string' && message.name.length > 0) {
    total += countWith(encoding, message.name) + TOKENS_PER_NAME;
  }
  if (Array.isArray(message.tool_calls)) {
    for (const call of message.tool_calls) total += countToolCall(encoding, call);
  } else {
    total += countValue(encoding, message.tool_calls);
  }
  if (isRecord(message.function_call)) {
    total += countToolCall(encoding, { function: message.function_call });
  }
  // tool_call_id is a reference the model does not read as text.
  if (message.audio !== undefined && message.audio !== null) total += AUDIO_PART_TOKENS;
  for (const [key, value] of Object.entries(message)) {
    if (!CHAT_MESSAGE_FIELDS.has(key)) total += countValue(encoding, value);
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// Responses API

function responsesItemTokens(encoding: TokenEncoding, item: unknown): number {
  if (!isRecord(item)) return TOKENS_PER_MESSAGE + countValue(encoding, item);
  const type = item.type ?? (item.role !== undefined ? 'message' : undefined);
  switch (type) {
    case 'message':
      return chatMessageTokens(encoding, { ...item, type: undefined, id: undefined, status: undefined });
    case 'function_call':
      return TOKENS_PER_MESSAGE + countValue(encoding, item.name) + countValue(encoding, item.arguments);
    case 'custom_tool_call':
      return TOKENS_PER_MESSAGE + countValue(encoding, item.name) + countValue(encoding, item.input);
    case 'function_call_output':
    case 'custom_tool_call_output':
      return TOKENS_PER_MESSAGE + countContent(encoding, item.output);
    case 'reasoning': {
      // Only the readable summary/content; encrypted_content is opaque and not re-read as text.
      let total = 0;
      for (const field of [item.summary, item.content]) {
        if (Array.isArray(field)) total += countContent(encoding, field);
      }
      return total;
    }
    default:
      return countValue(encoding, item);
  }
}

// ---------------------------------------------------------------------------------------------
// Embeddings

function embeddingInputTokens(encoding: TokenEncoding, input: unknown): number {
  if (typeof input === 'string') return countWith(encoding, input);
  if (!Array.isArray(input)) return countValue(encoding, input);
  let total = 0;
  for (const entry of input) {
    if (typeof entry === 'string') total += countWith(encoding, entry);
    else if (typeof entry === 'number') total += 1; // one token id of a number[] input
    else if (Array.isArray(entry)) total += entry.length; // a number[] of token ids
    else total += countValue(encoding, entry);
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// Gemini (generateContent)
//
// Gemini's tokenizer is not public, so its prompts are counted with the o200k_base vocabulary,
// raised by the Gemini family's estimate (model-family.ts): the text of each part, framed as a
// chat message is. Media
// are never read (their base64 would be counted as text, and slowly): each is a fixed estimate by
// its MIME type, which the settlement from the upstream's `usageMetadata` corrects.

/** The MIME type's estimate of an inline or referenced file: images, audio, and anything else (PDFs, video). */
function geminiMediaTokens(media: unknown): number {
  const mimeType = isRecord(media) && typeof media.mimeType === 'string' ? media.mimeType : '';
  if (mimeType.startsWith('image/')) return IMAGE_DEFAULT_TOKENS;
  if (mimeType.startsWith('audio/')) return AUDIO_PART_TOKENS;
  return FILE_PART_TOKENS;
}

function geminiPartTokens(encoding: TokenEncoding, part: unknown): number {
  if (!isRecord(part)) return countValue(encoding, part);
  // A part holds one of these; `thought`, `thoughtSignature` and `videoMetadata` are its metadata.
  if (typeof part.text === 'string') return countWith(encoding, part.text);
  if (isRecord(part.inlineData)) return geminiMediaTokens(part.inlineData);
  if (isRecord(part.fileData)) return geminiMediaTokens(part.fileData);
  if (isRecord(part.functionCall)) return TOOL_CALL_OVERHEAD_TOKENS + countValue(encoding, part.functionCall.name) + countValue(encoding, part.functionCall.args);
  if (isRecord(part.functionResponse)) return TOOL_CALL_OVERHEAD_TOKENS + countValue(encoding, part.functionResponse.name) + countValue(encoding, part.functionResponse.response);
  if (isRecord(part.executableCode)) return countValue(encoding, part.executableCode.code);
  if (isRecord(part.codeExecutionResult)) return countValue(encoding, part.codeExecutionResult.output);
  const { thought: _thought, thoughtSignature: _signature, ...rest } = part;
  return countValue(encoding, rest);
}

/** A `Content` (`{role, parts}`), framed as a chat message: the system instruction is one too. */
function geminiContentTokens(encoding: TokenEncoding, content: unknown): number {
  if (!isRecord(content)) return TOKENS_PER_MESSAGE + countValue(encoding, content);
  let total = TOKENS_PER_MESSAGE + countValue(encoding, content.role);
  if (Array.isArray(content.parts)) {
    for (const part of content.parts) total += geminiPartTokens(encoding, part);
  } else {
    total += countValue(encoding, content.parts);
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// The counter

/**
 * A cache key for a text under `prefix`: the text itself when short, else its sha1, each under a
 * tag of its own so neither can pass for the other. Two parts rather than one string, so that the
 * text (a message of a conversation, hundreds of characters, new from every request's JSON) is
 * hashed as it is, not copied into a key first.
 */
const shortOrHashed = (prefix: string, text: string): [string, string] =>
  text.length <= KEY_TEXT_MAX ? [`${prefix}:t`, text] : [`${prefix}:h`, createHash('sha1').update(text).digest('base64')];

const PLAIN_ROLES = new Set(['system', 'developer', 'user', 'assistant']);

/** `{role, content}` and nothing else, with a known role (so the role cannot run into the key's text) and text content. */
function isPlainTextMessage(message: unknown): message is { role: string; content: string } {
  if (!isRecord(message) || typeof message.content !== 'string' || typeof message.role !== 'string' || !PLAIN_ROLES.has(message.role)) return false;
  let fields = 0;
  for (const _ in message) fields++;
  return fields === 2;
}

/** One count in LruCounts, in its recency list (most recent first). */
interface LruEntry {
  group: string;
  key: string;
  value: number;
  newer: LruEntry | null;
  older: LruEntry | null;
}

/**
 * Counts by a key in two parts (`group`, `key`), at most `max` of them, the least recently used
 * dropped first. A hit moves its entry to the front of a linked list: no key is hashed twice, and
 * no Map is deleted from and added to again, on the way of every message of every request.
 */
class LruCounts {
  private readonly groups = new Map<string, Map<string, LruEntry>>();
  private newest: LruEntry | null = null;
  private oldest: LruEntry | null = null;
  size = 0;
  hits = 0;
  misses = 0;

  constructor(private readonly max: number) {}

  /** The cached count under (`group`, `key`), or `compute()` stored under it. */
  through([group, key]: readonly [string, string], compute: () => number): number {
    let entries = this.groups.get(group);
    const cached = entries?.get(key);
    if (cached !== undefined) {
      this.hits++;
      this.touch(cached);
      return cached.value;
    }
    this.misses++;
    const value = compute();
    if (this.max > 0) {
      if (!entries) this.groups.set(group, (entries = new Map()));
      const entry: LruEntry = { group, key, value, newer: null, older: null };
      entries.set(key, entry);
      this.size++;
      this.pushNewest(entry);
      if (this.size > this.max) this.dropOldest();
    }
    return value;
  }

  private touch(entry: LruEntry): void {
    if (entry === this.newest) return;
    this.unlink(entry);
    this.pushNewest(entry);
  }

  private pushNewest(entry: LruEntry): void {
    entry.older = this.newest;
    entry.newer = null;
    if (this.newest) this.newest.newer = entry;
    this.newest = entry;
    this.oldest ??= entry;
  }

  private unlink(entry: LruEntry): void {
    if (entry.newer) entry.newer.older = entry.older;
    else this.newest = entry.older;
    if (entry.older) entry.older.newer = entry.newer;
    else this.oldest = entry.newer;
    entry.newer = entry.older = null;
  }

  private dropOldest(): void {
    const entry = this.oldest;
    if (!entry) return;
    this.unlink(entry);
    const entries = this.groups.get(entry.group);
    entries?.delete(entry.key);
    if (entries?.size === 0) this.groups.delete(entry.group);
    this.size--;
  }
}

/**
 * How a model's text is counted: its encoding, its estimate profile (null: exact), and the prefix
 * of its cache keys (the encoding, and the profile too when there is one, so that an exact count
 * and an estimate of the same text are never taken for each other).
 */
interface Scheme {
  encoding: TokenEncoding;
  profile: EstimateProfile | null;
  key: string;
}

/** An estimate's sum rounded up to whole tokens (the tiny allowance absorbs floating-point noise such as 27.000000000000004). */
const roundUp = (tokens: number): number => Math.max(0, Math.ceil(tokens - 1e-9)); // never -0

/** Runs a count with `profile` in effect (see `estimating`). */
function withEstimate(profile: EstimateProfile, count: () => number): number {
  const outer = estimating;
  estimating = profile;
  try {
    return count();
  } finally {
    estimating = outer;
  }
}

export function createTokenCounter(options: TokenCounterOptions = {}): TokenCounter {
  const cache = new LruCounts(Math.max(0, Math.floor(options.cacheSize ?? DEFAULT_CACHE_SIZE)));
  const profiles: Record<EstimateProfileName, EstimateProfile> = { ...ESTIMATE_PROFILES, ...options.estimates };

  const lookUpScheme = (model: string): Scheme => {
    const encoding = encodingFor(model);
    // A model that is not a string never comes from a parsed request: counted as it always was.
    const name = typeof model === 'string' ? countingFor(model).profile : null;
    return name === null ? { encoding, profile: null, key: encoding } : { encoding, profile: profiles[name], key: `${encoding}~${name}` };
  };
  /** A model id is looked up for every streamed delta. */
  const schemes = new BoundedMemo<string, Scheme>(1_000);
  const schemeOf = (model: string): Scheme => schemes.through(model, lookUpScheme);

  /** A prompt's count: as it is for an exact encoding, else with the estimate in effect and the sum rounded up. */
  const estimated = (model: string, count: (scheme: Scheme) => number): number => {
    const scheme = schemeOf(model);
    const { profile } = scheme;
    return profile === null ? count(scheme) : withEstimate(profile, () => roundUp(count(scheme)));
  };

  /**
   * The count of one item (a message, a tools block, …), cached under its encoding, its kind and
   * its JSON so that a conversation's repeated history is counted once. A short JSON is its own
   * key (a Map hashes a short string faster than sha1 can be set up); a long one goes by its sha1,
   * so the cache never holds more than ~KEY_TEXT_MAX characters per entry.
   */
  const cached = (scheme: Scheme, kind: string, item: unknown, count: () => number): number => {
    const json = safeJson(item);
    if (json === '') return count();
    return cache.through(shortOrHashed(`${scheme.key}:${kind}`, json), count);
  };

  /**
   * A chat message: a plain one (`{role, content}` with a text content, most of any conversation)
   * is keyed by its role and text without writing its JSON; anything else goes through `cached`.
   */
  const cachedMessage = (scheme: Scheme, message: unknown): number => {
    const count = () => chatMessageTokens(scheme.encoding, message);
    if (!isPlainTextMessage(message)) return cached(scheme, 'chat', message, count);
    return cache.through(shortOrHashed(`${scheme.key}:chat-text:${message.role}`, message.content), count);
  };

  /** A JSON-schema-like block (tools, functions, response formats): its JSON text, cached. */
  const cachedJson = (scheme: Scheme, kind: string, value: unknown): number => {
    if (value === undefined || value === null) return 0;
    return cached(scheme, kind, value, () => countValue(scheme.encoding, value));
  };

  /**
   * Counts of short texts. A stream is counted delta by delta and most deltas are one common token
   * (" the", ","), so the same few thousand texts come back all the time; cleared whole when full.
   */
  const shortTexts = new BoundedMemo<string, number>(SHORT_TEXTS_MAX);

  /** A text's tokens (an estimate's not rounded). */
  const textTokens = (scheme: Scheme, text: string): number => {
    if (typeof text !== 'string' || text.length > SHORT_TEXT_MAX) return countValue(scheme.encoding, text);
    return shortTexts.through(`${scheme.key}:${text}`, () => countValue(scheme.encoding, text));
  };

  const countText = (model: string, text: string): number => {
    try {
      const scheme = schemeOf(model);
      const { profile } = scheme;
      if (profile === null) return textTokens(scheme, text);
      return withEstimate(profile, () => roundUp(textTokens(scheme, text)));
    } catch (error) {
      if (error === OVER_ALLOWANCE) throw error;
      return 0;
    }
  };

  const outputCounter = (model: string): ((text: readonly string[]) => number) => {
    const scheme = schemeOf(model);
    const { profile } = scheme;
    if (profile === null) {
      return (text) => {
        let tokens = 0;
        for (const piece of text) tokens += countText(model, piece);
        return tokens;
      };
    }
    /** The estimate of all output so far, and what the calls so far returned (it rounded up). */
    let estimate = 0;
    let counted = 0;
    return (text) => {
      try {
        withEstimate(profile, () => {
          for (const piece of text) estimate += textTokens(scheme, piece);
          return estimate;
        });
      } catch (error) {
        if (error === OVER_ALLOWANCE) throw error;
      }
      const total = roundUp(estimate);
      const added = Math.max(0, total - counted);
      counted += added;
      return added;
    };
  };

  const countChatPrompt = (model: string, body: unknown): number => {
    try {
      return estimated(model, (scheme) => chatPromptTokens(scheme, body));
    } catch (error) {
      if (error === OVER_ALLOWANCE) throw error;
      return fallbackCount(safeJson(body));
    }
  };

  const chatPromptTokens = (scheme: Scheme, body: unknown): number => {
    const { encoding } = scheme;
    if (!isRecord(body)) return countValue(encoding, body);
    let total = REPLY_PRIMING_TOKENS;
    if (Array.isArray(body.messages)) {
      for (const message of body.messages) {
        total += cachedMessage(scheme, message);
      }
    } else {
      total += countValue(encoding, body.messages);
    }
    // Tool definitions are counted as their JSON text: more than OpenAI's internal rendering
    // (a TypeScript-like namespace), so an over-estimate, which is the safe side for admission.
    total += cachedJson(scheme, 'tools', body.tools);
    total += cachedJson(scheme, 'tools', body.functions);
    if (isRecord(body.tool_choice)) total += countValue(encoding, body.tool_choice);
    if (isRecord(body.function_call)) total += countValue(encoding, body.function_call);
    const format = body.response_format;
    if (isRecord(format) && format.type === 'json_schema') {
      total += cachedJson(scheme, 'schema', format.json_schema ?? format);
    }
    return total;
  };

  const countResponsesInput = (model: string, body: unknown): number => {
    try {
      return estimated(model, (scheme) => responsesInputTokens(scheme, body));
    } catch (error) {
      if (error === OVER_ALLOWANCE) throw error;
      return fallbackCount(safeJson(body));
    }
  };

  const responsesInputTokens = (scheme: Scheme, body: unknown): number => {
    const { encoding } = scheme;
    if (!isRecord(body)) return countValue(encoding, body);
    let total = REPLY_PRIMING_TOKENS;
    if (typeof body.instructions === 'string' && body.instructions.length > 0) {
      const item = { role: 'developer', content: body.instructions };
      total += cached(scheme, 'responses', item, () => responsesItemTokens(encoding, item));
    }
    // Input kept upstream under previous_response_id is unknown here; settlement corrects it.
    const input = body.input;
    if (typeof input === 'string') {
      const item = { role: 'user', content: input };
      total += cached(scheme, 'responses', item, () => responsesItemTokens(encoding, item));
    } else if (Array.isArray(input)) {
      for (const item of input) {
        total += cached(scheme, 'responses', item, () => responsesItemTokens(encoding, item));
      }
    } else {
      total += countValue(encoding, input);
    }
    total += cachedJson(scheme, 'tools', body.tools);
    if (isRecord(body.tool_choice)) total += countValue(encoding, body.tool_choice);
    const text = body.text;
    if (isRecord(text) && isRecord(text.format) && text.format.type === 'json_schema') {
      total += cachedJson(scheme, 'schema', text.format);
    }
    return total;
  };

  const countEmbeddingInput = (model: string, input: unknown): number => {
    try {
      return estimated(model, ({ encoding }) => embeddingInputTokens(encoding, input));
    } catch (error) {
      if (error === OVER_ALLOWANCE) throw error;
      return fallbackCount(safeJson(input));
    }
  };

  const countGeminiPrompt = (model: string, body: unknown): number => {
    try {
      return estimated(model, (scheme) => geminiPromptTokens(scheme, body));
    } catch (error) {
      if (error === OVER_ALLOWANCE) throw error;
      return fallbackCount(safeJson(body));
    }
  };

  const geminiPromptTokens = (scheme: Scheme, body: unknown): number => {
    const { encoding } = scheme;
    if (!isRecord(body)) return countValue(encoding, body);
    let total = REPLY_PRIMING_TOKENS;
    const count = (content: unknown) => cached(scheme, 'gemini', content, () => geminiContentTokens(encoding, content));
    if (body.systemInstruction !== undefined && body.systemInstruction !== null) total += count(body.systemInstruction);
    // Content kept upstream under `cachedContent` is unknown here; settlement corrects it.
    if (Array.isArray(body.contents)) {
      for (const content of body.contents) total += count(content);
    } else {
      total += countValue(encoding, body.contents);
    }
    // Function declarations as their JSON text, as for OpenAI's tools (an over-estimate).
    total += cachedJson(scheme, 'tools', body.tools);
    if (isRecord(body.toolConfig)) total += countValue(encoding, body.toolConfig);
    const config = body.generationConfig;
    if (isRecord(config)) {
      total += cachedJson(scheme, 'schema', config.responseSchema);
      total += cachedJson(scheme, 'schema', config.responseJsonSchema);
    }
    return total;
  };

  return {
    countText,
    countChatPrompt,
    countResponsesInput,
    countEmbeddingInput,
    outputCounter,
    estimates: options.estimates,
    countGeminiPrompt,
    stats: () => ({ hits: cache.hits, misses: cache.misses, size: cache.size }),
  };
}

/**
 * Runs a count only as far as it is cheap: `count` may hand the encoder at most `maxChars` of text
 * (what its caches already hold costs nothing), else it stops and this returns null, for the
 * caller to count elsewhere (see prompt-count.ts). Counts already finished stay cached.
 */
export function countWithin(maxChars: number, count: () => number): number | null {
  const outer = encoderAllowance;
  encoderAllowance = Math.min(outer, maxChars);
  try {
    return count();
  } catch (error) {
    if (error === OVER_ALLOWANCE) return null;
    throw error;
  } finally {
    encoderAllowance = outer;
  }
}

/** The process-wide counter the proxy uses; tests that look at cache stats make their own. */
const shared = createTokenCounter();

export const countText = shared.countText;
export const countChatPrompt = shared.countChatPrompt;
export const countResponsesInput = shared.countResponsesInput;
export const countEmbeddingInput = shared.countEmbeddingInput;
export const countGeminiPrompt = shared.countGeminiPrompt;
export const tokenCountStats = shared.stats;
