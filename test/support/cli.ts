import type { CliIo } from '../../functions/cli/io.js';
import { main } from '../../functions/cli/program.js';

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run the CLI in process with captured output. */
export async function runCli(
  args: string[],
  env: Record<string, string | undefined> = {},
  now = Date.now,
): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
    env,
    now,
    interactive: false,
  };
  const code = await main(args, io);
  return { code, stdout, stderr };
}
