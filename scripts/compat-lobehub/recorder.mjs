// A transparent HTTP relay between LobeChat and lobe-quota that writes down what LobeChat sends
// (method, path, headers, body) and what it got back (status, headers, and the body of whole answers). Bytes go through unchanged and unbuffered, the Host header too,
// so lobe-quota builds its URLs (the manifest's) for the relay and LobeChat keeps coming back here.
import { createServer, request } from 'node:http';

const MAX_BODY_CHARS = 64 * 1024;

export async function startRecorder(target) {
  const targetUrl = new URL(target);
  const records = [];
  const server = createServer((req, res) => {
    const record = { method: req.method, path: req.url, headers: { ...req.headers }, body: '', status: null, responseHeaders: null, responseBody: '' };
    records.push(record);
    req.on('data', (chunk) => {
      if (record.body.length < MAX_BODY_CHARS) record.body += chunk.toString('utf8');
    });
    const upstream = request(
      { host: targetUrl.hostname, port: targetUrl.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        record.status = answer.statusCode;
        record.responseHeaders = { ...answer.headers };
        res.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
        res.flushHeaders();
        // Whole answers (errors, manifests) are kept; streams are only passed on.
        if (!String(answer.headers['content-type'] ?? '').includes('text/event-stream')) {
          answer.on('data', (chunk) => {
            if (record.responseBody.length < MAX_BODY_CHARS) record.responseBody += chunk.toString('utf8');
          });
        }
        answer.pipe(res);
      },
    );
    upstream.on('error', (error) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`recorder: ${error.message}`);
    });
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    records,
    /** Records from `from` on whose path starts with `prefix`. */
    since: (from, prefix = '') => records.slice(from).filter((r) => r.path.startsWith(prefix)),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
