//! An in-memory file system for crash and fault tests (after redb's crash backend).
//!
//! It keeps two views of everything: what the running process sees, and what is durable.
//! A file's bytes become durable on `sync_data`; a directory's entries (creations, renames,
//! removals) on `sync_dir` of that directory. Every mutating call is an *operation* with a
//! number. Tests can:
//! - stop the world at operation N ([`SimulatedStorage::crash_at`]): that call and every
//!   later one fail, as if the process died there;
//! - then lose power ([`SimulatedStorage::power_loss`]): every directory reverts to its
//!   durable entries and every file to its durable bytes plus a random prefix of the writes
//!   made since (the last of which may be torn), like a disk that wrote some of its queue;
//! - fail the next operation of a kind with an errno ([`SimulatedStorage::fail_next`]);
//! - make fsync lie ([`SimulatedStorage::forget_syncs`]): it succeeds and makes nothing
//!   durable (to prove a test would notice);
//! - cap the space ([`SimulatedStorage::set_capacity`]): a write past it writes what fits and
//!   fails with ENOSPC.
//!
//! The broker gets a [`Storage`] from [`SimulatedStorage::shared`]: a view bound to the
//! current "boot". After a power loss every view and file handle from before stops working,
//! so tasks of the dead broker that are still winding down can't touch the new world.
//!
//! Synchronisation: one `std::sync::Mutex` around the whole simulated machine; views and
//! handles hold an `Arc` to it. Nothing under the lock panics.
//!
//! This file is the machine (inodes, directories, crash and power-loss model) and the test's
//! controls; `handles.rs` is what the broker holds: the `Storage` view and open files.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path};
use std::sync::{Arc, Mutex, MutexGuard};

mod handles;

use super::Storage;
use handles::Process;

/// Kinds of mutating operations, for targeted faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Write,
    SetLen,
    SyncData,
    SyncDir,
    Create,
    Rename,
    Remove,
    CreateDir,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    File(usize),
    Dir(usize),
}

#[derive(Debug, Clone)]
enum Pending {
    Write { pos: u64, bytes: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Default)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
    /// Changes since the last sync, in order (what a power loss may partly keep).
    pending: Vec<Pending>,
    /// Reads of this file fail with this errno (a bad sector), until a power loss.
    read_error: Option<i32>,
}

#[derive(Debug, Default, Clone)]
struct Dir {
    current: BTreeMap<OsString, Node>,
    durable: BTreeMap<OsString, Node>,
}

#[derive(Debug)]
struct Machine {
    /// Bytes read through files and `read`, for tests that bound how much a step reads.
    read_bytes: u64,
    inodes: Vec<Inode>,
    dirs: Vec<Dir>,
    /// Bumped by a power loss; handles from before it stop working.
    boot: u64,
    ops: u64,
    /// `sync_data` calls so far (group-commit tests count them).
    data_syncs: u64,
    crash_at: Option<u64>,
    stopped: bool,
    fail_next: Option<(Op, i32)>,
    forget_syncs: bool,
    capacity: Option<u64>,
    rng: u64,
    /// Page-cache advice received: (inode, start, len).
    evictions: Vec<(usize, u64, u64)>,
}

