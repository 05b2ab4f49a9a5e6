// A tiny scripted feed server for tests: real HTTP on 127.0.0.1, each path answering with a fixed status, headers
// and body (a string or bytes, or a function of the request for stateful answers). It records every request.

import http from 'node:http';

/**
 * @param {Record<string, { status?: number, headers?: Record<string,string>, body?: string | Uint8Array } |
 *   ((url: URL, req: import('node:http').IncomingMessage) => { status?: number, headers?: Record<string,string>, body?: string | Uint8Array })>} routes
 */
export async function startScriptedServer(routes) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    requests.push({ url, headers: req.headers });
    const route = routes[url.pathname];
    const answer = typeof route === 'function' ? route(url, req) : route;
    if (!answer) {
      res.writeHead(404).end('no such route');
      return;
    }
    res.writeHead(answer.status ?? 200, {
      'content-type': 'application/x-ndjson',
      'access-control-allow-origin': '*',
      ...answer.headers,
    });
    res.end(answer.body ?? '');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    base: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
