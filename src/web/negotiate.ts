/**
 * Who gets the web UI at `/`: a GET or HEAD of the root whose `Accept` names `text/html`, as every
 * browser's navigation request does (Fetch standard, "navigate" requests send
 * `text/html,application/xhtml+xml,…`). npm, pnpm, yarn, bun and curl do not, and keep getting
 * the JSON root document.
 */

/**
 * Whether a request for `url` should be answered with the home page.
 * @param url the path and query, after the configured path prefix was removed
 */
export function wantsHtmlRoot(method: string | undefined, url: string, accept: string | undefined): boolean {
  if (method !== 'GET' && method !== 'HEAD') return false
  if (url !== '/' && !url.startsWith('/?')) return false
  return accept !== undefined && /(^|,)\s*text\/html\s*(;|,|$)/i.test(accept)
}
