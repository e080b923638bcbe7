import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Font } from 'satori';
import { projectRoot } from '../project-root.js';

/** The fonts scripts/build-card-fonts.js puts in assets/fonts (their sources and licences are there). */
const FONT_FILES: ReadonlyArray<{ name: string; file: string; weight: 400 | 700 }> = [
  { name: 'Inter', file: 'inter-latin-400.woff', weight: 400 },
  { name: 'Inter', file: 'inter-latin-700.woff', weight: 700 },
  { name: 'Noto Sans SC', file: 'noto-sans-sc-card-400.woff', weight: 400 },
  { name: 'Noto Sans SC', file: 'noto-sans-sc-card-700.woff', weight: 700 },
];

let loading: Promise<Font[]> | undefined;

/**
 * The card's fonts, read on the first render and kept: the same array every time, which satori
 * also keys its parsed fonts on, so each file is read and parsed once per thread (each of the
 * card's worker threads, see render-card). Never the host's fonts, so the image looks the same on
 * every server.
 */
export function cardFonts(): Promise<Font[]> {
  const dir = path.join(projectRoot(), 'assets', 'fonts');
  loading ??= Promise.all(
    FONT_FILES.map(async ({ name, file, weight }): Promise<Font> => ({ name, weight, style: 'normal', data: await readFile(path.join(dir, file)) })),
  ).catch((error: unknown) => {
    loading = undefined; // a later render tries again rather than failing forever
    throw error;
  });
  return loading;
}
