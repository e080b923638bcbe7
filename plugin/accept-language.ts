import type { Locale } from './quota-markdown.js';

/**
 * The locale for a caller who did not name one: the first language of `Accept-Language`, by
 * preference, that the card speaks (`zh`, `zh-CN`, `zh-Hant`… are Chinese; `en-*` English), else
 * English. "fr, zh;q=0.5" is Chinese: French is not offered, Chinese is the next choice.
 */
export function localeFromAcceptLanguage(header: string | undefined): Locale {
  if (header === undefined) return 'en';
  const ranked = header
    .split(',')
    .map((part, index) => {
      const [tag = '', ...params] = part.trim().split(';');
      const q = params.map((p) => /^\s*q\s*=\s*([\d.]+)\s*$/i.exec(p)?.[1]).find((v) => v !== undefined);
      return { tag: tag.trim().toLowerCase(), q: q === undefined ? 1 : Number(q), index };
    })
    .filter((entry) => entry.q > 0)
    // Stable on ties: the header's own order decides between equal weights.
    .sort((a, b) => b.q - a.q || a.index - b.index);
  for (const { tag } of ranked) {
    if (tag === 'zh' || tag.startsWith('zh-')) return 'zh';
    if (tag === 'en' || tag.startsWith('en-')) return 'en';
  }
  return 'en';
}
