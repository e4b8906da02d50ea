//! `FrameParts`: a response frame made of encoded bytes and record ranges still in segment
//! files (Fetch), so that the records go from the file to the socket without being copied
//! into the response first. The connection writes the parts in order.

use bytes::{BufMut, Bytes, BytesMut};

use crate::log::{LogError, Records};

/// One piece of a frame.
#[derive(Debug)]
pub enum Part {
    Bytes(Bytes),
    Records(Records),
}

/// A response frame in parts, built front to back: encoded fields go into `tail` until a
/// record range interrupts them.
#[derive(Debug, Default)]
pub struct FrameParts {
    parts: Vec<Part>,
    tail: BytesMut,
    len: usize,
}

impl FrameParts {
    pub fn new() -> FrameParts {
        FrameParts::default()
    }

    /// The buffer encoded fields are appended to.
    pub fn buf(&mut self) -> &mut BytesMut {
        &mut self.tail
    }

    /// Appends a record range after what is encoded so far.
    pub fn push_records(&mut self, records: Records) {
        if records.len() == 0 {
            return;
        }
        self.seal_tail();
        self.len += records.len();
        self.parts.push(Part::Records(records));
    }

    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            let bytes = self.tail.split().freeze();
            self.len += bytes.len();
            self.parts.push(Part::Bytes(bytes));
        }
    }

    /// The frame: its size prefix (of what was built), then the parts in order; and the
    /// frame's length in bytes.
    pub fn finish(mut self) -> (Vec<Part>, usize) {
        self.seal_tail();
        let size = Bytes::copy_from_slice(&(self.len as i32).to_be_bytes());
        self.parts.insert(0, Part::Bytes(size));
        (self.parts, self.len + 4)
    }

    /// Bytes encoded so far, records included.
    pub fn len(&self) -> usize {
        self.len + self.tail.len()
    }
}

/// The whole frame as one buffer, records read from their files (tests, and callers
/// without a socket).
pub fn into_frame(parts: Vec<Part>) -> Result<BytesMut, LogError> {
    let mut out = BytesMut::new();
    for part in parts {
        match part {
            Part::Bytes(b) => out.put_slice(&b),
            Part::Records(r) => out.put_slice(&r.into_bytes()?),
        }
    }
    Ok(out)
}
