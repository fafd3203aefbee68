/**
 * Request-body parsing beyond Fastify's defaults. Bodies are parsed by Fastify's own JSON parser
 * (`application/json`; prototype poisoning refused with 400: `__proto__` and `constructor.prototype`
 * keys, see Fastify's docs/Reference/Server.md `onProtoPoisoning`), then refused with 400 when
 * they nest deeper than `MAX_JSON_DEPTH`: every later walk of a document (JSON.stringify when it
 * is stored, the render of a packument) recurses, and a body 10,000 levels deep would overflow
 * the stack there.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { badRequest } from '../registry/errors.js'

/** Deepest nesting of objects and arrays a JSON body may have (real npm documents nest < 20). */
export const MAX_JSON_DEPTH = 1000

/** Whether `doc` nests objects and arrays more than `limit` levels deep (walked without recursion). */
export function nestedDeeperThan(doc: unknown, limit: number): boolean {
  if (typeof doc !== 'object' || doc === null) return false
  const todo: [object, number][] = [[doc, 1]]
  for (let next = todo.pop(); next !== undefined; next = todo.pop()) {
    const [v, depth] = next
    if (depth > limit) return true
    for (const child of Object.values(v)) if (typeof child === 'object' && child !== null) todo.push([child as object, depth + 1])
  }
  return false
}

type Done = (err: Error | null, body?: unknown) => void

/**
 * Replaces `scope`'s `application/json` parser with Fastify's default one followed by the depth
 * check; with `allowEmpty`, an empty body parses to `undefined` instead of failing with 400
 * (FST_ERR_CTP_EMPTY_JSON_BODY): npm's unpublish DELETEs carry no body.
 */
export function jsonBodies(scope: FastifyInstance, o: { allowEmpty?: boolean } = {}): void {
  const json = scope.getDefaultJsonParser('error', 'error')
  scope.removeContentTypeParser('application/json')
  scope.addContentTypeParser('application/json', { parseAs: 'string' }, (req: FastifyRequest, body: string | Buffer, done: Done) => {
    if (o.allowEmpty && body === '') {
      done(null, undefined)
      return
    }
    void json(req, body as string, (err: Error | null, doc?: unknown) => {
      if (err) return done(err)
      if (nestedDeeperThan(doc, MAX_JSON_DEPTH)) return done(badRequest(`The JSON body nests deeper than ${MAX_JSON_DEPTH} levels.`))
      done(null, doc)
    })
  })
}

/** `jsonBodies(scope, { allowEmpty: true })`: npm's DELETEs without a body. */
export function allowEmptyBody(scope: FastifyInstance): void {
  jsonBodies(scope, { allowEmpty: true })
}
