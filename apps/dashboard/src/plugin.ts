import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { loadStaticFiles, type StaticFile } from './static-files.js';

// The pages load only their own files and talk only to this origin's API.
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

function send(request: FastifyRequest, reply: FastifyReply, file: StaticFile) {
  // no-cache: revalidated on every load (a 304 costs nothing), so a deployment is seen at once.
  reply.headers({ ...SECURITY_HEADERS, 'content-type': file.type, etag: file.etag, 'cache-control': 'no-cache', vary: 'accept-encoding' });
  if (request.headers['if-none-match'] === file.etag) return reply.code(304).send();
  if (/\bgzip\b/.test(request.headers['accept-encoding'] ?? '')) {
    return reply.header('content-encoding', 'gzip').send(file.gzipped);
  }
  return reply.send(file.body);
}

/**
 * The admin dashboard: static HTML, CSS and ES modules, no build step. The files are public; the
 * data they show comes from /v1 with the admin key the page asks for. Register it under a prefix
 * (the API uses /admin).
 */
export const dashboard: FastifyPluginAsync = async (app) => {
  const files = await loadStaticFiles();
  const index = files.get('index.html')!;

  app.get('/', { schema: { hide: true } }, async (request, reply) => {
    // Relative URLs in the page need the trailing slash: /admin -> /admin/.
    const [pathname, query] = request.url.split(/\?(.*)/s);
    if (!pathname!.endsWith('/')) return reply.redirect(`${pathname}/${query ? `?${query}` : ''}`, 301);
    return send(request, reply, index);
  });

  app.get<{ Params: { '*': string } }>('/*', { schema: { hide: true } }, async (request, reply) => {
    const file = files.get(request.params['*']);
    return file ? send(request, reply, file) : reply.callNotFound();
  });
};
