//! preflate rebuilds in a child process.
//!
//! preflate-rs 0.7.6 loops forever on some hostile correction data (found by fuzzing:
//! `recreate_blocks` keeps writing empty blocks when it never decodes the end-of-stream
//! flag), and the loop allocates as it goes (about 250 MB a second). A thread cannot be
//! stopped, so a rebuild abandoned after its deadline would leave a spinning thread that
//! grows until the process dies — in `booster serve`, a hostile bundle could take the
//! service down. The booster binary therefore rebuilds preflate members in a child process
//! (`booster preflate-worker`, hidden), under an address-space limit, killed at the
//! deadline. Library users that never enable it (tests, fuzz targets) get the in-process
//! worker thread with the same deadline.
//!
//! The pipe protocol, one request per piece, in order (the child keeps preflate's state
//! across the pieces of one member, as the in-process worker does):
//!
//! ```text
//! request  = u64 LE plain_len ‖ plain ‖ u64 LE corrections_len ‖ corrections
//! response = u8 status (0 ok, 1 error) ‖ u64 LE len ‖ deflate bytes, or the error message
//! ```

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

/// The booster executable to run workers from, once `enable` was called.
static WORKER_EXE: OnceLock<PathBuf> = OnceLock::new();

/// The address space a worker may use: preflate holds a piece (≤ 64 MiB of plain text)
/// and its output a few times over.
const WORKER_ADDRESS_SPACE: u64 = 2 << 30;

/// Largest piece a worker accepts (booster writes pieces of at most 16 MiB).
const MAX_PIECE: u64 = 64 << 20;

/// Rebuild preflate members in child processes of `exe` from now on.
pub fn enable(exe: PathBuf) {
    let _ = WORKER_EXE.set(exe);
}

pub(crate) fn enabled() -> bool {
    WORKER_EXE.get().is_some()
}

/// `booster preflate-worker`: serve requests from stdin until it closes.
pub fn serve(input: impl Read, output: impl Write) -> io::Result<()> {
    limit_address_space();
    let mut input = BufReader::new(input);
    let mut output = BufWriter::new(output);
    let mut recreate = preflate_rs::RecreateStreamProcessor::new();
    loop {
        let Some(plain) = read_frame(&mut input, true)? else {
            return Ok(());
        };
        let corrections = read_frame(&mut input, false)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "request without corrections"))?;
        let result =
            super::guard_preflate(|| recreate.recompress(&mut io::Cursor::new(&plain), &corrections))
                .ok_or_else(|| "preflate panicked while rebuilding".to_string())
                .and_then(|r| r.map(|(out, _)| out).map_err(|e| format!("preflate: {e:?}")));
        match result {
            Ok(out) => {
                output.write_all(&[0])?;
                output.write_all(&(out.len() as u64).to_le_bytes())?;
                output.write_all(&out)?;
                output.flush()?;
            }
            Err(msg) => {
                output.write_all(&[1])?;
                output.write_all(&(msg.len() as u64).to_le_bytes())?;
                output.write_all(msg.as_bytes())?;
                output.flush()?;
                return Ok(());
            }
        }
    }
}

fn limit_address_space() {
    let lim = libc::rlimit {
        rlim_cur: WORKER_ADDRESS_SPACE,
        rlim_max: WORKER_ADDRESS_SPACE,
    };
    // SAFETY: setrlimit reads the struct it is given; failure only leaves the limit unset.
    unsafe {
        libc::setrlimit(libc::RLIMIT_AS, &lim);
    }
}

/// One length-prefixed frame; None at a clean end of input (only where `eof_ok`).
fn read_frame(r: &mut impl Read, eof_ok: bool) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 8];
    let mut got = 0;
    while got < 8 {
        let n = r.read(&mut len[got..])?;
        if n == 0 {
            if got == 0 && eof_ok {
                return Ok(None);
            }
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "truncated request"));
        }
        got += n;
    }
    let len = u64::from_le_bytes(len);
    if len > MAX_PIECE * 2 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "request too large"));
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf)?;
    Ok(Some(buf))
}

/// A running worker: requests go to its stdin; a reader thread hands responses over a
/// channel, so waiting for one can time out.
pub(crate) struct Worker {
    child: Child,
    stdin: Option<BufWriter<ChildStdin>>,
    responses: mpsc::Receiver<io::Result<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    pub fn start() -> io::Result<Worker> {
        let exe = WORKER_EXE
            .get()
            .ok_or_else(|| io::Error::other("preflate worker process not enabled"))?;
        let mut child = Command::new(exe)
            .arg("preflate-worker")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| io::Error::other(format!("starting {} preflate-worker: {e}", exe.display())))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take().expect("piped stdin");
        let (tx, responses) = mpsc::channel();
        let reader = std::thread::Builder::new()
            .name("preflate-reader".into())
            .spawn(move || read_responses(stdout, tx))?;
        Ok(Worker {
            child,
            stdin: Some(BufWriter::new(stdin)),
            responses,
            reader: Some(reader),
        })
    }

    /// Rebuild one piece; the worker is killed when it takes longer than `deadline`.
    pub fn piece(&mut self, plain: &[u8], corrections: &[u8], deadline: Duration) -> io::Result<Vec<u8>> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::other("preflate worker already stopped"))?;
        let sent = (|| {
            stdin.write_all(&(plain.len() as u64).to_le_bytes())?;
            stdin.write_all(plain)?;
            stdin.write_all(&(corrections.len() as u64).to_le_bytes())?;
            stdin.write_all(corrections)?;
            stdin.flush()
        })();
        if let Err(e) = sent {
            // The worker died (its answer, if any, says why).
            if let Ok(Err(answer)) = self.responses.recv_timeout(Duration::from_secs(1)) {
                return Err(answer);
            }
            return Err(io::Error::other(format!("preflate worker stopped: {e}")));
        }
        match self.responses.recv_timeout(deadline) {
            Ok(r) => r,
            Err(_) => {
                self.kill();
                Err(io::Error::other(format!(
                    "preflate did not finish a {}-byte piece within {}s: its correction data is damaged",
                    plain.len(),
                    deadline.as_secs()
                )))
            }
        }
    }

    fn kill(&mut self) {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Every piece was answered (or the rebuild gave up): nothing left to wait for.
        self.kill();
        // The killed child's stdout is closed, so the reader ends at once; joined so that no
        // thread outlives the rebuild (a leak checker saw one still holding its buffers).
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

fn read_responses(stdout: ChildStdout, tx: mpsc::Sender<io::Result<Vec<u8>>>) {
    let mut r = BufReader::new(stdout);
    loop {
        let mut status = [0u8; 1];
        if r.read_exact(&mut status).is_err() {
            let _ = tx.send(Err(io::Error::other(
                "preflate worker ended without an answer (out of memory or killed?)",
            )));
            return;
        }
        let body = match read_frame(&mut r, false) {
            Ok(Some(b)) => b,
            _ => {
                let _ = tx.send(Err(io::Error::other("preflate worker sent a truncated answer")));
                return;
            }
        };
        let msg = if status[0] == 0 {
            Ok(body)
        } else {
            Err(io::Error::other(String::from_utf8_lossy(&body).to_string()))
        };
        let stop = msg.is_err();
        if tx.send(msg).is_err() || stop {
            return;
        }
    }
}
