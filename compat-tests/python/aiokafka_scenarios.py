"""aiokafka (asyncio, its own protocol code) against a running Gregor.

Usage: aiokafka_scenarios.py BOOTSTRAP
Prints `PASS|FAIL aiokafka NAME SECONDS` per scenario and `N passed, N failed, 0 skipped`.
"""

import asyncio
import sys
import time
import uuid

import runner

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

BOOTSTRAP = sys.argv[1]
RUN = uuid.uuid4().hex[:8]
TOPIC = f"ak-{RUN}"
GROUP = f"ak-group-{RUN}"


async def scenario_1_create_topic(admin):
    await admin.create_topics([NewTopic(TOPIC, 2, 1)])
    assert TOPIC in await admin.list_topics()


async def scenario_2_produce_idempotent_gzip(admin):
    p = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, enable_idempotence=True, compression_type="gzip")
    await p.start()
    try:
        offsets = [(await p.send_and_wait(TOPIC, b"v%d" % i, key=b"k%d" % i, partition=i % 2,
                                          headers=[("h", b"x")])).offset for i in range(10)]
    finally:
        await p.stop()
    assert sorted(offsets) == sorted(list(range(5)) * 2), offsets


async def scenario_3_transaction_commits_one_and_aborts_one(admin):
    p = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, transactional_id=f"ak-tx-{RUN}")
    await p.start()
    try:
        async with p.transaction():
            await p.send_and_wait(TOPIC, b"committed", partition=0)
            await p.send_offsets_to_transaction({TopicPartition(TOPIC, 0): 1}, f"ak-txgroup-{RUN}")
        await p.begin_transaction()
        await p.send_and_wait(TOPIC, b"aborted", partition=0)
        await p.abort_transaction()
    finally:
        await p.stop()


async def scenario_4_read_committed_group_sees_no_aborted_record(admin):
    c = AIOKafkaConsumer(TOPIC, bootstrap_servers=BOOTSTRAP, group_id=GROUP, auto_offset_reset="earliest",
                         enable_auto_commit=False, isolation_level="read_committed")
    await c.start()
    seen = []
    try:
        deadline = time.time() + 30
        while len(seen) < 11 and time.time() < deadline:
            for msgs in (await c.getmany(timeout_ms=500)).values():
                seen += [m.value for m in msgs]
        await c.commit()
        tp = TopicPartition(TOPIC, 0)
        # Five records, then the committed one and its marker, the aborted one and its marker.
        assert (await c.end_offsets([tp]))[tp] == 9
        assert (await c.offsets_for_times({tp: 0}))[tp].offset == 0
    finally:
        await c.stop()
    assert b"aborted" not in seen, seen
    assert len(seen) == 11 and b"committed" in seen, seen


async def scenario_5_group_admin(admin):
    groups = [g[0] for g in await admin.list_consumer_groups()]
    assert GROUP in groups, groups
    offsets = await admin.list_consumer_group_offsets(GROUP)
    assert offsets[TopicPartition(TOPIC, 1)].offset == 5, offsets


async def scenario_6_delete_topic(admin):
    await admin.delete_topics([TOPIC])


async def started_admin():
    # aiokafka's clients must be created inside the loop that runs them.
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    return admin


def main():
    loop = asyncio.new_event_loop()
    admin = loop.run_until_complete(started_admin())
    status = runner.run("aiokafka", runner.scenarios(globals()),
                        lambda fn: loop.run_until_complete(asyncio.wait_for(fn(admin), 60)))
    loop.run_until_complete(admin.close())
    loop.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
