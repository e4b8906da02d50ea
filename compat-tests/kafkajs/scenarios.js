// kafkajs 2.2.4 (pure JavaScript, its own protocol code) against a running Gregor: admin,
// an idempotent gzip producer with headers, a transaction committed and one aborted with
// offsets sent to a group, a read_committed consumer group, offsets and group admin.
// Prints `PASS|FAIL kafkajs NAME SECONDS` per scenario and `N passed, N failed, 0 skipped`.
//   node scenarios.js HOST:PORT[,HOST:PORT...]
'use strict';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const assert = require('assert');
const { Kafka, logLevel, CompressionTypes } = require('kafkajs');

const [host] = process.argv.slice(2);
const kafka = new Kafka({ clientId: 'gregor-kafkajs', brokers: host.split(','), logLevel: logLevel.NOTHING });
const run = Math.random().toString(16).slice(2, 10);
const topic = `kjs-${run}`;
const group = `kjs-group-${run}`;
const admin = kafka.admin();

const scenarios = {
  async create_topic() {
    assert.strictEqual(await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true }), true);
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    assert.strictEqual(meta.topics[0].partitions.length, 3);
  },
  async produce_idempotent_gzip_with_headers() {
    const producer = kafka.producer({ idempotent: true });
    await producer.connect();
    try {
      for (let i = 0; i < 9; i++) {
        const [r] = await producer.send({ topic, compression: CompressionTypes.GZIP,
          messages: [{ key: `k${i}`, value: `v${i}`, partition: i % 3, headers: { h: 'x' } }] });
        assert.strictEqual(r.errorCode, 0);
        assert.strictEqual(r.baseOffset, String(Math.floor(i / 3)));
      }
    } finally {
      await producer.disconnect();
    }
  },
  async transaction_commit_and_abort() {
    const producer = kafka.producer({ transactionalId: `kjs-tx-${run}`, maxInFlightRequests: 1, idempotent: true });
    await producer.connect();
    try {
      const tx = await producer.transaction();
      await tx.send({ topic, messages: [{ key: 'tx', value: 'committed', partition: 0 }] });
      await tx.sendOffsets({ consumerGroupId: `kjs-txgroup-${run}`, topics: [{ topic, partitions: [{ partition: 0, offset: '1' }] }] });
      await tx.commit();
      const aborted = await producer.transaction();
      await aborted.send({ topic, messages: [{ key: 'tx', value: 'aborted', partition: 0 }] });
      await aborted.abort();
    } finally {
      await producer.disconnect();
    }
    const offsets = await admin.fetchOffsets({ groupId: `kjs-txgroup-${run}`, topics: [topic] });
    assert.strictEqual(offsets[0].partitions.find((p) => p.partition === 0).offset, '1');
  },
  async read_committed_group_consumes_and_commits() {
    const consumer = kafka.consumer({ groupId: group, readUncommitted: false });
    await consumer.connect();
    const seen = [];
    try {
      await consumer.subscribe({ topic, fromBeginning: true });
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out, seen ${JSON.stringify(seen)}`)), 30000);
        consumer.run({
          eachMessage: async ({ message }) => {
            seen.push(message.value.toString());
            if (seen.length === 10) { clearTimeout(timer); resolve(); }
          },
        });
      });
      // Past the auto-commit interval, with a last heartbeat, then a clean leave.
      await new Promise((r) => setTimeout(r, 5500));
    } finally {
      await consumer.disconnect();
    }
    assert.ok(seen.includes('committed') && !seen.includes('aborted'), JSON.stringify(seen));
    assert.ok(seen.includes('v0'));
    const offsets = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    const byPartition = Object.fromEntries(offsets[0].partitions.map((p) => [p.partition, p.offset]));
    // Partition 0: three records, the committed one and its marker, then the aborted one
    // and its marker, which a read_committed consumer never sees: it commits 4, after the
    // last record it read.
    assert.deepStrictEqual(byPartition, { 0: '4', 1: '3', 2: '3' });
  },
  async offsets_by_time_and_ends() {
    const ends = await admin.fetchTopicOffsets(topic);
    assert.deepStrictEqual(ends.map((p) => [p.partition, p.high, p.low]).sort(),
      [[0, '7', '0'], [1, '3', '0'], [2, '3', '0']]);
    const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, Date.now() - 3600000);
    assert.deepStrictEqual(byTime.map((p) => p.offset), ['0', '0', '0']);
  },
  async group_admin() {
    const { groups } = await admin.listGroups();
    assert.ok(groups.some((g) => g.groupId === group), JSON.stringify(groups));
    const described = await admin.describeGroups([group]);
    assert.strictEqual(described.groups[0].state, 'Empty');
    await admin.resetOffsets({ groupId: group, topic, earliest: true });
    const offsets = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    // kafkajs commits -2 (earliest) for the group's next consumer to resolve, as on Kafka.
    assert.ok(offsets[0].partitions.every((p) => p.offset === '-2'), JSON.stringify(offsets));
    await admin.deleteGroups([group]);
  },
  async configs_partitions_records() {
    await admin.alterConfigs({ resources: [{ type: 2, name: topic, configEntries: [{ name: 'retention.ms', value: '3600000' }] }] });
    const configs = await admin.describeConfigs({ resources: [{ type: 2, name: topic, configNames: ['retention.ms'] }] });
    assert.strictEqual(configs.resources[0].configEntries[0].configValue, '3600000');
    await admin.createPartitions({ topicPartitions: [{ topic, count: 4 }] });
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 1, offset: '1' }] });
    const ends = await admin.fetchTopicOffsets(topic);
    assert.strictEqual(ends.length, 4);
    assert.strictEqual(ends.find((p) => p.partition === 1).low, '1');
  },
  async delete_topic() {
    await admin.deleteTopics({ topics: [topic] });
    assert.ok(!(await admin.listTopics()).includes(topic));
  },
};

(async () => {
  let passed = 0;
  let failed = 0;
  await admin.connect();
  for (const [name, fn] of Object.entries(scenarios)) {
    const start = Date.now();
    try {
      await fn();
      passed += 1;
      console.log(`PASS kafkajs ${name} ${((Date.now() - start) / 1000).toFixed(1)}`);
    } catch (e) {
      failed += 1;
      console.error(e && (e.stack || e));
      console.log(`FAIL kafkajs ${name} ${((Date.now() - start) / 1000).toFixed(1)}`);
    }
  }
  await admin.disconnect();
  console.log(`${passed} passed, ${failed} failed, 0 skipped`);
  process.exit(failed ? 1 : 0);
})();
