/**
 * Runtime validation with zod's tree-shakable "mini" build and English messages only: the full build costs the
 * Lambda bundles ~440 KB. (The CDK configuration in lib/ uses the full build; its size does not matter there.)
 */
import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';

z.config(en());

export { z };

/** The first problem of a failed parse, as `path: message` (or just the message for the whole value). */
export function firstIssue(error: z.core.$ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid';
  return issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message;
}
