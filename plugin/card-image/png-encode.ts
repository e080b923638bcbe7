import { constants, crc32, createDeflate } from 'node:zlib';

/**
 * A PNG written in horizontal bands, each encoded on its own (on the thread that drew it) and
 * joined into one file: `pngBand` for each band, top to bottom, then `assemblePng`.
 */

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/**
 * Measured on a 1280×894 card: level 3 deflates in ~4 ms to 95 KB, level 4 takes twice as long
 * for 20 % less, level 1 saves nothing in time and is larger.
 */
const DEFLATE_LEVEL = 3;
/** zlib's header for a 32 KB window at a fast level (CMF, FLG: as a 16-bit number, a multiple of 31). */
const ZLIB_HEADER = Buffer.from([0x78, 0x5e]);
/** What a sync flush ends with: an empty stored block, not final. */
const SYNC_MARKER = Buffer.from([0x00, 0x00, 0xff, 0xff]);
/** An empty stored block marked final: what ends a stream of sync-flushed bands. */
const FINAL_BLOCK = Buffer.from([0x01, 0x00, 0x00, 0xff, 0xff]);

/** Some rows of the image, deflated, and what joining them to the other bands takes. */
export interface PngBand {
  /**
   * Raw deflate data (no zlib header or checksum) ending in a sync flush: on a byte boundary and
   * without a final block, so the next band's data can follow it in the same stream.
   */
  deflated: Uint8Array;
  /** Adler-32 of the rows as deflated (filter bytes included): the stream's checksum covers all bands. */
  adler32: number;
  /** Bytes of those rows (filter bytes included), which combining the checksums needs. */
  rawBytes: number;
}

/**
 * Rows of RGBA pixels as resvg renders them (premultiplied by alpha), encoded for `assemblePng`.
 * The rows are stored unfiltered: the card is flat colour, which deflate packs well as it is.
 * Copying the rows runs on the calling thread (the card's worker threads), deflating in zlib's.
 */
export async function pngBand(premultiplied: Uint8Array, width: number, height: number): Promise<PngBand> {
  const stride = width * 4;
  if (premultiplied.length !== stride * height) throw new Error(`pngBand: ${premultiplied.length} bytes are not ${width}×${height} RGBA`);
  const rows = Buffer.allocUnsafe((stride + 1) * height);
  for (let r = 0; r < height; r++) {
    const start = r * (stride + 1);
    rows[start] = 0; // filter type None
    rows.set(premultiplied.subarray(r * stride, (r + 1) * stride), start + 1);
    unpremultiplyRow(rows, start + 1, start + 1 + stride);
  }
  return { ...(await deflateRows(rows)), rawBytes: rows.length };
}

/**
 * The rows as raw deflate data ending in a sync flush, and their Adler-32. Node has no adler32
 * function, but zlib works one out as it deflates: the stream is flushed, then ended with no more
 * input, and the checksum is its last four bytes. (A second pass for the checksum, in JavaScript
 * or as a stored zlib stream, cost 4-6 ms of CPU per 9-budget card.)
 */
function deflateRows(rows: Buffer): Promise<{ deflated: Buffer; adler32: number }> {
  return new Promise((resolve, reject) => {
    const zlib = createDeflate({ level: DEFLATE_LEVEL, chunkSize: 64 * 1024 });
    const out: Buffer[] = [];
    zlib.on('data', (piece: Buffer) => out.push(piece));
    zlib.once('error', reject);
    zlib.write(rows);
    zlib.flush(constants.Z_SYNC_FLUSH, () => {
      // A write's output is emitted before its callback runs; checked, as a wrong cut would corrupt the PNG.
      const flushed = Buffer.concat(out.splice(0));
      if (!flushed.subarray(-SYNC_MARKER.length).equals(SYNC_MARKER)) {
        zlib.destroy();
        return reject(new Error('pngBand: zlib output does not end with a sync flush'));
      }
      zlib.once('end', () => {
        const tail = Buffer.concat(out);
        // zlib's header is two bytes, as ours (no preset dictionary); assemblePng writes one for all bands.
        resolve({ deflated: flushed.subarray(ZLIB_HEADER.length), adler32: tail.readUInt32BE(tail.length - 4) });
      });
      zlib.end();
    });
  });
}

/** A PNG of `width` × `height` pixels from its bands, top to bottom: one zlib stream across them. */
export function assemblePng(width: number, height: number, bands: readonly PngBand[]): Buffer {
  const rawBytes = bands.reduce((sum, b) => sum + b.rawBytes, 0);
  if (rawBytes !== (width * 4 + 1) * height) throw new Error(`assemblePng: bands of ${rawBytes} bytes are not ${width}×${height} RGBA rows`);
  const header = Buffer.alloc(13); // compression, filter and interlace methods stay 0
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bits per channel
  header[9] = 6; // colour type: RGBA
  const checksum = Buffer.alloc(4);
  checksum.writeUInt32BE(bands.reduce((adler, b) => adler32Combine(adler, b.adler32, b.rawBytes), 1)); // 1: no data yet
  const data = Buffer.concat([ZLIB_HEADER, ...bands.map((b) => b.deflated), FINAL_BLOCK, checksum]);
  return Buffer.concat([SIGNATURE, chunk('IHDR', header), chunk('IDAT', data), chunk('IEND', Buffer.alloc(0))]);
}

/**
 * PNG stores straight alpha. Only partly transparent pixels differ (the card's anti-aliased
 * corners): opaque and fully transparent ones are left as they are.
 */
function unpremultiplyRow(rows: Buffer, from: number, to: number): void {
  for (let p = from; p < to; p += 4) {
    const alpha = rows[p + 3] as number;
    if (alpha === 255 || alpha === 0) continue;
    for (let c = p; c < p + 3; c++) rows[c] = Math.min(255, Math.round(((rows[c] as number) * 255) / alpha));
  }
}

const ADLER_BASE = 65_521;

/** The Adler-32 of a ‖ b from theirs and b's length: zlib's adler32_combine. */
export function adler32Combine(a: number, b: number, bBytes: number): number {
  const rem = bBytes % ADLER_BASE;
  const aLow = a & 0xffff;
  let low = aLow + (b & 0xffff) + ADLER_BASE - 1;
  let high = ((rem * aLow) % ADLER_BASE) + (a >>> 16) + (b >>> 16) + ADLER_BASE - rem;
  low %= ADLER_BASE;
  high %= ADLER_BASE;
  return high * 0x10000 + low;
}

/** length, type, data, CRC-32 of type and data. */
function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}
