// kafka-node 5.0.0 scenarios: a client that speaks the protocol versions Kafka 4 removed
// (Produce v2 with message format v1, Fetch v2, ListOffsets v0, OffsetCommit v0 and
// OffsetFetch v0 from its simple consumer, CreateTopics v1, group APIs v0). Prints one
// "PASS name" or "FAIL name: reason" line per scenario; run.sh compares the outcomes.
//   node scenarios.js HOST:PORT TOPIC_PREFIX
'use strict';

const kafka = require('kafka-node');

const [host, prefix] = process.argv.slice(2);
const topic = `${prefix}-plain`;
const gzipTopic = `${prefix}-gzip`;
const STEP_MS = 20000;

function client() {
  return new kafka.KafkaClient({ kafkaHost: host, requestTimeout: 10000, connectRetryOptions: { retries: 1 } });
}

function withTimeout(name, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${STEP_MS} ms`)), STEP_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function closeClient(c) {
  return new Promise((resolve) => c.close(() => resolve()));
}

async function createTopics() {
  const c = client();
  try {
    const result = await new Promise((resolve, reject) => {
      c.createTopics(
        [topic, gzipTopic].map((t) => ({ topic: t, partitions: 1, replicationFactor: 1 })),
        (err, res) => (err ? reject(err) : resolve(res))
      );
    });
    if (result.length) throw new Error(`topic errors: ${JSON.stringify(result)}`);
  } finally {
    await closeClient(c);
  }
}

async function produce(t, attributes) {
  const c = client();
  const producer = new kafka.Producer(c, { requireAcks: 1 });
  try {
    await new Promise((resolve, reject) => {
      producer.on('ready', resolve);
      producer.on('error', reject);
    });
    const messages = [0, 1, 2, 3, 4].map((i) => new kafka.KeyedMessage(`k${i}`, `value-${i}`));
    const result = await new Promise((resolve, reject) => {
      producer.send([{ topic: t, partition: 0, messages, attributes }], (err, res) =>
        err ? reject(err) : resolve(res)
      );
    });
    const base = result[t] && result[t]['0'];
    if (base !== 0) throw new Error(`base offset ${JSON.stringify(result)}`);
  } finally {
    await closeClient(c);
  }
}

// The simple consumer from offset 0, with a group whose offsets it commits itself
// (OffsetCommit v0) and reads back (OffsetFetch v0).
async function consumeFromEarliest(t) {
  const c = client();
  const consumer = new kafka.Consumer(c, [{ topic: t, partition: 0, offset: 0 }], {
    groupId: `${prefix}-simple`,
    autoCommit: false,
    fromOffset: true,
    fetchMaxWaitMs: 100,
  });
  try {
    const seen = await new Promise((resolve, reject) => {
      const values = [];
      consumer.on('message', (m) => {
        values.push(`${m.offset}:${m.key}=${m.value}`);
        if (values.length === 5) resolve(values);
      });
      consumer.on('error', reject);
      consumer.on('offsetOutOfRange', reject);
    });
    const expected = [0, 1, 2, 3, 4].map((i) => `${i}:k${i}=value-${i}`);
    if (JSON.stringify(seen) !== JSON.stringify(expected)) throw new Error(`read ${JSON.stringify(seen)}`);
    await new Promise((resolve, reject) => {
      consumer.setOffset(t, 0, 5);
      consumer.commit(true, (err) => (err ? reject(err) : resolve()));
    });
    const committed = await new Promise((resolve, reject) => {
      consumer.fetchOffset([{ topic: t, partition: 0 }], (err, res) => (err ? reject(err) : resolve(res)));
    });
    if (committed[t]['0'] !== 5) throw new Error(`committed ${JSON.stringify(committed)}`);
  } finally {
    await new Promise((resolve) => consumer.close(true, () => resolve()));
  }
}

async function listOffsets() {
  const c = client();
  const offset = new kafka.Offset(c);
  try {
    const latest = await new Promise((resolve, reject) => {
      offset.fetch([{ topic, partition: 0, time: -1, maxNum: 1 }], (err, res) => (err ? reject(err) : resolve(res)));
    });
    const earliest = await new Promise((resolve, reject) => {
      offset.fetch([{ topic, partition: 0, time: -2, maxNum: 1 }], (err, res) => (err ? reject(err) : resolve(res)));
    });
    if (latest[topic]['0'][0] !== 5 || earliest[topic]['0'][0] !== 0) {
      throw new Error(`latest ${JSON.stringify(latest)} earliest ${JSON.stringify(earliest)}`);
    }
  } finally {
    await closeClient(c);
  }
}

async function offsetCommitV0() {
  const c = client();
  const offset = new kafka.Offset(c);
  const group = `${prefix}-v0`;
  try {
    await new Promise((resolve, reject) => {
      offset.commit(group, [{ topic, partition: 0, offset: 3, metadata: 'm' }], (err, res) =>
        err ? reject(err) : resolve(res)
      );
    });
    const fetched = await new Promise((resolve, reject) => {
      offset.fetchCommits(group, [{ topic, partition: 0 }], (err, res) => (err ? reject(err) : resolve(res)));
    });
    if (fetched[topic]['0'] !== 3) throw new Error(`fetched ${JSON.stringify(fetched)}`);
  } finally {
    await closeClient(c);
  }
}

// A consumer group (JoinGroup/SyncGroup/Heartbeat v0) reading from the earliest offset and
// committing (OffsetCommit v2), then a second member of the same group resuming after the
// committed offsets: it must see nothing old, only the next message.
async function consumerGroup() {
  const group = `${prefix}-group`;
  const options = { kafkaHost: host, groupId: group, fromOffset: 'earliest', autoCommit: false,
    sessionTimeout: 10000, fetchMaxWaitMs: 100, protocol: ['roundrobin'] };
  const first = new kafka.ConsumerGroup(options, [topic]);
  try {
    await new Promise((resolve, reject) => {
      let n = 0;
      first.on('message', () => { n += 1; if (n === 5) resolve(); });
      first.on('error', reject);
    });
    await new Promise((resolve, reject) => first.commit(true, (err) => (err ? reject(err) : resolve())));
  } finally {
    await new Promise((resolve) => first.close(true, () => resolve()));
  }
  await produceOne(topic, 'k5', 'value-5');
  const second = new kafka.ConsumerGroup(options, [topic]);
  try {
    const m = await new Promise((resolve, reject) => {
      second.on('message', resolve);
      second.on('error', reject);
    });
    if (m.offset !== 5 || m.value !== 'value-5') throw new Error(`resumed at ${m.offset} (${m.value})`);
  } finally {
    await new Promise((resolve) => second.close(false, () => resolve()));
  }
}

async function produceOne(t, key, value) {
  const c = client();
  const producer = new kafka.Producer(c, { requireAcks: 1 });
  try {
    await new Promise((resolve, reject) => { producer.on('ready', resolve); producer.on('error', reject); });
    await new Promise((resolve, reject) => {
      producer.send([{ topic: t, partition: 0, messages: [new kafka.KeyedMessage(key, value)] }], (err) =>
        err ? reject(err) : resolve()
      );
    });
  } finally {
    await closeClient(c);
  }
}

const scenarios = [
  ['create_topics', createTopics],
  ['produce_plain', () => produce(topic, 0)],
  ['produce_gzip', () => produce(gzipTopic, 1)],
  ['consume_from_earliest', () => consumeFromEarliest(topic)],
  ['consume_gzip_from_earliest', () => consumeFromEarliest(gzipTopic)],
  ['list_offsets', listOffsets],
  ['offset_commit_v0', offsetCommitV0],
  ['consumer_group', consumerGroup],
];

(async () => {
  for (const [name, run] of scenarios) {
    try {
      await withTimeout(name, run());
      console.log(`PASS ${name}`);
    } catch (e) {
      console.log(`FAIL ${name}: ${(e && (e.message || e.name)) || e}`.replace(/\s+/g, ' '));
    }
  }
  process.exit(0);
})();