fn stopped_error() -> io::Error {
    io::Error::other("simulated crash: the process is dead")
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

fn apply(data: &mut Vec<u8>, op: &Pending) {
    match op {
        Pending::Write { pos, bytes } => {
            let end = *pos as usize + bytes.len();
            if data.len() < end {
                data.resize(end, 0);
            }
            data[*pos as usize..end].copy_from_slice(bytes);
        }
        Pending::SetLen(len) => data.resize(*len as usize, 0),
    }
}

impl Machine {
    fn next_random(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Counts a mutating operation and decides whether it may happen.
    fn operation(&mut self, op: Op) -> io::Result<()> {
        if self.stopped {
            return Err(stopped_error());
        }
        self.ops += 1;
        if op == Op::SyncData {
            self.data_syncs += 1;
        }
        if self.crash_at.is_some_and(|n| self.ops >= n) {
            self.stopped = true;
            return Err(stopped_error());
        }
        if let Some((kind, code)) = self.fail_next {
            if kind == op {
                self.fail_next = None;
                return Err(errno(code));
            }
        }
        Ok(())
    }

    fn alive(&self) -> io::Result<()> {
        if self.stopped {
            Err(stopped_error())
        } else {
            Ok(())
        }
    }

    /// The names along an absolute path.
    fn components(path: &Path) -> io::Result<Vec<OsString>> {
        let mut out = Vec::new();
        for c in path.components() {
            match c {
                Component::RootDir => {}
                Component::Normal(name) => out.push(name.to_os_string()),
                Component::CurDir => {}
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("unsupported path {}", path.display()),
                    ))
                }
            }
        }
        Ok(out)
    }

    fn lookup(&self, path: &Path) -> io::Result<Node> {
        let mut node = Node::Dir(0);
        for name in Self::components(path)? {
            let Node::Dir(d) = node else {
                return Err(errno(libc::ENOTDIR));
            };
            node = *self.dirs[d]
                .current
                .get(&name)
                .ok_or_else(|| errno(libc::ENOENT))?;
        }
        Ok(node)
    }

    /// The parent directory's id and the last name of `path`.
    fn parent_of(&self, path: &Path) -> io::Result<(usize, OsString)> {
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
        match self.lookup(path.parent().unwrap_or(Path::new("/")))? {
            Node::Dir(d) => Ok((d, name.to_os_string())),
            Node::File(_) => Err(errno(libc::ENOTDIR)),
        }
    }

    fn file(&self, path: &Path) -> io::Result<usize> {
        match self.lookup(path)? {
            Node::File(i) => Ok(i),
            Node::Dir(_) => Err(errno(libc::EISDIR)),
        }
    }

    fn dir(&self, path: &Path) -> io::Result<usize> {
        match self.lookup(path)? {
            Node::Dir(d) => Ok(d),
            Node::File(_) => Err(errno(libc::ENOTDIR)),
        }
    }

    /// Bytes held by files the running process can reach.
    fn used_bytes(&self) -> u64 {
        let mut total = 0;
        let mut stack = vec![0usize];
        while let Some(d) = stack.pop() {
            for node in self.dirs[d].current.values() {
                match node {
                    Node::File(i) => total += self.inodes[*i].data.len() as u64,
                    Node::Dir(sub) => stack.push(*sub),
                }
            }
        }
        total
    }

    fn write(&mut self, inode: usize, pos: u64, bytes: &[u8]) -> io::Result<()> {
        let len = self.inodes[inode].data.len() as u64;
        let end = pos + bytes.len() as u64;
        let mut fits = bytes.len();
        if let Some(capacity) = self.capacity {
            let growth = end.saturating_sub(len);
            let free = capacity.saturating_sub(self.used_bytes());
            if growth > free {
                fits = (len + free).saturating_sub(pos).min(bytes.len() as u64) as usize;
            }
        }
        if fits > 0 {
            let op = Pending::Write {
                pos,
                bytes: bytes[..fits].to_vec(),
            };
            let file = &mut self.inodes[inode];
            apply(&mut file.data, &op);
            file.pending.push(op);
        }
        if fits < bytes.len() {
            return Err(errno(libc::ENOSPC));
        }
        Ok(())
    }

    fn set_len(&mut self, inode: usize, len: u64) -> io::Result<()> {
        if let Some(capacity) = self.capacity {
            let growth = len.saturating_sub(self.inodes[inode].data.len() as u64);
            if growth > capacity.saturating_sub(self.used_bytes()) {
                return Err(errno(libc::ENOSPC));
            }
        }
        let op = Pending::SetLen(len);
        let file = &mut self.inodes[inode];
        apply(&mut file.data, &op);
        file.pending.push(op);
        Ok(())
    }

    fn power_loss(&mut self) {
        self.boot += 1;
        self.stopped = false;
        self.crash_at = None;
        self.fail_next = None;
        for d in 0..self.dirs.len() {
            self.dirs[d].current = self.dirs[d].durable.clone();
        }
        for i in 0..self.inodes.len() {
            let pending = std::mem::take(&mut self.inodes[i].pending);
            self.inodes[i].read_error = None;
            let kept = (self.next_random() % (pending.len() as u64 + 1)) as usize;
            let mut data = self.inodes[i].durable.clone();
            for op in &pending[..kept] {
                apply(&mut data, op);
            }
            // The next write may have reached the disk in part.
            if let Some(Pending::Write { pos, bytes }) = pending.get(kept) {
                let torn = (self.next_random() % (bytes.len() as u64 + 1)) as usize;
                apply(
                    &mut data,
                    &Pending::Write {
                        pos: *pos,
                        bytes: bytes[..torn].to_vec(),
                    },
                );
            }
            self.inodes[i].durable = data.clone();
            self.inodes[i].data = data;
        }
    }
}

