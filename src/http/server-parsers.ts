/**
 * Request-body parsing beyond Fastify's defaults. Bodies are parsed by Fastify's own JSON parser
 * (`application/json`; prototype poisoning refused with 400: `__proto__` and `constructor.prototype`
 * keys, see Fastify's docs/Reference/Server.md `onProtoPoisoning`).
 */
import type { FastifyInstance } from 'fastify'

/**
 * In `scope` only, an empty `application/json` body parses to `undefined` instead of failing with
 * 400 (FST_ERR_CTP_EMPTY_JSON_BODY): npm's unpublish DELETEs carry no body.
 */
export function allowEmptyBody(scope: FastifyInstance): void {
  const json = scope.getDefaultJsonParser('error', 'error')
  scope.removeContentTypeParser('application/json')
  scope.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if (body === '') {
      done(null, undefined)
      return
    }
    void json(req, body as string, done)
  })
}
