//! The store's process lock: `DIR/booster.lock`, held with `flock(2)` for as long as a
//! process has the store open, holding that process's pid so a second process can say who
//! has it. RocksDB has its own LOCK file, but its error is a bare IO error; this lock is
//! taken first so the user reads "in use by pid N" instead.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::error::{Error, IoContext, Result};

pub struct StoreLock {
    _file: File,
}

impl StoreLock {
    pub fn acquire(dir: &Path) -> Result<StoreLock> {
        let path = dir.join("booster.lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .ctx(|| format!("opening lock file {}", path.display()))?;
        let mut tries = 0;
        loop {
            // SAFETY: flock on a valid, open file descriptor owned by `file`.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                break;
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut pid = String::new();
                let _ = file.seek(SeekFrom::Start(0));
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                // Held by this very process: a store handle just closed whose descriptor a
                // child being spawned by another thread still shares until it calls exec.
                // That lasts milliseconds; another process's lock is reported at once.
                if pid == std::process::id().to_string() && tries < 50 {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                }
                return Err(Error::StoreInUse {
                    path: dir.to_path_buf(),
                    pid: if pid.is_empty() {
                        "unknown".into()
                    } else {
                        pid.to_string()
                    },
                });
            }
            return Err(Error::io(format!("locking {}", path.display()), err));
        }
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .ctx(|| format!("writing pid to {}", path.display()))?;
        Ok(StoreLock { _file: file })
    }
}
