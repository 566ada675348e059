import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { APP_LIST_FILE, formatAppList } from '../../functions/handlers/config.js';

/** The planner's app list as the stack bundles it, written into `dir`: its path, for APPS_FILE. */
export async function writeAppList(dir: string, apps: readonly string[]): Promise<string> {
  const file = path.join(dir, APP_LIST_FILE);
  await writeFile(file, formatAppList(apps));
  return file;
}
