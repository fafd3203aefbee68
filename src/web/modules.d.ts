// markdown-it-task-lists 2.1.1 ships no types: the plugin signature readme-engine.ts uses.
declare module 'markdown-it-task-lists' {
  import type MarkdownIt from 'markdown-it'
  /** Renders `- [ ]` / `- [x]` list items as checkboxes (disabled unless `enabled`; wrapped in a label with `label`). */
  const taskLists: (md: MarkdownIt, options?: { enabled?: boolean; label?: boolean; labelAfter?: boolean }) => void
  export default taskLists
}
