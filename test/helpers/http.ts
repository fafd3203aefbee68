/**
 * One raw HTTP exchange for tests that compare answers byte for byte: no redirect followed, no
 * decompression, no header added by a fetch implementation (undici's fetch adds
 * `cache-control: no-cache` to conditional requests, for one).
 */
import { request, type IncomingHttpHeaders } from 'node:http'

/** An answer as it came off the socket. */
export interface RawResponse {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
}

/**
 * Sends one request to `path` below `base` (a URL ending in `/`).
 * @param body sent as is (set the content-type header yourself)
 */
export function raw(base: string, path: string, headers: Record<string, string> = {}, method = 'GET', body?: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path.replace(/^\//, ''), base), { method, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}
