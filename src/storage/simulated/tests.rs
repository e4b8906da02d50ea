//! The simulated file system against the POSIX durability contract it models.

use super::*;
use crate::storage::OpenMode;

fn setup() -> (SimulatedStorage, Arc<dyn Storage>) {
    let sim = SimulatedStorage::new(7);
    sim.create_dir_all_durable(Path::new("/data"));
    let storage = sim.shared();
    (sim, storage)
}

#[test]
fn only_synced_bytes_and_names_survive_a_power_loss() {
    let (sim, storage) = setup();
    let synced = storage
        .open(Path::new("/data/a"), OpenMode::Truncate)
        .unwrap();
    synced.write_all_at(&[b"durable"], 0).unwrap();
    synced.sync_data().unwrap();
    storage.sync_dir(Path::new("/data")).unwrap();
    synced.write_all_at(&[b" maybe"], 7).unwrap();
    let unnamed = storage
        .open(Path::new("/data/b"), OpenMode::Truncate)
        .unwrap();
    unnamed.write_all_at(&[b"x"], 0).unwrap();
    unnamed.sync_data().unwrap();
    sim.power_loss();
    let storage = sim.shared();
    let a = storage.read(Path::new("/data/a")).unwrap();
    assert!(a.starts_with(b"durable") && b"durable maybe".starts_with(&a));
    assert!(!storage.exists(Path::new("/data/b")), "name never synced");
    assert!(synced.len().is_err(), "old handles are dead");
}

#[test]
fn the_world_stops_at_the_chosen_operation() {
    let (sim, storage) = setup();
    let f = storage
        .open(Path::new("/data/a"), OpenMode::Truncate)
        .unwrap();
    let start = sim.ops();
    sim.crash_at(start + 2);
    f.write_all_at(&[b"one"], 0).unwrap();
    assert!(f.sync_data().is_err());
    assert!(sim.crashed());
    assert!(f.write_all_at(&[b"two"], 3).is_err());
    assert!(storage.read(Path::new("/data/a")).is_err());
}

#[test]
fn a_full_disk_writes_what_fits_then_fails() {
    let (sim, storage) = setup();
    sim.set_capacity(Some(10));
    let f = storage
        .open(Path::new("/data/a"), OpenMode::Truncate)
        .unwrap();
    f.write_all_at(&[b"0123456"], 0).unwrap();
    let e = f.write_all_at(&[b"789abc"], 7).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
    assert_eq!(f.len().unwrap(), 10);
    f.set_len(7).unwrap();
    sim.set_capacity(None);
    f.write_all_at(&[b"789abc"], 7).unwrap();
    assert_eq!(
        storage.read(Path::new("/data/a")).unwrap(),
        b"0123456789abc"
    );
}

#[test]
fn a_renamed_directory_is_durable_only_after_its_parent_is_synced() {
    let (sim, storage) = setup();
    storage.create_dir_durably(Path::new("/data/p-0")).unwrap();
    storage
        .write_atomically(Path::new("/data/p-0/f"), b"hi")
        .unwrap();
    storage
        .rename(Path::new("/data/p-0"), Path::new("/data/p-0-delete"))
        .unwrap();
    sim.power_loss();
    let storage = sim.shared();
    assert_eq!(storage.read(Path::new("/data/p-0/f")).unwrap(), b"hi");
    storage
        .rename(Path::new("/data/p-0"), Path::new("/data/p-0-delete"))
        .unwrap();
    storage.sync_dir(Path::new("/data")).unwrap();
    sim.power_loss();
    let storage = sim.shared();
    assert!(!storage.exists(Path::new("/data/p-0")));
    assert!(storage.exists(Path::new("/data/p-0-delete/f")));
}
