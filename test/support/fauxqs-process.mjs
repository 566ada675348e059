// Runs fauxqs (an SQS emulator) in its own process on a free loopback port and prints {"port": n}.
import { startFauxqs } from 'fauxqs';

const server = await startFauxqs({ port: 0, logger: false });
process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);
process.on('SIGTERM', () => {
  server.stop().finally(() => process.exit(0));
});
