#!/usr/bin/env node
import { processIo } from '../functions/cli/io.js';
import { main } from '../functions/cli/program.js';

process.exitCode = await main(process.argv.slice(2), processIo());
