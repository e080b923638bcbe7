/**
 * The prompt-counting thread (see prompt-count.ts): counts the prompts too large to count on the
 * event loop, with a counter of its own whose caches persist between jobs.
 */
import { parentPort } from 'node:worker_threads';
import { countPromptWith, type PromptCountJob } from './prompt-count.js';
import { createTokenCounter, preloadEncodings, type EstimateOverrides, type TokenCounter } from './token-count.js';

const port = parentPort;
if (!port) throw new Error('prompt-count-worker: not in a worker thread');
preloadEncodings();
const counter = createTokenCounter();
/** Counters made with a caller's estimate overrides (tests'), by their JSON; a process has one or two. */
const overridden = new Map<string, TokenCounter>();

function counterFor(estimates: EstimateOverrides | undefined): TokenCounter {
  if (estimates === undefined) return counter;
  const key = JSON.stringify(estimates);
  let made = overridden.get(key);
  if (!made) {
    made = createTokenCounter({ estimates });
    overridden.set(key, made);
  }
  return made;
}

port.on('message', ({ id, job, estimates }: { id: number; job: PromptCountJob; estimates?: EstimateOverrides }) => {
  port.postMessage({ id, tokens: countPromptWith(counterFor(estimates), job) });
});
