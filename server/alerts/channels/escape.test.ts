import { describe, expect, it } from 'vitest';
import { clip, escapeHtml, escapeMarkdown, escapeSlack, plainText } from './escape.js';

describe('escapers', () => {
  it('keep user text on one line', () => {
    for (const escape of [plainText, escapeSlack, escapeMarkdown, escapeHtml]) {
      expect(escape('a\r\nb\tc\u2028d')).toBe('a b c d');
    }
  });

  it('slack: only &, < and >', () => {
    expect(escapeSlack('<!here> & *bold* _x_')).toBe('&lt;!here&gt; &amp; *bold* _x_');
  });

  it('markdown: formatting punctuation, raw HTML, but not intraword underscores', () => {
    expect(escapeMarkdown('*a* _b_ `c` ~d~ [e](f) # g! | h \\ <font> &')).toBe(
      '\\*a\\* \\_b\\_ \\`c\\` \\~d\\~ \\[e\\]\\(f\\) \\# g\\! \\| h \\\\ &lt;font&gt; &amp;',
    );
    expect(escapeMarkdown('alert_0b6e key_abc gpt-4o-mini 模型_一')).toBe('alert_0b6e key_abc gpt-4o-mini 模型_一');
    expect(escapeMarkdown('_lead trail_ a__b')).toBe('\\_lead trail\\_ a\\_\\_b');
  });

  it('html: text and attribute values', () => {
    expect(escapeHtml(`<a href="x" onclick='y'>&</a>`)).toBe('&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
  });

  it('clip', () => {
    expect(clip('abcdef', 4)).toBe('abc…');
    expect(clip('abcd', 4)).toBe('abcd');
  });
});
