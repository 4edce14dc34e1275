//! A fresh Debian root to install packages into: `debootstrap --variant=minbase` of this
//! machine's release (with the libraries a .deb of booster depends on), made once per
//! machine and kept as a tarball under /var/tmp, unpacked per test into a temp directory
//! and entered with chroot (the tests run as root, as .ci/run does).

use std::path::{Path, PathBuf};
use std::process::Command;

const CACHE: &str = "/var/tmp/booster-fresh-root";

pub struct FreshRoot {
    dir: tempfile::TempDir,
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The Debian mirror this machine's apt uses.
fn mirror() -> String {
    let mut text = std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        for e in dir.flatten() {
            text.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            text.push('\n');
        }
    }
    text.split_whitespace()
        .find(|w| w.starts_with("http") && w.trim_end_matches('/').ends_with("/debian"))
        .expect("no Debian archive in this machine's apt sources (/etc/apt/sources.list[.d])")
        .to_string()
}

fn codename() -> String {
    let os = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    os.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .unwrap_or("bookworm")
        .trim_matches('"')
        .to_string()
}

/// The cached tarball, made by debootstrap the first time (under a lock: tests run in
/// parallel).
fn tarball() -> PathBuf {
    std::fs::create_dir_all(CACHE).unwrap();
    let suite = codename();
    let tar = Path::new(CACHE).join(format!("{suite}-minbase.tar"));
    let lock = std::fs::File::create(Path::new(CACHE).join("lock")).unwrap();
    // flock, not File::lock (Rust 1.89; the crate's MSRV is 1.85); released when `lock`
    // is dropped at the end of this function.
    use std::os::fd::AsRawFd;
    // SAFETY: a valid open descriptor; flock has no memory effects.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    if !tar.exists() {
        let build = Path::new(CACHE).join("build");
        let _ = std::fs::remove_dir_all(&build);
        run(
            Command::new("debootstrap")
                .args([
                    "--variant=minbase",
                    "--include=adduser,ca-certificates,libssl3,libzstd1,zlib1g,libstdc++6",
                    &suite,
                ])
                .arg(&build)
                .arg(mirror()),
            "debootstrap (apt-get install debootstrap)",
        );
        let partial = tar.with_extension("partial");
        run(
            Command::new("tar")
                .arg("-C")
                .arg(&build)
                .arg("-cf")
                .arg(&partial)
                .arg("."),
            "tar of the fresh root",
        );
        std::fs::rename(&partial, &tar).unwrap();
        let _ = std::fs::remove_dir_all(&build);
    }
    tar
}

impl FreshRoot {
    pub fn new() -> FreshRoot {
        let tar = tarball();
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        run(
            Command::new("tar").arg("-C").arg(dir.path()).arg("-xf").arg(&tar),
            "unpack the fresh root",
        );
        FreshRoot { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `dpkg -i` the package inside the root.
    pub fn install_deb(&self, deb: &Path) {
        let inside = self.dir.path().join("tmp").join(deb.file_name().unwrap());
        std::fs::copy(deb, &inside).unwrap();
        let name = format!("/tmp/{}", deb.file_name().unwrap().to_string_lossy());
        self.run(&["dpkg", "-i", &name]);
    }

    /// Run a command inside the root; its stdout.
    pub fn run(&self, argv: &[&str]) -> String {
        run(
            Command::new("chroot")
                .arg(self.dir.path())
                .args(argv)
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            &format!("chroot {}", argv.join(" ")),
        )
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(rel)).unwrap_or_default()
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.dir.path().join(rel).exists()
    }
}
