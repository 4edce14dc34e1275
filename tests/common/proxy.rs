//! A fault-injecting HTTP proxy in front of a real registry: it answers 500/503 instead of
//! forwarding, cuts responses after some bytes, or stalls, according to a script of
//! faults consumed one request at a time. One request per connection (it adds
//! `Connection: close` both ways), which every HTTP client copes with.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status instead of forwarding.
    Status(u16),
    /// Forward, but close the connection after this many response bytes.
    CutAfter(usize),
    /// Forward after sleeping.
    Stall(Duration),
    /// Forward, with the response body's byte at this offset flipped (tampering in transit).
    FlipByte(usize),
}

/// Which requests a fault applies to.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Substring of "METHOD PATH" (e.g. "GET /v2/x/blobs/", "PUT ", "PATCH ").
    pub matching: String,
    pub fault: Fault,
    /// How many matching requests it hits.
    pub times: usize,
}

pub struct FaultProxy {
    pub addr: String,
    rules: Arc<Mutex<Vec<Rule>>>,
    pub hits: Arc<AtomicUsize>,
    pub requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    pub fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let rules: Arc<Mutex<Vec<Rule>>> = Arc::default();
        let hits = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, h, n, s) = (rules.clone(), hits.clone(), requests.clone(), stop.clone());
        let upstream = upstream.to_string();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (r, h, n, up) = (r.clone(), h.clone(), n.clone(), upstream.clone());
                std::thread::spawn(move || {
                    let _ = handle(conn, &up, &r, &h, &n);
                });
            }
        });
        FaultProxy {
            addr,
            rules,
            hits,
            requests,
            stop,
        }
    }

    pub fn add(&self, matching: &str, fault: Fault, times: usize) {
        self.rules.lock().unwrap().push(Rule {
            matching: matching.to_string(),
            fault,
            times,
        });
    }

    pub fn clear(&self) {
        self.rules.lock().unwrap().clear();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(&self.addr);
    }
}

fn take_fault(rules: &Mutex<Vec<Rule>>, line: &str) -> Option<Fault> {
    let mut rules = rules.lock().unwrap();
    let i = rules
        .iter()
        .position(|r| r.times > 0 && line.contains(&r.matching))?;
    rules[i].times -= 1;
    Some(rules[i].fault.clone())
}

/// Read an HTTP head (up to the blank line); returns its lines.
fn read_head(r: &mut BufReader<TcpStream>) -> std::io::Result<Vec<String>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("eof in head"));
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            return Ok(lines);
        }
        lines.push(line);
    }
}

fn content_length(head: &[String]) -> Option<u64> {
    head.iter().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })
}

fn is_chunked(head: &[String]) -> bool {
    head.iter().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.to_ascii_lowercase().contains("chunked")
    })
}

fn write_head(w: &mut impl Write, head: &[String]) -> std::io::Result<()> {
    for l in head {
        if l.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        write!(w, "{l}\r\n")?;
    }
    write!(w, "Connection: close\r\n\r\n")
}

fn handle(
    client: TcpStream,
    upstream: &str,
    rules: &Mutex<Vec<Rule>>,
    hits: &AtomicUsize,
    requests: &AtomicUsize,
) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut client_r = BufReader::new(client.try_clone()?);
    let mut client_w = client;
    let head = read_head(&mut client_r)?;
    requests.fetch_add(1, Ordering::Relaxed);
    let first = head.first().cloned().unwrap_or_default();
    let fault = take_fault(rules, &first);
    if fault.is_some() {
        hits.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(Fault::Status(code)) = fault {
        // Drain a small body so the client sees the answer, not a reset.
        if let Some(n) = content_length(&head).filter(|&n| n < (1 << 20)) {
            let _ = std::io::copy(&mut (&mut client_r).take(n), &mut std::io::sink());
        }
        let body = format!("{{\"errors\":[{{\"code\":\"UNAVAILABLE\",\"message\":\"injected {code}\"}}]}}");
        write!(
            client_w,
            "HTTP/1.1 {code} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        return Ok(());
    }
    if let Some(Fault::Stall(d)) = fault {
        std::thread::sleep(d);
    }
    let up = TcpStream::connect(upstream)?;
    up.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut up_w = up.try_clone()?;
    write_head(&mut up_w, &head)?;
    // Request body.
    if let Some(n) = content_length(&head) {
        std::io::copy(&mut (&mut client_r).take(n), &mut up_w)?;
    } else if is_chunked(&head) {
        copy_chunked(&mut client_r, &mut up_w)?;
    }
    up_w.flush()?;
    // Response.
    let mut up_r = BufReader::new(up);
    let resp_head = read_head(&mut up_r)?;
    let mut out: Vec<u8> = Vec::new();
    write_head(&mut out, &resp_head)?;
    let limit = match fault {
        Some(Fault::CutAfter(n)) => n,
        _ => usize::MAX,
    };
    let flip_at = match fault {
        Some(Fault::FlipByte(n)) => Some(n),
        _ => None,
    };
    let mut body_at = 0usize;
    let mut sent = 0usize;
    let head_bytes = out.len().min(limit);
    client_w.write_all(&out[..head_bytes])?;
    sent += head_bytes;
    if sent >= limit {
        return Ok(());
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = up_r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let n = n.min(limit - sent);
        if let Some(at) = flip_at
            && (body_at..body_at + n).contains(&at)
        {
            buf[at - body_at] ^= 0x40;
        }
        body_at += n;
        client_w.write_all(&buf[..n])?;
        sent += n;
        if sent >= limit {
            // Cut: close without finishing the body.
            let _ = client_w.shutdown(std::net::Shutdown::Both);
            return Ok(());
        }
    }
    Ok(())
}

fn copy_chunked(r: &mut BufReader<TcpStream>, w: &mut impl Write) -> std::io::Result<()> {
    loop {
        let mut size_line = String::new();
        r.read_line(&mut size_line)?;
        w.write_all(size_line.as_bytes())?;
        let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
        let mut chunk = vec![0u8; size + 2];
        r.read_exact(&mut chunk)?;
        w.write_all(&chunk)?;
        if size == 0 {
            return Ok(());
        }
    }
}
