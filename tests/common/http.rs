//! A minimal HTTP/1.1 client for the companion service's endpoints.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// `METHOD path` on `addr` (HTTP/1.1, empty body, optional bearer token): the status code
/// and the body. Waits up to 10 minutes for a slow sync.
pub fn http(addr: &str, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    http_with_body(addr, method, path, token, &[])
}

/// [`http`] with a request body.
pub fn http_with_body(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(600))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    s.write_all(&request).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).to_string();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}
