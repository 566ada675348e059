import { inject } from 'vitest';
import { type SynthesizedDeployment, synthesizeOnce } from './synth.js';

let synthesized: Promise<SynthesizedDeployment> | undefined;

/** The stack synthesized once per test run (its directory comes from the global setup, which removes it). */
export function synthesizedDeployment(): Promise<SynthesizedDeployment> {
  synthesized ??= synthesizeOnce(inject('deploymentDir'));
  return synthesized;
}
