//! Kafka framing: each request and response is a 4-byte big-endian size followed by that
//! many bytes. Requests larger than `socket.request.max.bytes` are refused before anything
//! is allocated for them, a request's bytes are reserved in the `queued.max.request.bytes`
//! pool before its body is read, and the buffer grows only as bytes actually arrive.

pub mod authentication;
pub mod connection;
pub mod connection_quotas;
pub mod request_memory;

use request_memory::{RequestMemory, RequestMemoryPool};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Why a connection stops reading.
#[derive(Debug)]
pub enum FrameError {
    /// The peer closed the connection between frames.
    Closed,
    /// The size prefix is negative or above the limit.
    TooLarge {
        size: i64,
        max: usize,
    },
    /// The connection ended in the middle of a frame.
    Truncated,
    Io(std::io::Error),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Closed => f.write_str("connection closed"),
            FrameError::TooLarge { size, max } => write!(
                f,
                "request size {size} is outside [0, {max}] (socket.request.max.bytes)"
            ),
            FrameError::Truncated => f.write_str("connection closed in the middle of a request"),
            FrameError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FrameError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FrameError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Most bytes reserved ahead of what has arrived.
const READ_CHUNK: usize = 256 * 1024;

/// Reads one frame into `buf` (which keeps bytes read ahead) and returns its payload, with
/// its reservation in `pool` (to hold until the answer is written).
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    max_size: usize,
    pool: &RequestMemoryPool,
) -> Result<(BytesMut, RequestMemory), FrameError> {
    while buf.len() < 4 {
        buf.reserve(READ_CHUNK.min(64 * 1024));
        let n = reader.read_buf(buf).await.map_err(FrameError::Io)?;
        if n == 0 {
            return Err(if buf.is_empty() {
                FrameError::Closed
            } else {
                FrameError::Truncated
            });
        }
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if size < 0 || size as usize > max_size {
        return Err(FrameError::TooLarge {
            size: size as i64,
            max: max_size,
        });
    }
    let total = 4 + size as usize;
    let memory = pool.reserve(total).await;
    // Room for the whole frame at once: growing in steps would copy what arrived so far
    // at every step. The size is already checked against socket.request.max.bytes, and
    // reserved pages cost memory only as data arrives to fill them.
    buf.reserve(total.saturating_sub(buf.len()));
    while buf.len() < total {
        buf.reserve((total - buf.len()).min(READ_CHUNK));
        let n = reader.read_buf(buf).await.map_err(FrameError::Io)?;
        if n == 0 {
            return Err(FrameError::Truncated);
        }
    }
    buf.advance(4);
    Ok((buf.split_to(size as usize), memory))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_are_split_and_limits_enforced() {
        let pool = RequestMemoryPool::unbounded();
        let mut data: Vec<u8> = Vec::new();
        data.extend_from_slice(&3i32.to_be_bytes());
        data.extend_from_slice(b"abc");
        data.extend_from_slice(&1i32.to_be_bytes());
        data.extend_from_slice(b"z");
        let mut reader = &data[..];
        let mut buf = BytesMut::new();
        assert_eq!(
            &read_frame(&mut reader, &mut buf, 10, &pool)
                .await
                .unwrap()
                .0[..],
            b"abc"
        );
        assert_eq!(
            &read_frame(&mut reader, &mut buf, 10, &pool)
                .await
                .unwrap()
                .0[..],
            b"z"
        );
        assert!(matches!(
            read_frame(&mut reader, &mut buf, 10, &pool).await,
            Err(FrameError::Closed)
        ));

        let huge = i32::MAX.to_be_bytes();
        let mut reader = &huge[..];
        let mut buf = BytesMut::new();
        assert!(matches!(
            read_frame(&mut reader, &mut buf, 100, &pool).await,
            Err(FrameError::TooLarge { .. })
        ));
        assert!(buf.capacity() < 1 << 20);

        let neg = (-5i32).to_be_bytes();
        let mut reader = &neg[..];
        assert!(matches!(
            read_frame(&mut reader, &mut BytesMut::new(), 100, &pool).await,
            Err(FrameError::TooLarge { .. })
        ));

        let mut short = Vec::new();
        short.extend_from_slice(&10i32.to_be_bytes());
        short.extend_from_slice(b"abc");
        let mut reader = &short[..];
        assert!(matches!(
            read_frame(&mut reader, &mut BytesMut::new(), 100, &pool).await,
            Err(FrameError::Truncated)
        ));
    }
}
