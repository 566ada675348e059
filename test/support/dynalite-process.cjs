// Runs dynalite (DynamoDB on LevelDB) in its own process on a free loopback port and prints {"port": n}.
// argv[2]: a directory for its LevelDB store (in memory when absent).
const dynalite = require('dynalite');

const server = dynalite({ path: process.argv[2], createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
