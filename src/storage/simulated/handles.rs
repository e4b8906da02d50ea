//! The handles the broker holds on the simulated machine: a [`Storage`] view bound to one
//! boot (`Process`) and open files (`SimulatedFile`). Each call locks the machine, checks
//! that its boot is the current one (after a power loss, handles of the dead broker fail),
//! and applies the operation to the machine's current view.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{errno, Dir, Inode, Machine, Node, Op};
use crate::storage::{FileRef, OpenMode, Storage, StorageFile};

/// The file system as one boot of the broker sees it.
#[derive(Debug)]
pub(super) struct Process {
    pub(super) machine: Arc<Mutex<Machine>>,
    pub(super) boot: u64,
}

fn stale_error() -> io::Error {
    io::Error::other("a handle from before the simulated power loss")
}

#[derive(Debug)]
struct SimulatedFile {
    machine: Arc<Mutex<Machine>>,
    inode: usize,
    boot: u64,
}

/// Locks the machine for a handle of boot `boot`; an error if the machine has been through
/// a power loss since.
fn lock_for_boot(machine: &Mutex<Machine>, boot: u64) -> io::Result<MutexGuard<'_, Machine>> {
    let m = machine
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if m.boot != boot {
        return Err(stale_error());
    }
    Ok(m)
}

impl Process {
    fn lock(&self) -> io::Result<MutexGuard<'_, Machine>> {
        lock_for_boot(&self.machine, self.boot)
    }
}

impl SimulatedFile {
    fn machine(&self) -> io::Result<MutexGuard<'_, Machine>> {
        lock_for_boot(&self.machine, self.boot)
    }
}

impl StorageFile for SimulatedFile {
    fn len(&self) -> io::Result<u64> {
        let m = self.machine()?;
        m.alive()?;
        Ok(m.inodes[self.inode].data.len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        let mut m = self.machine()?;
        m.alive()?;
        if let Some(code) = m.inodes[self.inode].read_error {
            return Err(errno(code));
        }
        m.read_bytes += buf.len() as u64;
        let data = &m.inodes[self.inode].data;
        let end = pos as usize + buf.len();
        if end > data.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "failed to fill whole buffer",
            ));
        }
        buf.copy_from_slice(&data[pos as usize..end]);
        Ok(())
    }

    fn write_all_at(&self, bufs: &[&[u8]], pos: u64) -> io::Result<()> {
        let mut m = self.machine()?;
        m.operation(Op::Write)?;
        let mut at = pos;
        for b in bufs {
            m.write(self.inode, at, b)?;
            at += b.len() as u64;
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut m = self.machine()?;
        m.operation(Op::SetLen)?;
        m.set_len(self.inode, len)
    }

    fn evict(&self, start: u64, len: u64) {
        if let Ok(mut m) = self.machine() {
            m.evictions.push((self.inode, start, len));
        }
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut m = self.machine()?;
        m.operation(Op::SyncData)?;
        if !m.forget_syncs {
            let file = &mut m.inodes[self.inode];
            file.durable = file.data.clone();
            file.pending.clear();
        }
        Ok(())
    }
}

impl Storage for Process {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<FileRef> {
        let mut m = self.lock()?;
        m.alive()?;
        let inode = match (m.lookup(path), mode) {
            (Ok(Node::Dir(_)), _) => return Err(errno(libc::EISDIR)),
            (Ok(Node::File(i)), OpenMode::Truncate) => {
                m.operation(Op::SetLen)?;
                m.set_len(i, 0)?;
                i
            }
            (Ok(Node::File(i)), _) => i,
            (Err(e), OpenMode::Existing) => return Err(e),
            (Err(_), _) => {
                let (parent, name) = m.parent_of(path)?;
                m.operation(Op::Create)?;
                let i = m.inodes.len();
                m.inodes.push(Inode::default());
                m.dirs[parent].current.insert(name, Node::File(i));
                i
            }
        };
        Ok(Arc::new(SimulatedFile {
            machine: self.machine.clone(),
            inode,
            boot: self.boot,
        }))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let m = self.lock()?;
        m.alive()?;
        let i = m.file(path)?;
        if let Some(code) = m.inodes[i].read_error {
            return Err(errno(code));
        }
        Ok(m.inodes[i].data.clone())
    }

    fn exists(&self, path: &Path) -> bool {
        self.lock()
            .is_ok_and(|m| !m.stopped && m.lookup(path).is_ok())
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.lock()
            .is_ok_and(|m| !m.stopped && matches!(m.lookup(path), Ok(Node::Dir(_))))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let m = self.lock()?;
        m.alive()?;
        let d = m.dir(dir)?;
        Ok(m.dirs[d]
            .current
            .keys()
            .map(|name| dir.join(name))
            .collect())
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut m = self.lock()?;
        m.alive()?;
        let mut at = 0usize;
        for name in Machine::components(dir)? {
            at = match m.dirs[at].current.get(&name).copied() {
                Some(Node::Dir(d)) => d,
                Some(Node::File(_)) => return Err(errno(libc::ENOTDIR)),
                None => {
                    m.operation(Op::CreateDir)?;
                    let d = m.dirs.len();
                    m.dirs.push(Dir::default());
                    m.dirs[at].current.insert(name, Node::Dir(d));
                    d
                }
            };
        }
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut m = self.lock()?;
        m.alive()?;
        let (from_dir, from_name) = m.parent_of(from)?;
        let (to_dir, to_name) = m.parent_of(to)?;
        if !m.dirs[from_dir].current.contains_key(&from_name) {
            return Err(errno(libc::ENOENT));
        }
        m.operation(Op::Rename)?;
        if let Some(node) = m.dirs[from_dir].current.remove(&from_name) {
            m.dirs[to_dir].current.insert(to_name, node);
        }
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut m = self.lock()?;
        m.alive()?;
        m.file(path)?;
        let (dir, name) = m.parent_of(path)?;
        m.operation(Op::Remove)?;
        m.dirs[dir].current.remove(&name);
        Ok(())
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut m = self.lock()?;
        m.alive()?;
        let d = m.dir(path)?;
        let (parent, name) = m.parent_of(path)?;
        m.operation(Op::Remove)?;
        // The subtree's own entries go too, so a stale durable entry can't resurrect them
        // once the parent's removal is durable; until then the parent's durable entry
        // still points at the (durable) subtree.
        m.dirs[d].current.clear();
        m.dirs[parent].current.remove(&name);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut m = self.lock()?;
        m.alive()?;
        let d = m.dir(dir)?;
        m.operation(Op::SyncDir)?;
        if !m.forget_syncs {
            m.dirs[d].durable = m.dirs[d].current.clone();
        }
        Ok(())
    }
}
