//! The Go encoders booster's models are checked against, built on demand: the system Go
//! with Debian bookworm's klauspost packages, and Go 1.27 with klauspost/compress 1.18.0 or
//! 1.20.3 that `scripts/go-refs.sh` unpacks from Debian's newer suites.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use recompress::kpflate::Variant;

/// One Go build cache for every test binary (Go 1.27 compiles its standard library into it
/// once, which takes a minute the first time).
fn go_cache() -> PathBuf {
    std::env::var_os("BOOSTER_GOCACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("gocache-1.27"))
}

/// Which Go encoder a reference program is built against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reference {
    /// The system Go with Debian bookworm's klauspost/compress 1.15.12 and
    /// pgzip 1.2.5 (`/usr/share/gocode`, or `BOOSTER_GOPATH`).
    Bookworm,
    /// Go 1.27 with klauspost/compress 1.18.0 and pgzip 1.2.6 (scripts/go-refs.sh).
    Kp1_18,
    /// Go 1.27 with klauspost/compress 1.20.3 and pgzip 1.2.6 (scripts/go-refs.sh).
    Kp1_20,
    /// Go 1.27's own compress/flate (scripts/go-refs.sh).
    Go1_27,
}

impl Reference {
    pub fn variant(self) -> Variant {
        match self {
            Reference::Bookworm => Variant::Kp1_15,
            Reference::Kp1_18 => Variant::Kp1_18,
            Reference::Kp1_20 => Variant::Kp1_20,
            Reference::Go1_27 => Variant::Go1_27,
        }
    }
}

/// `KEY=VALUE` lines of the refs.env that scripts/go-refs.sh writes.
fn go_refs_env() -> &'static HashMap<String, String> {
    static ENV: OnceLock<HashMap<String, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let dir = std::env::var("BOOSTER_GO_REFS").unwrap_or_else(|_| "/var/tmp/booster-go-refs".into());
        let path = Path::new(&dir).join("refs.env");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}: the Go 1.27 and klauspost 1.18/1.20 references are missing; \
                 run scripts/go-refs.sh (it fetches them from Debian trixie/sid into {dir})",
                path.display()
            )
        });
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    })
}

pub fn gopath() -> PathBuf {
    std::env::var_os("BOOSTER_GOPATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/share/gocode".into())
}

/// Builds a Go reference program once per test binary and reference.
pub fn go_bin(name: &str, reference: Reference) -> PathBuf {
    static BUILT: std::sync::Mutex<Option<HashMap<(String, Reference), PathBuf>>> =
        std::sync::Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(p) = built.get(&(name.to_string(), reference)) {
        return p.clone();
    }
    // Per test binary: two binaries building the same program at once must not share it.
    let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("go-refs")
        .join(env!("CARGO_CRATE_NAME"))
        .join(format!("{reference:?}"));
    std::fs::create_dir_all(&out).expect("create the Go build dir");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go").join(name);
    let bin = out.join(name);
    let mut cmd = match reference {
        Reference::Bookworm => {
            let mut cmd = Command::new("go");
            cmd.env("GOPATH", gopath());
            if std::env::var_os("GOCACHE").is_none() && std::env::var_os("HOME").is_none() {
                cmd.env("GOCACHE", out.join("gocache"));
            }
            cmd
        }
        _ => {
            let env = go_refs_env();
            let root = PathBuf::from(&env["GO127_ROOT"]);
            let gopath = match reference {
                Reference::Kp1_18 => env["KP118_GOPATH"].clone(),
                Reference::Kp1_20 => env["KP120_GOPATH"].clone(),
                _ => out.join("empty-gopath").display().to_string(),
            };
            let mut cmd = Command::new(root.join("bin/go"));
            cmd.env_clear()
                .env("PATH", "/usr/bin:/bin")
                .env("GOROOT", &root)
                .env("GOPATH", gopath)
                .env("GOTOOLCHAIN", "local")
                .env("GOPROXY", "off")
                .env("GOFLAGS", "")
                .env("CGO_ENABLED", "0")
                .env("GOCACHE", go_cache());
            cmd
        }
    };
    cmd.env("GO111MODULE", "off").arg("build");
    // A program's klauspost modes (kp.go) need a GOPATH that has klauspost.
    if src.join("kp.go").exists() && reference != Reference::Go1_27 {
        cmd.args(["-tags", "kp"]);
    }
    cmd.arg("-o").arg(&bin).arg(".").current_dir(&src);
    let status = cmd.status().unwrap_or_else(|e| {
        panic!(
            "cannot run `go build` in {} ({e}): these tests need Go (Debian: golang-go), the \
             Debian packages golang-github-klauspost-compress-dev 1.15.12 and \
             golang-github-klauspost-pgzip-dev 1.2.5, and scripts/go-refs.sh for the newer ones",
            src.display()
        )
    });
    assert!(
        status.success(),
        "go build of {} for {reference:?} failed",
        src.display()
    );
    built.insert((name.to_string(), reference), bin.clone());
    bin
}
