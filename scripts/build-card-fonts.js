// `node scripts/build-card-fonts.js`: makes the fonts the quota card image is drawn with
// (plugin/card-image), into assets/fonts/. Run it again only to change which fonts or characters
// ship; its output is committed, so neither the server nor `npm ci` runs it.
//
// The image never uses the host's fonts (a server may have none, or others than a developer's), so
// the package carries its own: Inter for Latin text and figures, and Noto Sans SC for Chinese. The
// whole Noto Sans SC is 6 MB a weight; the card needs GB2312 level 1 (the 3,755 most common Hanzi,
// which every fixed string of the card uses, see card-text.test.ts) and Latin, Greek, Cyrillic and
// punctuation for names, which cuts it to about 0.75 MB a weight. Both come from the npm registry:
// the packages are fetched with `npm pack` into a temporary folder, and subset-font (harfbuzz's
// hb-subset) is installed there too, so none of it becomes a dependency of lobe-quota.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'assets', 'fonts');

const INTER = '@fontsource/inter@5.3.0';
const NOTO_SC = '@openfonts/noto-sans-sc_all@1.44.1';
const NOTO_COPYRIGHT =
  "Copyright 2014-2021 Adobe (http://www.adobe.com/), with Reserved Font Name 'Source'. " +
  'Source is a trademark of Adobe in the United States and/or other countries.';
const SUBSET_FONT = 'subset-font@2.9.0';
const WEIGHTS = [400, 700];

/** GB2312 level 1: rows 0xB0–0xD7 of the GB2312 table, decoded by the GBK decoder ICU ships with Node. */
export function gb2312Level1() {
  const decoder = new TextDecoder('gbk');
  let text = '';
  for (let row = 0xb0; row <= 0xd7; row++) {
    // Row 0xD7 ends at 0xF9: its last five cells are empty.
    const last = row === 0xd7 ? 0xf9 : 0xfe;
    for (let cell = 0xa1; cell <= last; cell++) text += decoder.decode(new Uint8Array([row, cell]));
  }
  return text;
}

/** Code point ranges kept beside the Hanzi: what names and the card's own punctuation use. */
export const KEPT_RANGES = [
  [0x0020, 0x007e], // ASCII
  [0x00a0, 0x024f], // Latin-1, Latin Extended-A and -B
  [0x0370, 0x03ff], // Greek
  [0x0400, 0x045f], // Cyrillic
  [0x2000, 0x206f], // general punctuation: dashes, quotes, ellipsis, bullets
  [0x3000, 0x303f], // CJK punctuation: 、。「」
  [0xff00, 0xffef], // full-width forms: ，：（）
];

function rangeText() {
  let text = '';
  for (const [from, to] of KEPT_RANGES) for (let cp = from; cp <= to; cp++) text += String.fromCodePoint(cp);
  return text;
}

/** Unpacks `spec` from the npm registry into `dir`/<name> and returns that folder. */
function npmPack(spec, dir, name) {
  const tarball = execFileSync('npm', ['pack', spec, '--silent', '--pack-destination', dir], { encoding: 'utf8' }).trim().split('\n').pop();
  const target = path.join(dir, name);
  mkdirSync(target);
  execFileSync('tar', ['-xzf', path.join(dir, tarball), '-C', target, '--strip-components=1']);
  return target;
}

const kib = (file) => `${(statSync(file).size / 1024).toFixed(0)} KiB`;

async function main() {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'lobe-quota-fonts-'));
  try {
    const inter = npmPack(INTER, tmp, 'inter');
    const noto = npmPack(NOTO_SC, tmp, 'noto-sans-sc');
    execFileSync('npm', ['install', '--silent', '--no-save', '--no-package-lock', '--prefix', tmp, SUBSET_FONT], { stdio: 'inherit' });
    const { default: subsetFont } = await import(pathToFileURL(path.join(tmp, 'node_modules', 'subset-font', 'index.js')).href);

    mkdirSync(out, { recursive: true });
    const characters = gb2312Level1() + rangeText();
    for (const weight of WEIGHTS) {
      // Inter's Latin slice is already small (31 KiB): shipped as Fontsource builds it.
      const interFile = path.join(out, `inter-latin-${weight}.woff`);
      copyFileSync(path.join(inter, 'files', `inter-latin-${weight}-normal.woff`), interFile);

      const source = readFileSync(path.join(noto, 'files', `noto-sans-sc-all-${weight}.woff`));
      // No hinting: the card is rendered at 2x, where hints change nothing visible.
      const subset = await subsetFont(source, characters, { targetFormat: 'woff', noHinting: true });
      const notoFile = path.join(out, `noto-sans-sc-card-${weight}.woff`);
      writeFileSync(notoFile, subset);
      console.log(`${path.relative(root, interFile)} ${kib(interFile)}, ${path.relative(root, notoFile)} ${kib(notoFile)}`);
    }
    const interLicense = readFileSync(path.join(inter, 'LICENSE'), 'utf8');
    writeFileSync(path.join(out, 'LICENSE-Inter.txt'), interLicense);
    // The Noto package ships no licence file of its own (its MIT licence covers the packaging):
    // the font's, OFL 1.1, is Inter's text under the copyright line the font's name table carries.
    const ofl = interLicense.slice(interLicense.indexOf('This Font Software is licensed'));
    writeFileSync(path.join(out, 'LICENSE-NotoSansSC.txt'), `${NOTO_COPYRIGHT}\n\n${ofl}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
