/**
 * The README renderer (readme-engine.ts), loaded on first use: its modules (markdown-it,
 * highlight.js, sanitize-html) are about a quarter of Pier's module loading, so start-up does not
 * pay for them.
 */

/** Renders a README as sanitised HTML (readme-engine.ts `renderReadme`). */
export type ReadmeRenderer = (markdown: string, repository: unknown) => string

let renderer: Promise<ReadmeRenderer> | undefined

/**
 * The README renderer, its modules (markdown-it, highlight.js, sanitize-html) loaded at the first
 * call and kept: a page that shows a README awaits this first, so start-up does not pay for them.
 * @throws the import's error (then the next call tries again)
 */
export function readmeRenderer(): Promise<ReadmeRenderer> {
  renderer ??= import('./readme-engine.js').then(
    (m) => m.renderReadme,
    (e: unknown) => {
      renderer = undefined
      throw e
    },
  )
  return renderer
}
