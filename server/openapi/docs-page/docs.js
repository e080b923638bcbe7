// Renders /openapi.json as a list of routes: no framework, no CDN, and only textContent (never
// innerHTML), so nothing in the document can become markup.
'use strict';

const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) if (child != null) node.append(child);
  return node;
};

/** Follows a local `$ref` ("#/components/schemas/X") into the document. */
const resolve = (doc, schema) =>
  schema && typeof schema.$ref === 'string'
    ? schema.$ref.slice(2).split('/').reduce((at, key) => (at ? at[key] : undefined), doc)
    : schema;

const schemaBlock = (doc, schema) => {
  const name = schema && schema.$ref ? schema.$ref.split('/').pop() : null;
  return el('details', {}, el('summary', { textContent: name ? `schema ${name}` : 'schema' }),
    el('pre', { textContent: JSON.stringify(resolve(doc, schema), null, 2) }));
};

const securityText = (security) =>
  !security || security.length === 0 ? 'no token' : security.map((s) => Object.keys(s).join(' + ')).join(' or ');

function renderOperation(doc, path, method, op) {
  const section = el('section', { className: 'op' },
    el('div', {}, el('span', { className: `method ${method}`, textContent: method.toUpperCase() }), el('code', { textContent: path }),
      ' ', el('span', { textContent: op.summary || '' })),
    el('div', { className: 'auth', textContent: `auth: ${securityText(op.security)}` }));
  if (op.description) section.append(el('p', { textContent: op.description }));
  if (op.parameters && op.parameters.length > 0) {
    const table = el('table', {}, el('tr', {}, el('th', { textContent: 'parameter' }), el('th', { textContent: 'in' }), el('th', { textContent: 'description' })));
    for (const p of op.parameters) {
      const type = p.schema && (p.schema.type || (p.schema.enum && p.schema.enum.join(' | '))) || '';
      table.append(el('tr', {}, el('td', {}, el('code', { textContent: `${p.name}${p.required ? '' : '?'}` })),
        el('td', { textContent: p.in }), el('td', { textContent: [type && `(${type})`, p.description || ''].filter(Boolean).join(' ') })));
    }
    section.append(table);
  }
  if (op.requestBody) {
    for (const [type, media] of Object.entries(op.requestBody.content || {})) {
      section.append(el('p', { textContent: `body (${type})${op.requestBody.description ? `: ${op.requestBody.description}` : ''}` }));
      if (media.example !== undefined) section.append(el('pre', { textContent: typeof media.example === 'string' ? media.example : JSON.stringify(media.example, null, 2) }));
      if (media.schema && media.schema.$ref) section.append(schemaBlock(doc, media.schema));
    }
  }
  const list = el('ul');
  for (const [status, r] of Object.entries(op.responses || {})) {
    const item = el('li', {}, el('code', { textContent: status }), ` ${r.description}`);
    for (const media of Object.values(r.content || {})) if (media.schema && media.schema.$ref) item.append(schemaBlock(doc, media.schema));
    list.append(item);
  }
  section.append(list);
  return section;
}

async function main() {
  const root = document.getElementById('routes');
  try {
    const response = await fetch('/openapi.json');
    if (!response.ok) throw new Error(`GET /openapi.json answered ${response.status}`);
    const doc = await response.json();
    document.getElementById('title').textContent = `${doc.info.title} ${doc.info.version} API`;
    const byTag = new Map();
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const tag = (op.tags && op.tags[0]) || 'other';
        if (!byTag.has(tag)) byTag.set(tag, []);
        byTag.get(tag).push(renderOperation(doc, path, method, op));
      }
    }
    root.replaceChildren();
    for (const tag of doc.tags || []) {
      const ops = byTag.get(tag.name);
      if (!ops) continue;
      root.append(el('h2', { textContent: tag.name }), el('p', { className: 'muted', textContent: tag.description || '' }), ...ops);
    }
  } catch (error) {
    root.replaceChildren(el('p', { textContent: `Could not load the API document: ${error.message}` }));
  }
}

main();
