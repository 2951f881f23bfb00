// Types for the one untyped npm package a test worker bundles (test/workers/cli-engines.ts).
declare module 'abbrev' {
  export default function abbrev(words: string[]): Record<string, string>;
}
