import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Clock } from '../../clock.js';
import type { CacheConfig } from '../../config/schema.js';
import { lookupIdOf, openAnswer, sealAnswer } from './answer-crypto.js';
import { CacheTable } from './cache-table.js';

/** The cache's file in the data directory. */
export const CACHE_FILE = 'response-cache.sqlite';

/** What the first answer was charged: a hit is charged a fraction of it, and the rest recorded as saved. */
export interface FirstCharge {
  model: string;
  inputTokens: number;
  outputTokens: number;
  costMicros: number;
}

/** An answer as the client got it: replayed byte for byte on a hit. */
export interface CachedAnswer {
  status: number;
  contentType: string;
  /** Whether it was a stream (replayed with the stream's headers) or a whole answer. */
  streamed: boolean;
  body: Buffer;
  charge: FirstCharge;
}

type AnswerMeta = Omit<CachedAnswer, 'body'>;

/**
 * The plaintext that is sealed: a length-prefixed JSON head (status, content type, the first
 * charge), then the body's bytes. All of it is encrypted; the model's name is in the head, not in
 * the row.
 */
function encode(answer: CachedAnswer): Buffer {
  const { body, ...meta } = answer;
  const head = Buffer.from(JSON.stringify(meta));
  const length = Buffer.alloc(4);
  length.writeUInt32BE(head.length);
  return Buffer.concat([length, head, body]);
}

function decode(plaintext: Buffer): CachedAnswer {
  const headLength = plaintext.readUInt32BE(0);
  const meta = JSON.parse(plaintext.subarray(4, 4 + headLength).toString('utf8')) as AnswerMeta;
  return { ...meta, body: plaintext.subarray(4 + headLength) };
}

/**
 * The private response cache: answers found and stored by their canonical request
 * (canonical-request.ts), sealed under a key derived from it, with a TTL and an LRU size bound.
 */
export class ResponseCache {
  private readonly maxBytes: number;
  private readonly ttlMs: number;

  private constructor(
    private readonly table: CacheTable,
    private readonly clock: Clock,
    config: Pick<CacheConfig, 'ttlSeconds' | 'maxMegabytes'>,
  ) {
    this.maxBytes = Math.floor(config.maxMegabytes * 1024 * 1024);
    this.ttlMs = config.ttlSeconds * 1000;
  }

  /** In `dataDir` (response-cache.sqlite), or in memory when there is none (tests, a server without a disk). */
  static open(config: Pick<CacheConfig, 'ttlSeconds' | 'maxMegabytes'>, clock: Clock, dataDir: string | null): ResponseCache {
    if (dataDir !== null) mkdirSync(dataDir, { recursive: true });
    return new ResponseCache(new CacheTable(dataDir === null ? ':memory:' : path.join(dataDir, CACHE_FILE)), clock, config);
  }

  /** The answer stored for this request, if one is and has not expired; null otherwise. */
  lookup(canonical: Buffer): CachedAnswer | null {
    const lookupId = lookupIdOf(canonical);
    const row = this.table.get(lookupId, this.clock.now());
    const plaintext = row ? openAnswer(canonical, lookupId, row) : null;
    return plaintext ? decode(plaintext) : null;
  }

  /** The most one answer may take: an answer above it would push out a quarter of the cache, and is not stored. */
  get maxAnswerBytes(): number {
    return Math.floor(this.maxBytes / 4);
  }

  /** Stores an answer for this request; false when it is too large to keep. */
  store(canonical: Buffer, answer: CachedAnswer): boolean {
    if (answer.body.length > this.maxAnswerBytes) return false;
    const lookupId = lookupIdOf(canonical);
    const now = this.clock.now();
    this.table.put(lookupId, sealAnswer(canonical, lookupId, encode(answer)), now, now + this.ttlMs, this.maxBytes);
    return true;
  }

  usage(): { rows: number; bytes: number } {
    return this.table.usage();
  }

  close(): void {
    this.table.close();
  }
}
