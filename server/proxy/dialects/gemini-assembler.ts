import { isRecord } from '../../util/is-record.js';
import type { Assembler } from '../assembled-answer.js';

/** One candidate as its chunks build it up. */
interface CandidateState {
  index: number;
  role: unknown;
  parts: Record<string, unknown>[];
  /** The candidate's other fields (finishReason, safetyRatings, citationMetadata, …): the latest of each. */
  fields: Record<string, unknown>;
}

/** Top-level fields of a chunk that a whole answer carries too: the latest of each. */
const ANSWER_FIELDS = ['promptFeedback', 'usageMetadata', 'modelVersion', 'responseId', 'createTime'];

/**
 * Gemini: the chunks of a `streamGenerateContent` stream merged into the one
 * `GenerateContentResponse` that `generateContent` answers. Consecutive text parts of a candidate
 * are joined (a thought summary's apart from the answer's); other parts (function calls, inline
 * data, code) are kept whole and in order, as Google sends each in one chunk.
 */
export class GeminiAnswerAssembler implements Assembler {
  private readonly candidates = new Map<number, CandidateState>();
  private readonly answerFields: Record<string, unknown> = {};
  error: Record<string, unknown> | null = null;

  add(chunk: Record<string, unknown>): void {
    if (isRecord(chunk.error)) {
      this.error = chunk.error;
      return;
    }
    for (const field of ANSWER_FIELDS) if (chunk[field] !== undefined) this.answerFields[field] = chunk[field];
    if (!Array.isArray(chunk.candidates)) return;
    for (const candidate of chunk.candidates as unknown[]) {
      if (!isRecord(candidate)) continue;
      const state = this.candidate(typeof candidate.index === 'number' ? candidate.index : 0);
      const { content, index: _index, ...fields } = candidate;
      Object.assign(state.fields, fields);
      if (!isRecord(content)) continue;
      if (content.role !== undefined) state.role = content.role;
      if (Array.isArray(content.parts)) for (const part of content.parts as unknown[]) if (isRecord(part)) appendPart(state.parts, part);
    }
  }

  private candidate(index: number): CandidateState {
    let state = this.candidates.get(index);
    if (!state) {
      state = { index, role: 'model', parts: [], fields: {} };
      this.candidates.set(index, state);
    }
    return state;
  }

  answer(): Record<string, unknown> {
    const candidates = [...this.candidates.values()]
      .sort((a, b) => a.index - b.index)
      .map((c) => ({ content: { parts: c.parts, role: c.role }, ...c.fields, index: c.index }));
    return { candidates, ...this.answerFields };
  }
}

/** A text part is only text, and whether it is a thought (a signature stays with its part). */
const isPlainText = (part: Record<string, unknown>): boolean =>
  typeof part.text === 'string' && Object.keys(part).every((key) => key === 'text' || key === 'thought');

function appendPart(parts: Record<string, unknown>[], part: Record<string, unknown>): void {
  const last = parts.at(-1);
  if (last && isPlainText(last) && isPlainText(part) && (last.thought === true) === (part.thought === true)) {
    last.text = `${last.text as string}${part.text as string}`;
    return;
  }
  parts.push({ ...part });
}
