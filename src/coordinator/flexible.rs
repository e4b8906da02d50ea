//! Values of coordinator records (`__consumer_offsets`, `__share_group_state`) in Kafka's
//! flexible encoding: an i16 version, then compact strings and arrays as unsigned varints
//! (length + 1), and a tagged-field section after every struct. Keys are not flexible
//! (`internal_topic::put_string`, `Reader`).

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::coordinator::consumer::Assignment;
use crate::coordinator::internal_topic::Reader;

/// A flexible-version value being written.
pub struct Value(pub Vec<u8>);

impl Default for Value {
    fn default() -> Value {
        Value::new()
    }
}

impl Value {
    /// A value of version 0.
    pub fn new() -> Value {
        Value(0i16.to_be_bytes().to_vec())
    }
    pub fn uvarint(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.0.push((n as u8) | 0x80);
            n >>= 7;
        }
        self.0.push(n as u8);
    }
    pub fn string(&mut self, s: &str) {
        self.uvarint(s.len() as u64 + 1);
        self.0.extend_from_slice(s.as_bytes());
    }
    pub fn nullable(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.string(s),
            None => self.0.push(0),
        }
    }
    pub fn i8(&mut self, v: i8) {
        self.0.push(v as u8);
    }
    /// Compact bytes (not null).
    pub fn bytes(&mut self, b: &[u8]) {
        self.uvarint(b.len() as u64 + 1);
        self.0.extend_from_slice(b);
    }
    pub fn i16(&mut self, v: i16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub fn uuid(&mut self, v: Uuid) {
        self.0.extend_from_slice(v.as_bytes());
    }
    /// An empty tagged-field section.
    pub fn no_tags(&mut self) {
        self.0.push(0);
    }
    pub fn partitions(&mut self, a: &Assignment) {
        let topics: Vec<_> = a.iter().filter(|(_, p)| !p.is_empty()).collect();
        self.uvarint(topics.len() as u64 + 1);
        for (topic, parts) in topics {
            self.0.extend_from_slice(topic.as_bytes());
            self.uvarint(parts.len() as u64 + 1);
            for p in parts {
                self.i32(*p);
            }
            self.no_tags();
        }
    }
}

/// Reads a flexible-version value.
pub struct Fields<'a>(pub Reader<'a>);

impl<'a> Fields<'a> {
    pub fn uvarint(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.0.take(1)?[0];
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }
    pub fn nullable(&mut self) -> Option<Option<String>> {
        match self.uvarint()? {
            0 => Some(None),
            n => {
                let b = self.0.take(usize::try_from(n - 1).ok()?)?;
                Some(Some(String::from_utf8_lossy(b).into_owned()))
            }
        }
    }
    pub fn string(&mut self) -> Option<String> {
        self.nullable().map(Option::unwrap_or_default)
    }
    pub fn len(&mut self) -> Option<usize> {
        usize::try_from(self.uvarint()?.saturating_sub(1)).ok()
    }
    /// Compact bytes (empty when null).
    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        match self.uvarint()? {
            0 => Some(&[]),
            n => self.0.take(usize::try_from(n - 1).ok()?),
        }
    }
    pub fn i8(&mut self) -> Option<i8> {
        Some(self.0.take(1)?[0] as i8)
    }
    pub fn i16(&mut self) -> Option<i16> {
        self.0.i16()
    }
    pub fn i32(&mut self) -> Option<i32> {
        self.0.i32()
    }
    pub fn i64(&mut self) -> Option<i64> {
        self.0.i64()
    }
    pub fn uuid(&mut self) -> Option<Uuid> {
        Uuid::from_slice(self.0.take(16)?).ok()
    }
    /// Reads a tagged-field section; returns the data of tag 0, if there.
    pub fn tags(&mut self) -> Option<Option<&'a [u8]>> {
        let mut tag0 = None;
        for _ in 0..self.uvarint()? {
            let tag = self.uvarint()?;
            let size = usize::try_from(self.uvarint()?).ok()?;
            let data = self.0.take(size)?;
            if tag == 0 {
                tag0 = Some(data);
            }
        }
        Some(tag0)
    }
    pub fn partitions(&mut self) -> Option<Assignment> {
        let mut a = Assignment::new();
        for _ in 0..self.len()? {
            let topic = Uuid::from_slice(self.0.take(16)?).ok()?;
            let mut parts = BTreeSet::new();
            for _ in 0..self.len()? {
                parts.insert(self.i32()?);
            }
            self.tags()?;
            a.insert(topic, parts);
        }
        Some(a)
    }
}
