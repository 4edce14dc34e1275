//! A real registry for tests: Debian's `docker-registry` (the CNCF distribution server)
//! started on a free 127.0.0.1 port with its own config and a temp storage directory, and
//! stopped when dropped. Never the packaged config: it listens everywhere and answers 401.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct TestRegistry {
    pub addr: String,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    pub auth: Option<(String, String)>,
}

/// A loopback port free right now (another process may take it before it is bound).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn registry_binary() -> PathBuf {
    for p in [
        "/usr/bin/docker-registry",
        "/usr/local/bin/docker-registry",
        "/usr/bin/registry",
    ] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("docker-registry is not installed: run `apt-get install docker-registry` (CI's .ci/run does)");
}

impl TestRegistry {
    pub fn start() -> TestRegistry {
        Self::start_with(None)
    }

    /// A registry that requires htpasswd (bcrypt) basic auth.
    pub fn start_with_auth(user: &str, pass: &str) -> TestRegistry {
        Self::start_with(Some((user.to_string(), pass.to_string())))
    }

    fn start_with(auth: Option<(String, String)>) -> TestRegistry {
        let dir = tempfile::tempdir().unwrap();
        let mut reg = TestRegistry {
            addr: String::new(),
            dir,
            child: None,
            auth,
        };
        // A free port can be taken between probing and binding: try a few.
        for _ in 0..5 {
            reg.addr = format!("127.0.0.1:{}", free_port());
            reg.write_config();
            reg.spawn();
            if reg.wait_ready(Duration::from_secs(10)) {
                return reg;
            }
            reg.stop();
        }
        let log = std::fs::read_to_string(reg.dir.path().join("registry.log")).unwrap_or_default();
        panic!("docker-registry did not start: {log}");
    }

    fn write_config(&self) {
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {}\n  secret: booster-test-secret\n",
            self.dir.path().join("data").display(),
            self.addr
        );
        if let Some((u, p)) = &self.auth {
            let htpasswd = self.dir.path().join("htpasswd");
            let st = Command::new("htpasswd")
                .args(["-B", "-b", "-c"])
                .arg(&htpasswd)
                .args([u, p])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("htpasswd (apache2-utils) must be installed");
            assert!(st.success());
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: booster-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        std::fs::write(self.dir.path().join("config.yml"), config).unwrap();
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("registry.log")).unwrap();
        self.child = Some(
            Command::new(registry_binary())
                .arg("serve")
                .arg(self.dir.path().join("config.yml"))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start docker-registry"),
        );
    }

    fn wait_ready(&mut self, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(_)) = c.try_wait()
            {
                return false;
            }
            if let Ok(status) = self.http_status("GET", "/v2/") {
                if status == 200 || status == 401 {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Status code of a plain HTTP request (no auth), or an error if nothing answers.
    pub fn http_status(&self, method: &str, path: &str) -> std::io::Result<u16> {
        let mut s = TcpStream::connect(&self.addr)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )?;
        let mut buf = String::new();
        let _ = s.read_to_string(&mut buf);
        buf.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other("no status"))
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start again on the same address and storage (after `stop`).
    pub fn restart(&mut self) {
        assert!(self.child.is_none());
        self.spawn();
        assert!(
            self.wait_ready(Duration::from_secs(10)),
            "registry did not restart"
        );
    }

    /// skopeo's `--creds` argument for this registry, if it needs one.
    pub fn skopeo_creds(&self) -> Vec<String> {
        match &self.auth {
            Some((u, p)) => vec!["--dest-creds".into(), format!("{u}:{p}")],
            None => vec![],
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Copy an image with skopeo (real Go code: containers/image compresses uncompressed layers
/// with pgzip on the way to a registry).
pub fn skopeo_copy(src: &str, dest: &str, extra: &[&str]) {
    let out = Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .args(extra)
        .arg(src)
        .arg(dest)
        .output()
        .expect("skopeo must be installed (apt-get install skopeo)");
    assert!(
        out.status.success(),
        "skopeo copy {src} {dest} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The manifest digest skopeo sees for an image.
pub fn skopeo_digest(image: &str) -> String {
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(image)
        .output()
        .expect("skopeo inspect");
    assert!(
        out.status.success(),
        "skopeo inspect {image}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(&out.stdout)))
}
