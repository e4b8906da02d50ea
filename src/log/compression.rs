//! Decompressing the records of a batch (or of a legacy wrapper message) in memory, within
//! a bound. Kafka streams a compressed batch record by record; Gregor decompresses it
//! whole where it must look inside (a compacted topic's keys at produce, the cleaner,
//! timestamps for ListOffsets, the console, legacy clients), so a few compressed bytes
//! claiming gigabytes (a "zip bomb": zeros compress about a thousand to one with gzip and
//! far more with zstd) would become gigabytes of broker memory. Every codec here stops at
//! `limit` bytes instead, and the caller refuses the batch as corrupt.
//!
//! Codecs are Kafka's attribute values: 0 none, 1 gzip, 2 snappy (Kafka's xerial framing,
//! or a raw block as some clients send), 3 lz4 (frame format), 4 zstd.

use std::io::Read;

use bytes::{Bytes, BytesMut};

/// What stored batches may decompress to: 256 MiB, or 64 times the compressed size for
/// batches larger than 4 MiB (topics whose max.message.bytes was raised for big records).
pub fn batch_limit(compressed_len: usize) -> usize {
    (256 << 20).max(compressed_len.saturating_mul(64))
}

/// Why records did not decompress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecompressError {
    /// More than the limit: refused before it was all in memory.
    TooLarge { limit: usize },
    /// Not valid data for the codec, or an unknown codec.
    Invalid(String),
}

impl std::fmt::Display for DecompressError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecompressError::TooLarge { limit } => {
                write!(f, "the records decompress to more than {limit} bytes")
            }
            DecompressError::Invalid(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for DecompressError {}

fn invalid(codec: &str, e: impl std::fmt::Display) -> DecompressError {
    DecompressError::Invalid(format!("{codec} data does not decompress: {e}"))
}

/// `compressed` decompressed with `codec`, if it fits in `limit` bytes.
pub fn decompress(codec: i16, compressed: &[u8], limit: usize) -> Result<Bytes, DecompressError> {
    match codec {
        0 if compressed.len() <= limit => Ok(Bytes::copy_from_slice(compressed)),
        0 => Err(DecompressError::TooLarge { limit }),
        1 => read_bounded("gzip", flate2::read::MultiGzDecoder::new(compressed), limit),
        2 if compressed.starts_with(XERIAL_MAGIC) => xerial_snappy(compressed, limit),
        2 => raw_snappy(compressed, limit),
        3 => {
            let decoder = lz4::Decoder::new(compressed).map_err(|e| invalid("lz4", e))?;
            read_bounded("lz4", decoder, limit)
        }
        4 => {
            let decoder =
                zstd::stream::read::Decoder::new(compressed).map_err(|e| invalid("zstd", e))?;
            read_bounded("zstd", decoder, limit)
        }
        _ => Err(DecompressError::Invalid(format!(
            "unknown compression codec {codec}"
        ))),
    }
}

/// Everything `reader` gives, unless it is more than `limit` bytes.
fn read_bounded(codec: &str, reader: impl Read, limit: usize) -> Result<Bytes, DecompressError> {
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| invalid(codec, e))?;
    if out.len() > limit {
        return Err(DecompressError::TooLarge { limit });
    }
    Ok(Bytes::from(out))
}

/// The xerial snappy stream header Java clients write before their snappy blocks.
const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";

/// One raw snappy block, its length (in its preamble) checked against `limit` first.
fn raw_snappy(block: &[u8], limit: usize) -> Result<Bytes, DecompressError> {
    let len = snap::raw::decompress_len(block).map_err(|e| invalid("snappy", e))?;
    if len > limit {
        return Err(DecompressError::TooLarge { limit });
    }
    snap::raw::Decoder::new()
        .decompress_vec(block)
        .map(Bytes::from)
        .map_err(|e| invalid("snappy", e))
}

/// Xerial framing: the 8-byte magic, two i32 versions, then (length u32, raw snappy block)*.
fn xerial_snappy(stream: &[u8], limit: usize) -> Result<Bytes, DecompressError> {
    let mut out = BytesMut::new();
    let mut at = XERIAL_MAGIC.len() + 8;
    while at < stream.len() {
        let len = stream
            .get(at..at + 4)
            .ok_or_else(|| invalid("snappy", "the stream ends inside a block length"))?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        at += 4;
        let block = stream
            .get(at..at.saturating_add(len))
            .ok_or_else(|| invalid("snappy", "the stream ends inside a block"))?;
        at += len;
        let part = raw_snappy(block, limit - out.len()).map_err(|e| match e {
            DecompressError::TooLarge { .. } => DecompressError::TooLarge { limit },
            other @ DecompressError::Invalid(_) => other,
        })?;
        out.extend_from_slice(&part);
    }
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;
    use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

    /// `data` compressed by the protocol crate (what clients and the broker's own encoder
    /// produce) with `codec`.
    fn compressed(codec: i16, data: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        let fill = |b: &mut BytesMut| {
            b.put_slice(data);
            Ok(())
        };
        match codec {
            1 => Gzip::compress(&mut out, fill),
            2 => Snappy::compress(&mut out, fill),
            3 => Lz4::compress(&mut out, fill),
            4 => Zstd::compress(&mut out, fill),
            _ => unreachable!(),
        }
        .unwrap();
        out.to_vec()
    }

    #[test]
    fn every_codec_round_trips_within_the_limit() {
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_be_bytes())
            .collect();
        for codec in 1..=4 {
            let c = compressed(codec, &data);
            assert_eq!(
                &decompress(codec, &c, data.len()).unwrap()[..],
                &data[..],
                "codec {codec}"
            );
        }
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(
            &decompress(2, &raw, data.len()).unwrap()[..],
            &data[..],
            "raw snappy"
        );
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let zeros = vec![0u8; 8 << 20];
        for codec in 1..=4 {
            let c = compressed(codec, &zeros);
            assert!(c.len() < 1 << 20, "codec {codec} compresses zeros");
            assert_eq!(
                decompress(codec, &c, 1 << 20),
                Err(DecompressError::TooLarge { limit: 1 << 20 }),
                "codec {codec}"
            );
        }
    }

    #[test]
    fn garbage_and_unknown_codecs_are_invalid() {
        for codec in 1..=4 {
            assert!(matches!(
                decompress(codec, b"not compressed at all", 1 << 20),
                Err(DecompressError::Invalid(_))
            ));
        }
        assert!(matches!(
            decompress(7, b"x", 10),
            Err(DecompressError::Invalid(_))
        ));
        // A raw snappy preamble claiming 4 GiB is refused before anything is allocated.
        assert_eq!(
            decompress(2, &[0xff, 0xff, 0xff, 0xff, 0x0f], 1 << 20),
            Err(DecompressError::TooLarge { limit: 1 << 20 })
        );
    }
}
