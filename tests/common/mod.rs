//! Helpers shared by the integration tests: deterministic data, temp stores, the real
//! binary, and real registries on loopback.
#![allow(dead_code)]

pub mod fresh_root;
/// The Go reference programs, shared with recompress's differential tests.
#[path = "../../crates/recompress/tests/common/goref.rs"]
pub mod goref;
pub mod http;
pub mod image;
pub mod podman;
pub mod proxy;
pub mod registry;
pub mod service;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Deterministic pseudo-random bytes (xorshift64*), the same on every machine.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Compressible, text-like deterministic bytes: words from a small vocabulary.
pub fn pseudo_text(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "layer", "chunk", "store", "booster", "registry", "digest", "manifest", "tar", "gzip", "delta",
        "bundle", "image", "config", "blob", "the", "of",
    ];
    let r = pseudo_random(len / 3 + 16, seed);
    let mut out = Vec::with_capacity(len + 16);
    let mut i = 0;
    while out.len() < len {
        let b = r[i % r.len()];
        out.extend_from_slice(WORDS[(b & 15) as usize].as_bytes());
        out.push(if b & 0x30 == 0 { b'\n' } else { b' ' });
        i += 1;
    }
    out.truncate(len);
    out
}

/// A tar with the given files (GNU headers, mode 0644, mtime 0).
pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn booster_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_booster"))
}

/// Run the real binary with a store; returns its output.
pub fn booster(store: &Path, args: &[&str]) -> Output {
    Command::new(booster_bin())
        .arg("--store")
        .arg(store)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run booster")
}

pub fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "booster failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}
