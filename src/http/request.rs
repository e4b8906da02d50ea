//! Reading HTTP/1.1 requests: the request line, headers and a `Content-Length` body, within
//! limits (head 16 KiB, body 1 MiB). Chunked request bodies are not accepted (411/501):
//! browsers and `curl` send a length for the small JSON bodies the API takes.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest request line plus headers.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Largest request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path, percent-decoded per segment by [`Request::segments`].
    pub path: String,
    /// Query parameters, percent-decoded.
    pub query: Vec<(String, String)>,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the connection stays open after the answer.
    pub keep_alive: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path's segments, percent-decoded (`/api/topics/a%2Fb` → `api`, `topics`, `a/b`).
    pub fn segments(&self) -> Vec<String> {
        self.path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect()
    }
}

/// Why no request could be read.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The client closed the connection between requests.
    Closed,
    /// Answer with this status and close (400, 411, 413, 431, 501, 505).
    Status(u16, &'static str),
    Io(String),
}

/// Reads one request from `reader`; `buf` keeps bytes read past it (a pipelined request).
pub async fn read_request<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> Result<Request, ReadError> {
    let head_end = loop {
        if let Some(at) = find(buf, b"\r\n\r\n") {
            break at;
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err(ReadError::Status(431, "request head too large"));
        }
        let mut chunk = [0u8; 4096];
        let n = reader
            .read(&mut chunk)
            .await
            .map_err(|e| ReadError::Io(e.to_string()))?;
        if n == 0 {
            return Err(if buf.is_empty() {
                ReadError::Closed
            } else {
                ReadError::Status(400, "incomplete request")
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if head_end > MAX_HEAD_BYTES {
        return Err(ReadError::Status(431, "request head too large"));
    }
    let head = std::str::from_utf8(&buf[..head_end])
        .map_err(|_| ReadError::Status(400, "request head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let mut parts = lines.next().unwrap_or_default().split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Status(400, "malformed request line"));
    };
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => {
            return Err(ReadError::Status(
                505,
                "only HTTP/1.0 and HTTP/1.1 are served",
            ))
        }
    };
    if method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_uppercase())
        || !target.starts_with('/')
    {
        return Err(ReadError::Status(400, "malformed request line"));
    }
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(ReadError::Status(400, "malformed header"));
        };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    if header("transfer-encoding").is_some() {
        return Err(ReadError::Status(
            501,
            "chunked request bodies are not accepted; send Content-Length",
        ));
    }
    let length = match header("content-length") {
        None => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ReadError::Status(400, "bad Content-Length"))?,
    };
    if length > MAX_BODY_BYTES {
        return Err(ReadError::Status(
            413,
            "request body too large (1 MiB at most)",
        ));
    }
    let connection = header("connection")
        .map(|v| v.to_ascii_lowercase())
        .unwrap_or_default();
    let keep_alive = if http10 {
        connection == "keep-alive"
    } else {
        connection != "close"
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let method = method.to_string();
    let path = path.to_string();
    let query = parse_query(query);
    let body_start = head_end + 4;
    while buf.len() < body_start + length {
        let mut chunk = vec![0u8; (body_start + length - buf.len()).min(64 * 1024)];
        let n = reader
            .read(&mut chunk)
            .await
            .map_err(|e| ReadError::Io(e.to_string()))?;
        if n == 0 {
            return Err(ReadError::Status(400, "incomplete request body"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[body_start..body_start + length].to_vec();
    buf.drain(..body_start + length);
    Ok(Request {
        method,
        path,
        query,
        headers,
        body,
        keep_alive,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `a=1&b=x%20y` → [(a, 1), (b, x y)]; `+` is a space, as forms encode it.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

/// Decodes `%XX` escapes; invalid escapes are kept as written, invalid UTF-8 replaced.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(text: &str) -> Result<Request, ReadError> {
        let mut reader = text.as_bytes();
        let mut buf = Vec::new();
        read_request(&mut reader, &mut buf).await
    }

    #[tokio::test]
    async fn a_request_with_a_body_and_a_query_is_read() {
        let r = read("POST /api/topics/a%2Fb/messages?limit=5&key=x+y HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}")
            .await
            .unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.segments(), vec!["api", "topics", "a/b", "messages"]);
        assert_eq!(r.param("limit"), Some("5"));
        assert_eq!(r.param("key"), Some("x y"));
        assert_eq!(r.body, b"{}");
        assert!(r.keep_alive);
        assert_eq!(r.header("host"), Some("h"));
    }

    #[tokio::test]
    async fn bad_requests_get_a_status_not_a_panic() {
        assert_eq!(read("").await, Err(ReadError::Closed));
        assert_eq!(
            read("GET /\r\n\r\n").await,
            Err(ReadError::Status(400, "malformed request line"))
        );
        assert_eq!(
            read("GET / HTTP/2\r\n\r\n").await.unwrap_err(),
            ReadError::Status(505, "only HTTP/1.0 and HTTP/1.1 are served")
        );
        assert!(matches!(
            read("POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n").await,
            Err(ReadError::Status(413, _))
        ));
        assert!(matches!(
            read("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").await,
            Err(ReadError::Status(501, _))
        ));
        assert!(matches!(
            read("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab").await,
            Err(ReadError::Status(400, _))
        ));
        let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
        assert!(matches!(read(&huge).await, Err(ReadError::Status(431, _))));
        assert!(!read("GET / HTTP/1.0\r\n\r\n").await.unwrap().keep_alive);
    }

    #[test]
    fn percent_escapes_decode_and_bad_ones_stay() {
        assert_eq!(percent_decode("a%20b%zz%"), "a b%zz%");
        assert_eq!(percent_decode("%E2%9C%93"), "✓");
        assert_eq!(percent_decode("%é%"), "%é%");
    }
}
