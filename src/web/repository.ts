/**
 * A package's repository as the web UI uses it: its web page, and where a README's relative links
 * and images point (GitHub and GitLab layouts).
 */

/** Where a README's relative links and images point: a repository's web pages and raw files. */
export interface RepositoryBase {
  /** The repository's web page, `https://github.com/owner/repo` (no trailing slash). */
  web: string
  /** Prefix of a file's web page: `<web>/blob/HEAD/` plus the package's folder in the repository. */
  blob: string
  /** Prefix of a file's raw bytes (for images). */
  raw: string
}

/** Hosts whose URL layout `repositoryBase` knows. */
const HOSTS: Record<string, (owner: string, repo: string) => { blob: string; raw: string }> = {
  'github.com': (o, r) => ({ blob: `https://github.com/${o}/${r}/blob/HEAD/`, raw: `https://raw.githubusercontent.com/${o}/${r}/HEAD/` }),
  'gitlab.com': (o, r) => ({ blob: `https://gitlab.com/${o}/${r}/-/blob/HEAD/`, raw: `https://gitlab.com/${o}/${r}/-/raw/HEAD/` }),
}

/**
 * The web address of a manifest's `repository` (npm's forms, package.json docs "repository": a
 * URL string, `github:owner/repo`, `gitlab:owner/repo`, `owner/repo`, or `{ type, url, directory }`).
 * @returns the https web page, or undefined when it cannot be made one
 */
export function repositoryUrl(repository: unknown): string | undefined {
  return repositoryBase(repository)?.web ?? httpsOf(typeof repository === 'object' && repository !== null ? (repository as { url?: unknown }).url : repository)
}

/** An https URL from `git+https://…`, `https://…(.git)`; undefined otherwise. */
function httpsOf(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined
  const s = v.replace(/^git\+/, '').replace(/\.git$/, '')
  try {
    const u = new URL(s)
    return u.protocol === 'https:' ? u.href.replace(/\/$/, '') : undefined
  } catch {
    return undefined
  }
}

/**
 * Where relative README links go, for a repository on GitHub or GitLab.
 * @returns undefined for any other host, or when `repository` names none
 */
export function repositoryBase(repository: unknown): RepositoryBase | undefined {
  let url: unknown = repository
  let dir = ''
  if (typeof repository === 'object' && repository !== null) {
    url = (repository as { url?: unknown }).url
    const d = (repository as { directory?: unknown }).directory
    if (typeof d === 'string' && /^[\w.\-/]+$/.test(d) && !d.split('/').includes('..')) dir = d.replace(/^\/+|\/+$/g, '') + '/'
  }
  if (typeof url !== 'string') return undefined
  let host: string | undefined
  let path: string | undefined
  const short = /^(?:(github|gitlab):)?([\w.-]+)\/([\w.-]+)$/.exec(url)
  if (short) {
    host = `${short[1] ?? 'github'}.com`
    path = `${short[2]}/${short[3]}`
  } else {
    const m = /^(?:git\+)?(?:https?|ssh|git):\/\/(?:[^@/]+@)?([^/:]+)(?::\d+)?\/([\w.-]+\/[\w.-]+?)(?:\.git)?\/?$/.exec(url) ?? /^git@([^:]+):([\w.-]+\/[\w.-]+?)(?:\.git)?$/.exec(url)
    host = m?.[1]?.toLowerCase()
    path = m?.[2]
  }
  const layout = host ? HOSTS[host] : undefined
  if (!layout || !path) return undefined
  const [owner, repo] = path.split('/') as [string, string]
  const { blob, raw } = layout(owner, repo.replace(/\.git$/, ''))
  return { web: `https://${host}/${owner}/${repo.replace(/\.git$/, '')}`, blob: blob + dir, raw: raw + dir }
}
