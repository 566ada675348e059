/**
 * Runtime validation uses zod's tree-shakable "mini" build with English messages only: the full build costs the
 * Lambda bundles ~440 KB. Import this module once (for its side effect) wherever `zod/mini` is used, and import
 * `zod/mini` itself as a namespace (`import * as z`) so that esbuild keeps only what is used.
 * (The CDK configuration in lib/ uses the full build; its size does not matter there.)
 */
import { config } from 'zod/mini';
import en from 'zod/v4/locales/en.js';

config(en());

/** The first problem of a failed parse, as `path: message` (or just the message for the whole value). */
export function firstIssue(error: { readonly issues: readonly { path: PropertyKey[]; message: string }[] }): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid';
  return issue.path.length ? `${issue.path.map(String).join('.')}: ${issue.message}` : issue.message;
}
