import { randomBytes } from 'node:crypto';

/**
 * The small pages of one-click links: a confirmation (GET changes nothing: its button POSTs the
 * same signed parameters) and an outcome. Every piece of text is escaped; the CSP allows nothing
 * but this page's own style (by nonce) and a form posted back to this origin.
 */

const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch] as string);

export interface Page {
  status: 200 | 400 | 403 | 404 | 409 | 410;
  html: string;
  headers: Record<string, string>;
}

function page(status: Page['status'], title: string, body: string, nonce: string): Page {
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>${escapeHtml(title)} · lobe-quota</title>
<style nonce="${nonce}">body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1f2328}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{color:#59636e}dd{margin:0;overflow-wrap:anywhere}
button{font:inherit;padding:.5rem 1.25rem;border-radius:6px;border:1px solid #1f2328;background:#1f2328;color:#fff;cursor:pointer}</style>
</head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
  return {
    status,
    html,
    headers: {
      'Content-Security-Policy': `default-src 'none'; style-src 'nonce-${nonce}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
      'Cache-Control': 'no-store',
      'Referrer-Policy': 'no-referrer',
      'X-Content-Type-Options': 'nosniff',
    },
  };
}

const newNonce = (): string => randomBytes(16).toString('base64');

export interface ConfirmFacts {
  action: 'approve' | 'deny';
  requestId: string;
  who: string;
  budget: string;
  amount: string;
  reason: string | null;
  expires: string;
  /** The signed parameters, posted back as they came. */
  fields: Record<string, string>;
}

export function confirmPage(f: ConfirmFacts): Page {
  const verb = f.action === 'approve' ? 'Approve' : 'Deny';
  const rows: Array<[string, string]> = [
    ['Request', f.requestId],
    ['From', f.who],
    ['Budget', f.budget],
    [f.action === 'approve' ? 'Grant' : 'Asked for', f.amount],
    ...(f.reason === null ? [] : ([['Reason', f.reason]] as Array<[string, string]>)),
    ['Link expires', f.expires],
  ];
  const hidden = Object.entries(f.fields)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join('');
  const body = `<dl>${rows.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('')}</dl>
<form method="post">${hidden}<button type="submit">${verb}</button></form>`;
  return page(200, `${verb} this request?`, body, newNonce());
}

export const outcomePage = (status: Page['status'], title: string, text: string): Page => page(status, title, `<p>${escapeHtml(text)}</p>`, newNonce());
