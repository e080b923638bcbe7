import { isRecord } from '../../util/is-record.js';
import type { UpstreamUsage } from '../meter.js';

const count = (value: unknown): number | null => (typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : null);

/**
 * The ledger's usage from Gemini's `usageMetadata`: `promptTokenCount` is the whole prompt, cached
 * content included (`cachedContentTokenCount`, its cache reads); the output is the candidates'
 * tokens plus the thoughts', which Google bills as output but counts apart (`thoughtsTokenCount`
 * is not part of `candidatesTokenCount`). The prompts of built-in tools (search grounding, code
 * execution: `toolUsePromptTokenCount`) are billed as input too. Null without a prompt count: not
 * an answer's usage.
 */
export function geminiUsage(metadata: unknown): UpstreamUsage | null {
  if (!isRecord(metadata)) return null;
  const prompt = count(metadata.promptTokenCount);
  if (prompt === null) return null;
  const thoughts = count(metadata.thoughtsTokenCount) ?? 0;
  return {
    inputTokens: prompt + (count(metadata.toolUsePromptTokenCount) ?? 0),
    cachedTokens: Math.min(prompt, count(metadata.cachedContentTokenCount) ?? 0),
    outputTokens: (count(metadata.candidatesTokenCount) ?? 0) + thoughts,
    reasoningTokens: thoughts,
  };
}

/**
 * The generated text of an answer's (or a stream chunk's) candidates, as the model counts it:
 * text parts (thought summaries included), function calls (name and arguments) and generated code.
 * Images the model draws are not text and are left to the settlement.
 */
export function candidatesOutputText(candidates: unknown): string[] {
  const pieces: string[] = [];
  if (!Array.isArray(candidates)) return pieces;
  const add = (value: unknown) => {
    if (typeof value === 'string' && value !== '') pieces.push(value);
  };
  for (const candidate of candidates) {
    const parts = isRecord(candidate) && isRecord(candidate.content) ? candidate.content.parts : null;
    if (!Array.isArray(parts)) continue;
    for (const part of parts) {
      if (!isRecord(part)) continue;
      add(part.text);
      if (isRecord(part.functionCall)) {
        add(part.functionCall.name);
        if (part.functionCall.args !== undefined) add(JSON.stringify(part.functionCall.args));
      }
      if (isRecord(part.executableCode)) add(part.executableCode.code);
    }
  }
  return pieces;
}
