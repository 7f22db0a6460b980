'use strict';
// Send numbered events to a forward-protocol receiver with npm `fluent-logger`.
//
// Used by host/tests/forward_clients.rs. Usage:
//   node send.js --address host:port|unix:///path --tag T --count N --rounds R
//                --mode Message|PackedForward|CompressedPackedForward [--ack]
//                --time int|eventtime --base-ns NS
//
// Event i (0-based):
//   time   int:       integer seconds floor(base_ns / 1e9) + i
//          eventtime: EventTime of base_ns + i * 1_000_003 ns
//   record {"seq": i, "msg": "node event <i>", "tags": ["a", "b"], "ok": true, "ratio": 0.25}
//
// The events go out in R rounds; each round is emitted at once (one PackedForward request
// per round) and the next waits until every event of the round reported success (after its
// ack with --ack). Any error exits 1.

const { createFluentSender, EventTime } = require('fluent-logger');

const TIME_STEP_NS = 1000003n;

function parseArgs(argv) {
  const args = { ack: false, rounds: 1 };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '');
    if (key === 'ack') {
      args.ack = true;
    } else {
      args[key] = argv[++i];
    }
  }
  for (const required of ['address', 'tag', 'count', 'mode', 'time', 'base-ns']) {
    if (args[required] === undefined) {
      throw new Error(`missing --${required}`);
    }
  }
  return args;
}

function eventTime(args, i) {
  const base = BigInt(args['base-ns']);
  if (args.time === 'int') {
    return Number(base / 1000000000n) + i;
  }
  const ns = base + BigInt(i) * TIME_STEP_NS;
  return new EventTime(Number(ns / 1000000000n), Number(ns % 1000000000n));
}

function record(i) {
  return { seq: i, msg: `node event ${i}`, tags: ['a', 'b'], ok: true, ratio: 0.25 };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const options = {
    eventMode: args.mode,
    requireAckResponse: args.ack,
    ackResponseTimeout: 30000,
    enableReconnect: false,
    internalLogger: { info() {}, error: console.error },
  };
  if (args.address.startsWith('unix://')) {
    options.path = args.address.slice('unix://'.length);
  } else {
    const sep = args.address.lastIndexOf(':');
    options.host = args.address.slice(0, sep);
    options.port = Number(args.address.slice(sep + 1));
  }
  const logger = createFluentSender(args.tag, options);
  const count = Number(args.count);
  const rounds = Number(args.rounds);
  const perRound = Math.ceil(count / rounds);
  for (let start = 0; start < count; start += perRound) {
    const end = Math.min(count, start + perRound);
    await new Promise((resolve, reject) => {
      let pending = end - start;
      for (let i = start; i < end; i++) {
        logger.emit(record(i), eventTime(args, i), (err) => {
          if (err) {
            reject(new Error(`event ${i}: ${err.message || err}`));
          } else if (--pending === 0) {
            resolve();
          }
        });
      }
    });
  }
  await new Promise((resolve) => logger.end(null, null, resolve));
  console.error(`sent ${count} events`);
}

main().catch((err) => {
  console.error(err.message || err);
  process.exit(1);
});
