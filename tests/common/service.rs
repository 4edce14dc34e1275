//! `booster serve` as a process on a free loopback port, for the service tests: killed and
//! waited for when dropped, its log in `STORE.log` beside its store.

use std::fs::File;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Service {
    pub child: Child,
    pub addr: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The token the service tests share (a service refuses one under 16 characters).
pub const TOKEN: &str = "t0ken-t0ken-t0ken-t0ken";

/// A primary, or an unsigned replica of `primary` (`--allow-unsigned`).
pub fn start_service(store: &Path, registry: &str, primary: Option<&str>, token_file: &Path) -> Service {
    let args: Vec<&str> = primary
        .map(|p| vec!["--primary", p, "--allow-unsigned"])
        .unwrap_or_default();
    start_service_with(store, registry, &args, token_file)
}

/// Writes [`TOKEN`] to `dir/token` and returns its path.
pub fn token_file(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("token");
    std::fs::write(&p, format!("{TOKEN}\n")).unwrap();
    p
}

/// A fresh ECDSA P-256 key pair made by openssl: (private PEM, public PEM) in `dir`.
pub fn key_pair(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        key.to_str().unwrap(),
    ]);
    run(&[
        "pkey",
        "-in",
        key.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    (key, public)
}

pub fn start_service_with(store: &Path, registry: &str, args: &[&str], token_file: &Path) -> Service {
    let port = super::registry::free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(super::booster_bin());
    cmd.arg("--store")
        .arg(store)
        .args(["serve", "--registry", registry, "--listen", &addr, "--level", "9"])
        .arg("--token-file")
        .arg(token_file)
        .args(args)
        .stdout(Stdio::null())
        .stderr(File::create(store.with_extension("log")).unwrap());
    // Dropping a Service kills and waits for the process, on every path.
    let service = Service {
        child: cmd.spawn().unwrap(),
        addr,
    };
    // A TLS listener answers plain HTTP with a 400 saying so: that is its sign of life here.
    let ready = if args.contains(&"--tls-cert") { 400 } else { 200 };
    for _ in 0..200 {
        if TcpStream::connect(&service.addr).is_ok()
            && super::http::http(&service.addr, "GET", "/healthz", None).0 == ready
        {
            return service;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("booster serve did not start on {}", service.addr);
}
