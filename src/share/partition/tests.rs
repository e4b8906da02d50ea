//! The share-partition's rules, without I/O or a clock.

use std::time::Duration;

use super::*;

const LIMITS: Limits = Limits {
    delivery_count_limit: 3,
    max_in_flight: 100,
};

fn batch(base: i64, last: i64) -> LogBatch {
    LogBatch {
        base_offset: base,
        last_offset: last,
        deliverable: true,
    }
}

fn fresh(start: i64) -> SharePartition {
    SharePartition::load(
        &ShareState {
            start_offset: start,
            ..ShareState::default()
        },
        start,
    )
}

fn ack(first: i64, last: i64, kind: i8) -> Acknowledgement {
    Acknowledgement {
        first_offset: first,
        last_offset: last,
        types: vec![kind],
    }
}

fn range(first: i64, last: i64, count: i16) -> AcquiredRange {
    AcquiredRange {
        first_offset: first,
        last_offset: last,
        delivery_count: count,
    }
}

#[test]
fn records_are_acquired_once_acknowledged_and_the_start_moves_past_them() {
    let now = Instant::now();
    let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
    let mut sp = fresh(0);
    let got = sp.acquire(&a, &[batch(0, 4), batch(5, 9)], 3, 500, false, now, &LIMITS);
    // Whole batches: asked for 3, got the first batch's 5.
    assert_eq!(got.ranges, vec![range(0, 4, 1)]);
    assert_eq!(got.batches, Some((0, 0)));
    // Another member gets what is left, not the same records.
    let got = sp.acquire(&b, &[batch(5, 9)], 500, 500, false, now, &LIMITS);
    assert_eq!(got.ranges, vec![range(5, 9, 1)]);
    assert_eq!(sp.next_fetch_offset(), 10);
    // b may not acknowledge a's records; nothing changes when one offset is wrong.
    assert!(matches!(
        sp.acknowledge("b", &[ack(4, 5, ACK_ACCEPT)], now, &LIMITS),
        Err(AckError::InvalidRecordState(_))
    ));
    let changes = sp
        .acknowledge("a", &[ack(0, 4, ACK_ACCEPT)], now, &LIMITS)
        .unwrap();
    assert_eq!(sp.next_start_offset(), 5);
    assert_eq!(
        sp.state_batches(&changes, 5),
        vec![],
        "below the new start nothing needs writing"
    );
    sp.advance_start();
    assert_eq!(sp.start_offset(), 5);
    // Past everything fetched: INVALID_REQUEST.
    assert!(matches!(
        sp.acknowledge("b", &[ack(9, 10, ACK_ACCEPT)], now, &LIMITS),
        Err(AckError::InvalidRequest(_))
    ));
    // Below the start: skipped.
    sp.acknowledge("b", &[ack(0, 9, ACK_ACCEPT)], now, &LIMITS)
        .unwrap();
    sp.advance_start();
    assert_eq!((sp.start_offset(), sp.end_offset()), (10, 10));
}

#[test]
fn released_records_come_back_with_a_higher_count_until_the_limit_archives_them() {
    let now = Instant::now();
    let a: Arc<str> = "a".into();
    let mut sp = fresh(0);
    // One record, so that isolation (below) does not split the batch.
    for delivery in 1..=3 {
        let got = sp.acquire(&a, &[batch(0, 0)], 10, 500, false, now, &LIMITS);
        assert_eq!(got.ranges, vec![range(0, 0, delivery)]);
        let changes = sp
            .acknowledge("a", &[ack(0, 0, ACK_RELEASE)], now, &LIMITS)
            .unwrap();
        let written = sp.state_batches(&changes, sp.next_start_offset());
        if delivery < 3 {
            assert_eq!(written[0].delivery_state, AVAILABLE);
            assert_eq!(written[0].delivery_count, delivery);
        } else {
            assert!(written.is_empty(), "archived and below the new start");
        }
        sp.advance_start();
    }
    assert_eq!(sp.start_offset(), 1, "the third release archives it");
}

#[test]
fn locks_expire_and_a_renew_extends_them() {
    let now = Instant::now();
    let a: Arc<str> = "a".into();
    let mut sp = fresh(0);
    sp.acquire(
        &a,
        &[batch(0, 1)],
        10,
        500,
        false,
        now + Duration::from_secs(1),
        &LIMITS,
    );
    sp.acknowledge(
        "a",
        &[ack(1, 1, ACK_RENEW)],
        now + Duration::from_secs(5),
        &LIMITS,
    )
    .unwrap();
    assert_eq!(sp.next_deadline(), Some(now + Duration::from_secs(1)));
    let changes = sp.expire(now + Duration::from_secs(2), &LIMITS);
    assert_eq!(sp.state_batches(&changes, 0).len(), 1);
    assert_eq!(sp.next_fetch_offset(), 0);
    assert_eq!(sp.acquired_count(), 1, "offset 1 was renewed");
    sp.undo(changes);
    assert_eq!(sp.acquired_count(), 2, "undone");
}

