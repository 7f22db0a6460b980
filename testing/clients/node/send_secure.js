'use strict';
// Send numbered events with npm `fluent-logger`'s shared-key handshake (`security`), optionally
// over TLS. Used by host/tests/forward_output.rs. Usage:
//   node send_secure.js --address host:port --tag T --count N --shared-key K
//                       --client-hostname H [--mode Message|PackedForward|CompressedPackedForward]
//                       [--tls-ca FILE --tls-servername NAME]
//
// Event i (0-based): time = EventTime(1700000000 + i, 0), record {"seq": i, "msg": "secure <i>"}.
// The script exits 0 once every event is written and the connection closed, and 1 with the
// client's error (e.g. "Authentication failed: shared_key mismatch") otherwise.
//
// No requireAckResponse: fluent-logger 3.4.1 loses acks after a handshake. The handshake
// leaves the socket flowing (`resume()` after its `once('data')` listeners), and the ack
// listener is only attached in the write callback, so an ack that arrives before that callback
// is emitted to no listener and the client reports "ack response timeout" (seen every time
// over TLS with the packed modes, where the write callback comes later).

const fs = require('fs');
const { createFluentSender, EventTime } = require('fluent-logger');

const BASE_SECONDS = 1700000000;
const GIVE_UP_MS = 60000;

function parseArgs(argv) {
  const args = { mode: 'Message' };
  for (let i = 0; i < argv.length; i += 2) {
    args[argv[i].replace(/^--/, '')] = argv[i + 1];
  }
  for (const required of ['address', 'tag', 'count', 'shared-key', 'client-hostname']) {
    if (args[required] === undefined) {
      throw new Error(`missing --${required}`);
    }
  }
  return args;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const sep = args.address.lastIndexOf(':');
  const options = {
    host: args.address.slice(0, sep),
    port: Number(args.address.slice(sep + 1)),
    eventMode: args.mode,
    requireAckResponse: false,
    enableReconnect: false,
    security: { clientHostname: args['client-hostname'], sharedKey: args['shared-key'] },
    internalLogger: { info() {}, error() {} },
  };
  if (args['tls-ca']) {
    options.tls = true;
    options.tlsOptions = {
      ca: fs.readFileSync(args['tls-ca']),
      servername: args['tls-servername'],
    };
  }
  const logger = createFluentSender(args.tag, options);
  const failed = new Promise((_, reject) => {
    logger.on('error', (err) => reject(err));
  });
  const count = Number(args.count);
  const written = new Promise((resolve, reject) => {
    let pending = count;
    for (let i = 0; i < count; i++) {
      logger.emit({ seq: i, msg: `secure ${i}` }, new EventTime(BASE_SECONDS + i, 0), (err) => {
        if (err) {
          reject(err);
        } else if (--pending === 0) {
          resolve();
        }
      });
    }
  });
  const timeout = new Promise((_, reject) => {
    setTimeout(() => reject(new Error(`not all events written within ${GIVE_UP_MS} ms`)), GIVE_UP_MS).unref();
  });
  await Promise.race([written, failed, timeout]);
  await new Promise((resolve) => logger.end(null, null, resolve));
  console.error(`sent ${count} events`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err.message || err);
    process.exit(1);
  },
);
