//! Disk errors short of a crash, on the same simulated storage and broker as the crash
//! tests: a full disk refuses appends and recovers when space returns; a failed fsync fails
//! the produces waiting for it and the log carries on.

use super::*;

/// A producer that sends one-record batches to partition 0 and remembers what was
/// acknowledged.
struct SimpleProducer {
    pid: i64,
    epoch: i16,
    next_seq: i32,
}

impl SimpleProducer {
    async fn new(broker: &Arc<Broker>) -> SimpleProducer {
        let (pid, epoch) = init_producer(broker).await.expect("InitProducerId");
        SimpleProducer {
            pid,
            epoch,
            next_seq: 0,
        }
    }

    /// Sends the next batch; on success records it in `acked`.
    async fn send(
        &mut self,
        broker: &Arc<Broker>,
        acked: &mut Acknowledged,
    ) -> Result<i64, String> {
        let value = format!("{}:{}:{:0>500}", self.pid, self.next_seq, 0).into_bytes();
        let batch = idempotent_batch(
            &[&value],
            1_700_000_000_000,
            self.pid,
            self.epoch,
            self.next_seq,
        );
        let offset = produce(broker, 0, Bytes::from(batch)).await?;
        acked
            .batches
            .insert((self.pid, 0, self.next_seq), (offset, 1));
        self.next_seq += 1;
        Ok(offset)
    }
}

async fn broker_with_topic(sim: &SimulatedStorage) -> (Arc<Broker>, Acknowledged) {
    sim.create_dir_all_durable(Path::new("/data"));
    let broker = open(sim).await.expect("open");
    create_topic(&broker).await.expect("create topic");
    let acked = Acknowledged {
        topic_created: true,
        ..Acknowledged::default()
    };
    (broker, acked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_appends_then_recovers_when_space_returns() {
    let sim = SimulatedStorage::new(11);
    let (broker, mut acked) = broker_with_topic(&sim).await;
    let mut producer = SimpleProducer::new(&broker).await;
    for _ in 0..5 {
        producer.send(&broker, &mut acked).await.expect("produce");
    }
    // A little room left, then the disk is full.
    sim.set_capacity(Some(sim.used_bytes() + 3000));
    let mut refused = None;
    for _ in 0..20 {
        match producer.send(&broker, &mut acked).await {
            Ok(_) => {}
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    assert_eq!(
        refused.as_deref(),
        Some("Produce error 56"),
        "a full disk gives KAFKA_STORAGE_ERROR"
    );
    // Still full: refused again, and nothing acknowledged is damaged; reads work.
    assert_eq!(
        producer.send(&broker, &mut acked).await,
        Err("Produce error 56".to_string())
    );
    let problems = verify(&broker, &acked).await;
    assert!(problems.is_empty(), "while full: {problems:?}");
    // Space returns: the same producer carries on where it stopped.
    sim.set_capacity(None);
    for _ in 0..5 {
        producer
            .send(&broker, &mut acked)
            .await
            .expect("produce after space returned");
    }
    let problems = verify(&broker, &acked).await;
    assert!(problems.is_empty(), "after space returned: {problems:?}");
    // And all of it survives a power loss.
    drop(broker);
    sim.power_loss();
    let broker = open(&sim).await.expect("reopen");
    let problems = verify(&broker, &acked).await;
    assert!(problems.is_empty(), "after a power loss: {problems:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_fails_the_waiting_produce_and_the_log_carries_on() {
    let sim = SimulatedStorage::new(12);
    let (broker, mut acked) = broker_with_topic(&sim).await;
    let mut producer = SimpleProducer::new(&broker).await;
    for _ in 0..3 {
        producer.send(&broker, &mut acked).await.expect("produce");
    }
    let end_before = broker.logs.topic(TOPIC).expect("topic").partitions[0].log_end_offset();
    sim.fail_next(Op::SyncData, libc::EIO);
    assert_eq!(
        producer.send(&broker, &mut acked).await,
        Err("Produce error 56".to_string()),
        "the produce waiting on the failed fsync is not acknowledged"
    );
    let log = broker.logs.topic(TOPIC).expect("topic").partitions[0].clone();
    assert_eq!(
        log.log_end_offset(),
        end_before,
        "the unflushed append was cut off"
    );
    // The retry (same sequence) is a new append now, and it is acknowledged.
    assert_eq!(producer.send(&broker, &mut acked).await, Ok(end_before));
    producer.send(&broker, &mut acked).await.expect("produce");
    let problems = verify(&broker, &acked).await;
    assert!(problems.is_empty(), "{problems:?}");
    drop((broker, log));
    sim.power_loss();
    let broker = open(&sim).await.expect("reopen");
    let problems = verify(&broker, &acked).await;
    assert!(problems.is_empty(), "after a power loss: {problems:?}");
}
