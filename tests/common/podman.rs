//! podman in its own root, run directory and configuration, set up the way these machines
//! run containers: as root, with runc, the vfs storage driver, the cgroupfs manager, host
//! networking, and a containers.conf without default ulimits (crun and the default
//! ulimits are refused here). Every container and image it makes is removed with it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    pub fn new() -> Podman {
        assert!(
            Command::new("podman").arg("--version").output().is_ok(),
            "podman must be installed (apt-get install podman runc; .ci/run does)"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("containers.conf"),
            "[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
        )
        .unwrap();
        Podman { dir }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.dir.path().join("containers.conf"))
            .arg("--root")
            .arg(self.dir.path().join("root"))
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            .arg("--tmpdir")
            .arg(self.dir.path().join("tmp"))
            .args([
                "--storage-driver",
                "vfs",
                "--runtime",
                "runc",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
            ]);
        c
    }

    /// Run podman with `args`; panics with its output unless it succeeds.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "podman {} failed:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run podman")
    }

    /// Copy the image `oci:DIR:TAG` into this podman's storage as `localhost/NAME:TAG`
    /// (skopeo names it; `podman pull oci:` would derive a name from the path).
    pub fn load(&self, layout: &Path, tag: &str, name: &str) -> String {
        let named = format!("localhost/{name}:{tag}");
        let storage = format!(
            "containers-storage:[vfs@{}+{}]{named}",
            self.dir.path().join("root").display(),
            self.dir.path().join("run").display()
        );
        let out = Command::new("skopeo")
            .args(["--insecure-policy", "copy", "-q"])
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(&storage)
            .output()
            .expect("run skopeo");
        assert!(
            out.status.success(),
            "skopeo copy into {storage}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        named
    }

    /// A container's logs, for failure messages.
    pub fn logs(&self, name: &str) -> String {
        let out = self.run(&["logs", name]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["pod", "rm", "-af", "-t", "0"]);
        let _ = self.run(&["rm", "-af", "-t", "0"]);
        let _ = self.run(&["volume", "rm", "-af"]);
        // Then the temp directory goes, with the vfs layers (plain directories) in it.
    }
}

/// The images the container tests run, built once per test process from the test's own
/// booster binary (stripped) and Debian's docker-registry by scripts/container-image.sh.
pub struct Images {
    pub dir: tempfile::TempDir,
    pub booster: (PathBuf, String),
    pub registry: (PathBuf, String),
}

pub fn build_images() -> Images {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/container-image.sh");
    let build = |args: &[&str], out: &Path| -> String {
        let o = Command::new(&script)
            .args(args)
            .arg(out)
            .env("BOOSTER_BIN", super::booster_bin())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "container-image.sh {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let reference = String::from_utf8_lossy(&o.stdout).trim().to_string();
        reference.rsplit(':').next().unwrap().to_string()
    };
    let b = dir.path().join("booster");
    let r = dir.path().join("registry");
    let btag = build(&[], &b);
    let rtag = build(&["--registry"], &r);
    Images {
        booster: (b, btag),
        registry: (r, rtag),
        dir,
    }
}