/// The simulated machine, as the test controls it. Cloning shares it.
#[derive(Debug, Clone)]
pub struct SimulatedStorage {
    machine: Arc<Mutex<Machine>>,
}

impl SimulatedStorage {
    /// An empty file system with only `/`; `seed` drives which unsynced writes survive a
    /// power loss.
    pub fn new(seed: u64) -> SimulatedStorage {
        SimulatedStorage {
            machine: Arc::new(Mutex::new(Machine {
                inodes: Vec::new(),
                dirs: vec![Dir::default()],
                boot: 0,
                ops: 0,
                data_syncs: 0,
                crash_at: None,
                stopped: false,
                fail_next: None,
                forget_syncs: false,
                capacity: None,
                rng: seed.max(1),
                evictions: Vec::new(),
                read_bytes: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Machine> {
        self.machine
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Creates `dir` and its parents, durably (the test's starting point).
    pub fn create_dir_all_durable(&self, dir: &Path) {
        let _ = self.shared().create_dir_all(dir);
        let mut m = self.lock();
        for d in 0..m.dirs.len() {
            m.dirs[d].durable = m.dirs[d].current.clone();
        }
    }

    /// Mutating operations so far.
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// `sync_data` calls so far.
    pub fn data_syncs(&self) -> u64 {
        self.lock().data_syncs
    }

    /// The process dies at the `n`-th mutating operation from the start (that call fails).
    pub fn crash_at(&self, n: u64) {
        self.lock().crash_at = Some(n);
    }

    /// Whether the world has stopped.
    pub fn crashed(&self) -> bool {
        self.lock().stopped
    }

    /// The power goes out: only durable state (plus a random part of the rest) survives.
    /// Handles opened before stop working.
    pub fn power_loss(&self) {
        self.lock().power_loss();
    }

    /// The next operation of `kind` fails with `code` (an errno), once.
    pub fn fail_next(&self, kind: Op, code: i32) {
        self.lock().fail_next = Some((kind, code));
    }

    /// Bytes read so far (files and whole-file reads).
    pub fn read_bytes(&self) -> u64 {
        self.lock().read_bytes
    }

    /// Every read of the file at `path` fails with `code` (an errno) from now on, as over a
    /// bad sector. Writes still work. Reads are not operations: crash points don't move.
    pub fn fail_reads_of(&self, path: &Path, code: i32) {
        let mut m = self.lock();
        let inode = m.file(path).expect("fail_reads_of: no such file");
        m.inodes[inode].read_error = Some(code);
    }

    /// fsyncs (file and directory) succeed without making anything durable.
    pub fn forget_syncs(&self, forget: bool) {
        self.lock().forget_syncs = forget;
    }

    /// The page-cache evictions asked for on `path` so far, as (start, len) (0 = to the end).
    pub fn evictions(&self, path: &Path) -> Vec<(u64, u64)> {
        let m = self.lock();
        let Ok(inode) = m.file(path) else {
            return Vec::new();
        };
        m.evictions
            .iter()
            .filter(|(i, _, _)| *i == inode)
            .map(|(_, s, l)| (*s, *l))
            .collect()
    }

    /// Bytes in all reachable files.
    pub fn used_bytes(&self) -> u64 {
        self.lock().used_bytes()
    }

    /// At most `bytes` in all reachable files (`None`: unlimited).
    pub fn set_capacity(&self, bytes: Option<u64>) {
        self.lock().capacity = bytes;
    }

    /// The file system as the broker of the current boot sees it.
    pub fn shared(&self) -> Arc<dyn Storage> {
        let boot = self.lock().boot;
        Arc::new(Process {
            machine: self.machine.clone(),
            boot,
        })
    }
}

#[cfg(test)]
mod tests;
