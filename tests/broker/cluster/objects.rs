//! DeleteRecords, retention and topic deletion everywhere, with the objects collected; small
//! objects merged, and a wiped broker reading the merged ones.

use super::*;

/// `topic`'s (low, high) watermarks of `partitions` partitions through `addr`.
fn watermarks_through(addr: &str, topic: &str, partitions: i32) -> Vec<(i64, i64)> {
    let consumer = consumer_of(addr);
    (0..partitions)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(5))
                .unwrap_or((-1, -1))
        })
        .collect()
}

/// Waits until every broker in `addrs` serves `expected` watermarks.
fn wait_watermarks(addrs: &[String], topic: &str, expected: &[(i64, i64)]) {
    for addr in addrs {
        wait_for(60, || {
            let now = watermarks_through(addr, topic, expected.len() as i32);
            (now == expected)
                .then_some(())
                .ok_or_else(|| format!("{addr} serves {now:?} of {topic}, not {expected:?}"))
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_records_go_everywhere_and_their_objects_are_collected() {
    use rdkafka::admin::{AlterConfig, ResourceSpecifier};
    let Some((_one, engines, dirs, brokers)) =
        three_brokers("deleted_records_go_everywhere_and_their_objects_are_collected").await
    else {
        return;
    };
    let mut brokers = brokers.into_iter().map(Some).collect::<Vec<_>>();
    let all = bootstrap(brokers.iter().flatten());
    create_topic(&all, "events", 2).await;
    let acked = produce(&producer(&all), "events", 400, 400, || {}).await;
    let mut high = [0i64; 2];
    for (p, offset) in acked.values() {
        high[*p as usize] = high[*p as usize].max(offset + 1);
    }
    let addrs = |brokers: &[Option<Broker>]| -> Vec<String> {
        brokers.iter().flatten().map(|b| b.addr.clone()).collect()
    };
    wait_watermarks(&addrs(&brokers), "events", &[(0, high[0]), (0, high[1])]);
    let objects_before = engines.sql_count("SELECT count(*) FROM objects");
    assert!(objects_before > 0);
    // An upload whose commit failed: in the store, named by no commit.
    let stray = "test/objects/an-upload-whose-commit-failed";
    engines.put_object(stray, b"never committed");

    // DeleteRecords through the second broker moves the low watermark everywhere.
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset("events", 0, rdkafka::Offset::Offset(high[0] / 2))
        .unwrap();
    let options = rdkafka::admin::AdminOptions::new();
    let deleted = admin_of(&brokers[1].as_ref().unwrap().addr)
        .delete_records(&tpl, &options)
        .await
        .unwrap();
    assert_eq!(
        deleted.elements()[0].offset(),
        rdkafka::Offset::Offset(high[0] / 2),
        "{:?}",
        deleted.elements()[0].error()
    );
    wait_watermarks(
        &addrs(&brokers),
        "events",
        &[(high[0] / 2, high[0]), (0, high[1])],
    );

    // Broker 3 is away while retention deletes everything; it comes back to the same view.
    let third = dirs[2].path().to_path_buf();
    brokers[2].take().unwrap().stop();
    let altered = admin_of(&brokers[0].as_ref().unwrap().addr)
        .alter_configs(
            &[AlterConfig::new(ResourceSpecifier::Topic("events")).set("retention.ms", "1")],
            &options,
        )
        .await
        .unwrap();
    assert!(altered[0].is_ok(), "{altered:?}");
    wait_watermarks(
        &addrs(&brokers),
        "events",
        &[(high[0], high[0]), (high[1], high[1])],
    );
    brokers[2] = Some(engines.start_broker(3, &third));
    wait_watermarks(
        &addrs(&brokers),
        "events",
        &[(high[0], high[0]), (high[1], high[1])],
    );

    // No batch points to the objects any more: they go, from the store and PostgreSQL. The
    // stray upload goes too, once 10 s old, and keeps a tombstone row.
    let committed = "SELECT count(*) FROM objects WHERE swept_at IS NULL";
    wait_for(60, || {
        let (rows, stored) = (engines.sql_count(committed), engines.stored_objects());
        (rows == 0 && stored == 0).then_some(()).ok_or_else(|| {
            format!("{rows} object rows and {stored} stored objects left of {objects_before} and the stray one")
        })
    });
    assert_eq!(
        engines.sql_count(&format!(
            "SELECT count(*) FROM objects WHERE object_key = '{stray}' AND swept_at IS NOT NULL"
        )),
        1,
        "the stray upload's tombstone"
    );

    // The topic goes on from its high watermarks.
    let more = produce(&producer(&all), "events", 10, 10, || {}).await;
    for (k, (p, offset)) in &more {
        assert!(
            *offset >= high[*p as usize],
            "{k} at {offset} in partition {p}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_objects_are_merged_and_a_wiped_broker_reads_the_merged_ones() {
    let Some((_one, engines, dirs, brokers)) =
        three_brokers("small_objects_are_merged_and_a_wiped_broker_reads_the_merged_ones").await
    else {
        return;
    };
    let mut brokers = brokers.into_iter().map(Some).collect::<Vec<_>>();
    let all = bootstrap(brokers.iter().flatten());
    create_topic(&all, "metrics", 4).await;
    // A 20 ms buffer: the messages spread over many small objects.
    let acked = produce(&producer(&all), "metrics", 3_000, 3_000, || {}).await;
    let written = engines.sql_count("SELECT count(*) FROM objects WHERE swept_at IS NULL");
    assert!(written > 4, "{written} objects");

    // The controller merges them (8 MiB by default, far more than they hold together) and
    // the collector deletes the originals.
    wait_for(60, || {
        let live = engines.sql_count("SELECT count(*) FROM objects WHERE swept_at IS NULL");
        let stored = engines.stored_objects() as i64;
        (live <= 2 && stored == live).then_some(()).ok_or_else(|| {
            format!("{live} object rows and {stored} stored objects left of {written}")
        })
    });

    // A broker that lost its disk rebuilds every partition from the merged objects.
    let third = dirs[2].path().to_path_buf();
    brokers[2].take().unwrap().kill9();
    std::fs::remove_dir_all(&third).unwrap();
    std::fs::create_dir(&third).unwrap();
    brokers[2] = Some(engines.start_broker(3, &third));
    check_acked_through(&brokers[2].as_ref().unwrap().addr, "metrics", &acked);
}