#[test]
fn gaps_and_aborted_records_are_archived_not_delivered() {
    let now = Instant::now();
    let a: Arc<str> = "a".into();
    let mut sp = fresh(0);
    let aborted = LogBatch {
        base_offset: 3,
        last_offset: 4,
        deliverable: false,
    };
    // Offsets 0-1, then a hole (compaction), then an aborted batch, then 5-6.
    let got = sp.acquire(
        &a,
        &[batch(0, 1), aborted, batch(5, 6)],
        10,
        500,
        false,
        now,
        &LIMITS,
    );
    assert_eq!(got.ranges, vec![range(0, 1, 1), range(5, 6, 1)]);
    assert_eq!(got.batches, Some((0, 2)));
    sp.acknowledge(
        "a",
        &[ack(0, 1, ACK_ACCEPT), ack(5, 6, ACK_ACCEPT)],
        now,
        &LIMITS,
    )
    .unwrap();
    sp.advance_start();
    assert_eq!(sp.start_offset(), 7);
}

#[test]
fn the_window_caps_what_is_fetched_until_the_start_moves() {
    let now = Instant::now();
    let a: Arc<str> = "a".into();
    let limits = Limits {
        delivery_count_limit: 3,
        max_in_flight: 4,
    };
    let mut sp = fresh(0);
    sp.acquire(&a, &[batch(0, 2)], 100, 500, false, now, &limits);
    // One batch more overshoots the window; then nothing new.
    let got = sp.acquire(
        &a,
        &[batch(3, 5), batch(6, 7)],
        100,
        500,
        false,
        now,
        &limits,
    );
    assert_eq!(got.ranges, vec![range(3, 5, 1)]);
    assert!(!sp.can_acquire(&limits));
    sp.acknowledge("a", &[ack(0, 5, ACK_ACCEPT)], now, &limits)
        .unwrap();
    sp.advance_start();
    assert!(sp.can_acquire(&limits));
}

#[test]
fn a_load_restores_states_and_unwritten_offsets_come_back_available() {
    let state = ShareState {
        state_epoch: 3,
        start_offset: 10,
        batches: [
            (10, (10, ACKNOWLEDGED, 1)),
            (12, (12, AVAILABLE, 2)),
            (14, (14, ARCHIVED, 3)),
        ]
        .into_iter()
        .collect(),
        ..ShareState::default()
    };
    let sp = SharePartition::load(&state, 10);
    assert_eq!(sp.start_offset(), 11, "the acknowledged front is passed");
    assert_eq!(sp.end_offset(), 15);
    assert_eq!(sp.next_fetch_offset(), 11);
    assert_eq!(sp.state_epoch(), 3);
    assert_eq!(sp.delivery_complete_count(), 1);
    let mut sp = sp;
    // A high delivery limit: no isolation of the record delivered twice.
    let limits = Limits {
        delivery_count_limit: 10,
        max_in_flight: 100,
    };
    let got = sp.acquire(
        &"a".into(),
        &[batch(11, 15)],
        100,
        500,
        false,
        Instant::now(),
        &limits,
    );
    assert_eq!(
        got.ranges,
        vec![
            range(11, 11, 1),
            range(12, 12, 3),
            range(13, 13, 1),
            range(15, 15, 1)
        ]
    );
}

#[test]
fn record_limit_acquires_at_most_the_limit_and_leaves_the_rest_available() {
    let now = Instant::now();
    let mut sp = fresh(0);
    let got = sp.acquire(&"a".into(), &[batch(0, 9)], 4, 500, true, now, &LIMITS);
    assert_eq!(got.ranges, vec![range(0, 3, 1)]);
    assert_eq!(sp.next_fetch_offset(), 4, "the batch's tail is available");
    assert_eq!(sp.end_offset(), 10);
    let got = sp.acquire(&"b".into(), &[batch(0, 9)], 4, 500, true, now, &LIMITS);
    assert_eq!(got.ranges, vec![range(4, 7, 1)]);
}

#[test]
fn records_redelivered_often_come_in_smaller_chunks_and_alone_on_their_last_delivery() {
    // Limit 5: records delivered 3 times or more come in chunks of a batch halved with
    // each further delivery, nothing after them; a record's fifth delivery is alone.
    let limits = Limits {
        delivery_count_limit: 5,
        max_in_flight: 100,
    };
    let now = Instant::now();
    let a: Arc<str> = "a".into();
    let mut sp = fresh(0);
    let batches = [batch(0, 7), batch(8, 9)];
    let deliver = |sp: &mut SharePartition| {
        let got = sp.acquire(&a, &batches, 100, 500, false, now, &limits);
        let held: Vec<i64> = (0..10)
            .filter(|o| sp.slots[*o as usize].state == RecordState::Acquired)
            .collect();
        for o in held {
            sp.acknowledge("a", &[ack(o, o, ACK_RELEASE)], now, &limits)
                .unwrap();
        }
        got.ranges
    };
    for delivery in 1..=3 {
        assert_eq!(deliver(&mut sp), vec![range(0, 9, delivery)]);
    }
    // Delivered 3 times: half of the first batch (8 >> 1).
    assert_eq!(deliver(&mut sp), vec![range(0, 3, 4)]);
    // Offset 0 was delivered 4 times: its last delivery is alone.
    assert_eq!(deliver(&mut sp), vec![range(0, 0, 5)]);
}

#[test]
fn long_ranges_are_cut_at_batch_boundaries() {
    let now = Instant::now();
    let mut sp = fresh(0);
    let got = sp.acquire(
        &"a".into(),
        &[batch(0, 2), batch(3, 5), batch(6, 6)],
        100,
        2,
        false,
        now,
        &LIMITS,
    );
    assert_eq!(
        got.ranges,
        vec![range(0, 2, 1), range(3, 5, 1), range(6, 6, 1)]
    );
}
