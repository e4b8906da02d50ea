//! Reading and writing the fields of the removed request and response versions, which the
//! protocol crate no longer knows: all of them are fixed-width integers, i16-length strings,
//! i32-length bytes and i32-count arrays (none is a flexible version).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::api::RequestError;

/// A request body being read front to back; every read that runs past the end is a
/// malformed request (the connection is closed, as Kafka does).
pub struct Reader {
    buf: Bytes,
    what: &'static str,
}

impl Reader {
    /// `what` names the request in errors ("Produce v0").
    pub fn new(buf: Bytes, what: &'static str) -> Reader {
        Reader { buf, what }
    }

    fn need(&self, n: usize) -> Result<(), RequestError> {
        if self.buf.remaining() < n {
            return Err(RequestError(format!(
                "malformed {} request: it ends {} bytes early",
                self.what,
                n - self.buf.remaining()
            )));
        }
        Ok(())
    }

    pub fn i8(&mut self) -> Result<i8, RequestError> {
        self.need(1)?;
        Ok(self.buf.get_i8())
    }

    pub fn i16(&mut self) -> Result<i16, RequestError> {
        self.need(2)?;
        Ok(self.buf.get_i16())
    }

    pub fn i32(&mut self) -> Result<i32, RequestError> {
        self.need(4)?;
        Ok(self.buf.get_i32())
    }

    pub fn i64(&mut self) -> Result<i64, RequestError> {
        self.need(8)?;
        Ok(self.buf.get_i64())
    }

    /// A nullable string (null reads as None).
    pub fn nullable_string(&mut self) -> Result<Option<String>, RequestError> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        let len = len as usize;
        self.need(len)?;
        let bytes = self.buf.split_to(len);
        String::from_utf8(bytes.to_vec()).map(Some).map_err(|_| {
            RequestError(format!(
                "malformed {} request: a string is not UTF-8",
                self.what
            ))
        })
    }

    /// A string; null reads as empty, as Kafka's old parsers did for non-nullable fields.
    pub fn string(&mut self) -> Result<String, RequestError> {
        Ok(self.nullable_string()?.unwrap_or_default())
    }

    /// Nullable bytes with an i32 length.
    pub fn bytes(&mut self) -> Result<Option<Bytes>, RequestError> {
        let len = self.i32()?;
        if len < 0 {
            return Ok(None);
        }
        let len = len as usize;
        self.need(len)?;
        Ok(Some(self.buf.split_to(len)))
    }

    /// An array's element count (null reads as empty). Every element takes at least one
    /// byte, so a count beyond the bytes left is malformed rather than an allocation.
    pub fn array_len(&mut self) -> Result<usize, RequestError> {
        let len = self.i32()?;
        if len < 0 {
            return Ok(0);
        }
        let len = len as usize;
        if len > self.buf.remaining() {
            return Err(RequestError(format!(
                "malformed {} request: an array of {len} elements in {} bytes",
                self.what,
                self.buf.remaining()
            )));
        }
        Ok(len)
    }
}

pub fn put_string(out: &mut BytesMut, s: &str) {
    out.put_i16(s.len() as i16);
    out.put_slice(s.as_bytes());
}

pub fn put_nullable_string(out: &mut BytesMut, s: Option<&str>) {
    match s {
        None => out.put_i16(-1),
        Some(s) => put_string(out, s),
    }
}

pub fn put_array_len(out: &mut BytesMut, len: usize) {
    out.put_i32(len as i32);
}
