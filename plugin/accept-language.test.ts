import { describe, expect, it } from 'vitest';
import { localeFromAcceptLanguage } from './accept-language.js';

describe('localeFromAcceptLanguage', () => {
  it.each([
    [undefined, 'en'],
    ['', 'en'],
    ['*', 'en'],
    ['zh', 'zh'],
    ['zh-CN,zh;q=0.9,en;q=0.8', 'zh'],
    ['ZH-hant-TW', 'zh'],
    ['en-US,en;q=0.9,zh-CN;q=0.8', 'en'],
    // By weight, not by position; equal weights keep the header's order.
    ['en;q=0.5, zh-CN', 'zh'],
    ['zh;q=0.7, en;q=0.7', 'zh'],
    // The first language the card speaks: French is not one, Chinese is next.
    ['fr-FR, zh;q=0.5', 'zh'],
    ['fr, de', 'en'],
    ['zh;q=0, en', 'en'], // q=0: "not this one"
    ['zhx, zh-', 'zh'], // "zhx" is another language; "zh-" is a malformed Chinese tag
    ['zh;q=abc', 'zh'], // a weight that is not a number counts as 1
  ])('%j → %s', (header, locale) => {
    expect(localeFromAcceptLanguage(header)).toBe(locale);
  });
});
