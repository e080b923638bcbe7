import { Resvg } from '@resvg/resvg-js';
import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodePng } from './card-png.test-util.js';
import { adler32Combine, assemblePng, pngBand } from './png-encode.js';

/** zlib's own Adler-32 of `data`: a zlib stream's last four bytes. */
function adler32(data: Uint8Array): number {
  const stream = deflateSync(data);
  return stream.readUInt32BE(stream.length - 4);
}

/** The image cut into bands of the given heights (in rows), each encoded on its own. */
async function inBands(premultiplied: Buffer, width: number, heights: number[]): Promise<Buffer> {
  const stride = width * 4;
  let row = 0;
  const bands = await Promise.all(heights.map((rows) => pngBand(premultiplied.subarray(stride * row, stride * (row += rows)), width, rows)));
  return assemblePng(width, row, bands);
}

describe('pngBand and assemblePng', () => {
  it('write a PNG that decodes to the same pixels, with alpha made straight', async () => {
    // 2×2: opaque red, transparent, 50 % green (premultiplied: 0,64,0,128), 25 % white (64,64,64,64).
    const premultiplied = Buffer.from([255, 0, 0, 255, 0, 0, 0, 0, 0, 64, 0, 128, 64, 64, 64, 64]);
    const image = decodePng(await inBands(premultiplied, 2, [2]));
    expect([image.width, image.height]).toEqual([2, 2]);
    expect([...image.data]).toEqual([255, 0, 0, 255, 0, 0, 0, 0, 0, 128, 0, 128, 255, 255, 255, 64]);
  });

  it('join bands cut anywhere into one image, whose checksums hold (the decoder checks them)', async () => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="50"><rect x="2.5" y="3.3" width="50" height="40" rx="9" fill="#d1490f"/><circle cx="30" cy="25" r="12" fill="#1a7f37" fill-opacity="0.7"/></svg>';
    const { pixels, width, height } = new Resvg(svg).render();
    const whole = decodePng(await inBands(pixels, width, [height]));
    for (const cuts of [[25, 25], [1, 48, 1], [0, 50], [13, 0, 20, 17]]) {
      const banded = decodePng(await inBands(pixels, width, cuts));
      expect(Buffer.compare(banded.data, whole.data)).toBe(0);
    }
  });

  it('join bands whose deflated data spans many of zlib’s output chunks', async () => {
    const [width, height] = [300, 200];
    const noise = Buffer.alloc(width * height * 4, 255); // opaque, random colours: deflate can barely shrink them
    let seed = 0x9e3779b9;
    for (let i = 0; i < noise.length; i++) {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      if (i % 4 !== 3) noise[i] = seed & 0xff;
    }
    const png = await inBands(noise, width, [70, 130]);
    expect(png.length).toBeGreaterThan(150_000);
    expect(Buffer.compare(decodePng(png).data, noise)).toBe(0);
  });

  it('agree with resvg’s own encoder on a drawing with soft edges', async () => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="30"><rect x="2.5" y="3.3" width="30" height="20" rx="7" fill="#d1490f" fill-opacity="0.6"/><circle cx="20" cy="15" r="6" fill="#1a7f37"/></svg>';
    const rendered = new Resvg(svg).render();
    const ours = decodePng(await inBands(rendered.pixels, rendered.width, [10, 20]));
    const theirs = decodePng(rendered.asPng());
    expect([ours.width, ours.height]).toEqual([theirs.width, theirs.height]);
    // Rounding of the un-premultiplied channels may differ by one.
    const worst = ours.data.reduce((max, value, i) => Math.max(max, Math.abs(value - (theirs.data[i] as number))), 0);
    expect(worst).toBeLessThanOrEqual(1);
  });

  it('refuse pixels that are not width × height RGBA, and bands that are not the image', async () => {
    await expect(pngBand(Buffer.alloc(15), 2, 2)).rejects.toThrow(/not 2×2 RGBA/);
    const band = await pngBand(Buffer.alloc(16), 2, 2);
    expect(() => assemblePng(2, 3, [band])).toThrow(/not 2×3 RGBA rows/);
  });
});

describe('adler32Combine', () => {
  it('is the checksum of the two parts one after the other', () => {
    const a = Buffer.from('the quota card, ');
    const b = Buffer.alloc(200_000, 'drawn in bands. ');
    for (const [x, y] of [[a, b], [b, a], [a, Buffer.alloc(0)], [Buffer.alloc(0), b], [b, b]] as const) {
      expect(adler32Combine(adler32(x), adler32(y), y.length)).toBe(adler32(Buffer.concat([x, y])));
    }
  });
});
