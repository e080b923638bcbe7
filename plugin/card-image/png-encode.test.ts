import { Resvg } from '@resvg/resvg-js';
import { describe, expect, it } from 'vitest';
import { decodePng } from './card-png.test-util.js';
import { encodePng } from './png-encode.js';

describe('encodePng', () => {
  it('writes a PNG that decodes to the same pixels, with alpha made straight', async () => {
    // 2×2: opaque red, transparent, 50 % green (premultiplied: 0,64,0,128), 25 % white (64,64,64,64).
    const premultiplied = Buffer.from([255, 0, 0, 255, 0, 0, 0, 0, 0, 64, 0, 128, 64, 64, 64, 64]);
    const image = decodePng(await encodePng(premultiplied, 2, 2));
    expect([image.width, image.height]).toEqual([2, 2]);
    expect([...image.data]).toEqual([255, 0, 0, 255, 0, 0, 0, 0, 0, 128, 0, 128, 255, 255, 255, 64]);
  });

  it('agrees with resvg’s own encoder on a drawing with soft edges', async () => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="30"><rect x="2.5" y="3.3" width="30" height="20" rx="7" fill="#d1490f" fill-opacity="0.6"/><circle cx="20" cy="15" r="6" fill="#1a7f37"/></svg>';
    const rendered = new Resvg(svg).render();
    const ours = decodePng(await encodePng(rendered.pixels, rendered.width, rendered.height));
    const theirs = decodePng(rendered.asPng());
    expect([ours.width, ours.height]).toEqual([theirs.width, theirs.height]);
    // Rounding of the un-premultiplied channels may differ by one.
    const worst = ours.data.reduce((max, value, i) => Math.max(max, Math.abs(value - (theirs.data[i] as number))), 0);
    expect(worst).toBeLessThanOrEqual(1);
  });

  it('refuses pixels that are not width × height RGBA', async () => {
    await expect(encodePng(Buffer.alloc(15), 2, 2)).rejects.toThrow(/not 2×2 RGBA/);
  });
});
