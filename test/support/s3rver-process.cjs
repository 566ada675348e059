// Runs s3rver (a disk-backed S3 emulator) in its own process on a free loopback port and prints {"port": n}.
// Started with --openssl-legacy-provider: s3rver's ListObjectsV2 continuation tokens need it on Node 20.
const S3rver = require('s3rver');

const directory = process.argv[2];
const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [] });
server.run().then(
  (address) => process.stdout.write(`${JSON.stringify({ port: address.port })}\n`),
  (error) => {
    process.stderr.write(`s3rver failed to start: ${error.stack}\n`);
    process.exit(1);
  },
);
process.on('SIGTERM', () => server.close().finally(() => process.exit(0)));
