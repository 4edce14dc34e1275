//! Signed images stay verifiable on the other side: cosign signatures (sigstore bundle
//! referrers and legacy `.sig` tags), cosign attestations (`.att` and bundle referrers), an
//! SBOM attached with oras and a notation signature travel with their image through every
//! path booster moves images by, and the real clients verify them at each destination.
//!
//! The clients are Debian sid's cosign, oras, notation and crane, fetched by
//! scripts/sig-tools.sh into a private root (the tests fail, saying so, when it has not
//! run). Registries are Debian's docker-registry (no referrers API: the referrers tag schema)
//! and go-containerregistry's registry with its referrers API turned on
//! (tests/go/referrers-registry; Debian's archive has no registry serving that API).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use common::image::{self, Layer, sample_tar};
use common::registry::{TestRegistry, skopeo_copy, skopeo_digest};
use common::service::{TOKEN, start_service_with, token_file};
use common::{booster, ok, stderr};

/// Where scripts/sig-tools.sh put the clients.
struct Tools {
    bin: PathBuf,
    ggcr_gopath: PathBuf,
}

fn tools() -> Tools {
    let dir = std::env::var("BOOSTER_SIG_TOOLS").unwrap_or_else(|_| "/var/tmp/booster-sigtools".into());
    let env = std::fs::read_to_string(Path::new(&dir).join("tools.env")).unwrap_or_else(|_| {
        panic!("{dir}/tools.env is missing: run scripts/sig-tools.sh (scripts/test.sh does)")
    });
    let get = |k: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k} missing from {dir}/tools.env"))
            .to_string()
    };
    Tools {
        bin: PathBuf::from(get("BIN")),
        ggcr_gopath: PathBuf::from(get("GGCR_GOPATH")),
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn must(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A client run with its state kept under `work` and every non-loopback request sent to a
/// dead proxy (the tests are offline; cosign must not reach Rekor, Fulcio or TUF).
fn client(t: &Tools, work: &Path, reg: &str, program: &str) -> Command {
    let mut c = Command::new(t.bin.join(program));
    let dead = "http://127.0.0.1:9";
    let host = reg.split(':').next().unwrap_or(reg);
    c.env("HOME", work.join("home"))
        .env("XDG_CONFIG_HOME", work.join("xdg"))
        .env("DOCKER_CONFIG", work.join("docker"))
        .env("TUF_ROOT", work.join("home/.sigstore/root"))
        .env("COSIGN_PASSWORD", "")
        .env("COSIGN_YES", "true")
        .env("HTTPS_PROXY", dead)
        .env("HTTP_PROXY", dead)
        .env("https_proxy", dead)
        .env("http_proxy", dead)
        .env("NO_PROXY", host)
        .env("no_proxy", host);
    std::fs::create_dir_all(work.join("home")).unwrap();
    c
}

/// One of the fixture scripts with the clients, a registry, a repository and a work dir.
fn fixture_script(name: &str, t: &Tools, reg: &str, repo: &str, work: &Path) -> Command {
    let mut c = Command::new("bash");
    c.arg(fixture(name))
        .env("TOOLS", &t.bin)
        .env("REG", reg)
        .env("REPO", repo)
        .env("WORK", work);
    c
}

/// Sign, attest and attach everything sign-image.sh makes to `reg/repo:tag`.
fn sign_all(t: &Tools, reg: &str, repo: &str, tag: &str, work: &Path) -> String {
    let out = must(
        fixture_script("sign-image.sh", t, reg, repo, work)
            .env("TAG", tag)
            .output()
            .unwrap(),
        "sign-image.sh",
    );
    out.lines()
        .find_map(|l| l.strip_prefix("DIGEST="))
        .expect("sign-image.sh prints DIGEST=")
        .to_string()
}

/// Run every verifier at `reg`; returns `oras discover`'s referrer count.
fn verify_all(t: &Tools, reg: &str, repo: &str, digest: &str, work: &Path) -> usize {
    verify_all_with(t, reg, repo, digest, work, true)
}

/// `verify_all`, the referrers' artifact types checked only when `artifact_types`.
fn verify_all_with(
    t: &Tools,
    reg: &str,
    repo: &str,
    digest: &str,
    work: &Path,
    artifact_types: bool,
) -> usize {
    let out = fixture_script("verify-image.sh", t, reg, repo, work)
        .env("DIGEST", digest)
        .env("CHECK_ARTIFACT_TYPES", if artifact_types { "1" } else { "0" })
        .output()
        .unwrap();
    let json = must(out, &format!("verify-image.sh at {reg}"));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["referrers"].as_array().map(|a| a.len()).unwrap_or(0)
}

/// `oras discover`'s referrers of `reg/repo@digest` (artifact types).
fn discover(t: &Tools, work: &Path, reg: &str, repo: &str, digest: &str) -> Vec<String> {
    let json = must(
        client(t, work, reg, "oras")
            .args(["discover", "--plain-http", "--no-tty", "--format", "json"])
            .arg(format!("{reg}/{repo}@{digest}"))
            .output()
            .unwrap(),
        "oras discover",
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["referrers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["artifactType"].as_str().unwrap_or("").to_string())
        .collect()
}

fn tags(t: &Tools, work: &Path, reg: &str, repo: &str) -> Vec<String> {
    let out = must(
        client(t, work, reg, "crane")
            .args(["ls", "--insecure"])
            .arg(format!("{reg}/{repo}"))
            .output()
            .unwrap(),
        "crane ls",
    );
    out.lines().map(str::to_string).collect()
}

/// A second cosign key in `work`, and a signature made with it on `reg/repo@digest`
/// (legacy `.sig` layout when `legacy`, else a sigstore bundle referrer).
fn cosign_sign_with_new_key(t: &Tools, work: &Path, reg: &str, repo: &str, digest: &str, legacy: bool) {
    cosign_key_pair(t, work, reg);
    let mut c = client(t, work, reg, "cosign");
    c.arg("sign").arg("--key").arg(work.join("cosign.key")).args([
        "--use-signing-config=false",
        "--tlog-upload=false",
        "--allow-http-registry",
        "-y",
    ]);
    if legacy {
        c.arg("--new-bundle-format=false");
    }
    must(
        c.arg(format!("{reg}/{repo}@{digest}")).output().unwrap(),
        "cosign sign",
    );
}

/// A cosign key pair in `work` (cosign.key, cosign.pub), made once.
fn cosign_key_pair(t: &Tools, work: &Path, reg: &str) {
    std::fs::create_dir_all(work).unwrap();
    if !work.join("cosign.key").exists() {
        must(
            client(t, work, reg, "cosign")
                .current_dir(work)
                .args(["generate-key-pair", "--output-key-prefix"])
                .arg(work.join("cosign"))
                .output()
                .unwrap(),
            "cosign generate-key-pair",
        );
    }
}

/// `cosign verify --key work/cosign.pub` at `reg`; whether it passed.
fn cosign_verifies(t: &Tools, work: &Path, reg: &str, repo: &str, digest: &str, legacy: bool) -> bool {
    let mut c = client(t, work, reg, "cosign");
    c.arg("verify")
        .arg("--key")
        .arg(work.join("cosign.pub"))
        .args(["--insecure-ignore-tlog", "--allow-http-registry"]);
    if legacy {
        c.arg("--new-bundle-format=false");
    }
    c.arg(format!("{reg}/{repo}@{digest}"))
        .output()
        .unwrap()
        .status
        .success()
}

/// Two versions of `test/app` pushed to `reg` by skopeo; returns their digests.
fn push_versions(reg: &str, work: &Path) -> (String, String) {
    let mut out = Vec::new();
    for (tag, seed) in [("v1", 1u64), ("v2", 2u64)] {
        let layout = work.join(format!("layout-{tag}"));
        let mut base = sample_tar(7, 30, 1 << 20);
        if tag == "v2" {
            base.extend_from_slice(&[0u8; 1024]);
        }
        image::write_image_layout(
            &layout,
            tag,
            &[
                Layer::gzip_by(&sample_tar(9, 20, 1 << 20), "gzip", &["-6", "-n", "-c"]),
                Layer::gzip_by(&sample_tar(seed + 10, 10, 256 << 10), "gzip", &["-6", "-n", "-c"]),
            ],
        );
        let dest = format!("docker://{reg}/test/app:{tag}");
        skopeo_copy(&format!("oci:{}:{tag}", layout.display()), &dest, &[]);
        out.push(skopeo_digest(&dest));
    }
    (out.remove(0), out.remove(0))
}

/// A source registry holding `test/app:v1` and `test/app:v2`, v2 with everything
/// sign-image.sh attaches (signed with the key pair in `keys`).
struct Signed {
    t: Tools,
    src: TestRegistry,
    work: tempfile::TempDir,
    keys: PathBuf,
    v1: String,
    v2: String,
}

fn signed_source() -> Signed {
    let t = tools();
    let src = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let (v1, _) = push_versions(&src.addr, work.path());
    let keys = work.path().join("keys");
    let v2 = sign_all(&t, &src.addr, "test/app", "v2", &keys);
    Signed {
        t,
        src,
        work,
        keys,
        v1,
        v2,
    }
}

/// `test/app:v1` copied from the source to `dst`, as a mirror or site holds it before.
fn seed_v1(src: &TestRegistry, dst: &TestRegistry) {
    skopeo_copy(
        &format!("docker://{}/test/app:v1", src.addr),
        &format!("docker://{}/test/app:v1", dst.addr),
        &[],
    );
}

/// A Helm chart pushed as an OCI artifact by oras (`charts/app:0.1.0`); returns its digest.
fn push_helm_chart(t: &Tools, w: &Path, reg: &str) -> String {
    let dir = w.join("chart");
    std::fs::create_dir_all(&dir).unwrap();
    let tgz = common::image::encode_with(
        "gzip",
        &["-9", "-n", "-c"],
        &common::tar_of(&[("app/Chart.yaml", b"apiVersion: v2\nname: app\nversion: 0.1.0\n")]),
    );
    std::fs::write(dir.join("app-0.1.0.tgz"), tgz).unwrap();
    std::fs::write(
        dir.join("config.json"),
        br#"{"name":"app","version":"0.1.0","apiVersion":"v2"}"#,
    )
    .unwrap();
    must(
        client(t, &dir, reg, "oras")
            .current_dir(&dir)
            .args(["push", "--plain-http", "--no-tty"])
            .arg(format!("{reg}/charts/app:0.1.0"))
            .args(["--config", "config.json:application/vnd.cncf.helm.config.v1+json"])
            .arg("app-0.1.0.tgz:application/vnd.cncf.helm.chart.content.v1.tar+gzip")
            .output()
            .unwrap(),
        "oras push of a Helm chart",
    );
    skopeo_digest(&format!("docker://{reg}/charts/app:0.1.0"))
}

/// A referrer made at a destination (a scan report, `oras attach`ed to `test/app@digest`
/// at `reg`); returns the client's work directory.
fn attach_scan_at(t: &Tools, w: &Path, reg: &str, digest: &str) -> PathBuf {
    let site = w.join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("scan.json"), br#"{"scanned":"at the destination"}"#).unwrap();
    must(
        client(t, &site, reg, "oras")
            .current_dir(&site)
            .args(["attach", "--plain-http", "--no-tty", "--artifact-type", SCAN])
            .arg(format!("{reg}/test/app@{digest}"))
            .arg("scan.json:application/json")
            .output()
            .unwrap(),
        "oras attach at the destination",
    );
    site
}

/// The artifact type of the destination's own referrer.
const SCAN: &str = "application/vnd.example.scan+json";

fn write_list(path: &Path, refs: &[String]) -> String {
    std::fs::write(path, refs.join("\n") + "\n").unwrap();
    path.display().to_string()
}

/// diff/apply to a mirror: the image and its four referrers and two cosign tags arrive,
/// every verifier passes there, and a referrer made at the mirror survives a second
/// apply that brings a new upstream signature (the `.sig` tags merged, as cosign does).
#[test]
fn diff_apply_carries_signatures_and_keeps_the_mirrors_own() {
    let s = signed_source();
    let (t, src, w, keys, v2) = (&s.t, &s.src, s.work.path(), &s.keys, &s.v2);
    let dst = TestRegistry::start();
    seed_v1(src, &dst);
    assert_eq!(skopeo_digest(&format!("docker://{}/test/app:v1", dst.addr)), s.v1);

    let old = write_list(&w.join("old.txt"), &[format!("{}/test/app:v1", src.addr)]);
    let new = write_list(&w.join("new.txt"), &[format!("{}/test/app:v2", src.addr)]);
    let sender = tempfile::tempdir().unwrap();
    let receiver = tempfile::tempdir().unwrap();
    let patch = w.join("p1.patch");
    let patch_s = patch.display().to_string();
    let out = ok(&booster(
        sender.path(),
        &["--json", "diff", &old, &new, "-o", &patch_s],
    ));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["bundle"]["attached"]["count"], 6, "{out}");
    let applied = booster(receiver.path(), &["apply", &old, &new, &patch_s, &dst.addr]);
    ok(&applied);

    assert_eq!(skopeo_digest(&format!("docker://{}/test/app:v2", dst.addr)), *v2);
    assert_eq!(verify_all(t, &dst.addr, "test/app", v2, keys), 4);

    // The mirror's own referrer, then a new upstream signature with another key.
    let site = attach_scan_at(t, w, &dst.addr, v2);
    let key2 = w.join("key2");
    cosign_sign_with_new_key(t, &key2, &src.addr, "test/app", v2, true);
    assert!(!cosign_verifies(t, &key2, &dst.addr, "test/app", v2, true));

    let patch2 = w.join("p2.patch").display().to_string();
    ok(&booster(sender.path(), &["diff", &new, &new, "-o", &patch2]));
    ok(&booster(
        receiver.path(),
        &["apply", &new, &new, &patch2, &dst.addr],
    ));
    assert!(cosign_verifies(t, &key2, &dst.addr, "test/app", v2, true));
    let at_mirror = discover(t, &site, &dst.addr, "test/app", v2);
    assert_eq!(at_mirror.len(), 5, "{at_mirror:?}");
    assert!(at_mirror.iter().any(|a| a == SCAN), "{at_mirror:?}");
    // Both keys' legacy signatures verify at the mirror (the union of both `.sig` tags).
    assert_eq!(verify_all(t, &dst.addr, "test/app", v2, keys), 5);
}

/// export/import to a site: everything arrives and verifies, and `inspect` lists it; a
/// signature added upstream later travels alone in the next `export --since site.inv`,
/// as a bundle artifact in the site's registry.
#[test]
fn export_import_carries_a_later_signature_alone() {
    let s = signed_source();
    let (t, src, w, keys, v2) = (&s.t, &s.src, s.work.path(), &s.keys, &s.v2);
    let site = TestRegistry::start();
    let chart = push_helm_chart(t, w, &src.addr);
    let new = write_list(
        &w.join("new.txt"),
        &[
            format!("{}/test/app:v2", src.addr),
            format!("{}/charts/app:0.1.0", src.addr),
        ],
    );
    let sender = tempfile::tempdir().unwrap();
    let receiver = tempfile::tempdir().unwrap();
    let b1 = w.join("b1.bkp").display().to_string();
    ok(&booster(sender.path(), &["export", &new, "-o", &b1]));
    // `--referrers none`: the image alone, nothing attached pushed as an image of its own.
    let bare = TestRegistry::start();
    let elsewhere = tempfile::tempdir().unwrap();
    ok(&booster(
        elsewhere.path(),
        &["import", &b1, "--push", &bare.addr, "--referrers", "none"],
    ));
    assert_eq!(tags(t, w, &bare.addr, "test/app"), ["v2"]);
    assert!(discover(t, w, &bare.addr, "test/app", v2).is_empty());
    ok(&booster(receiver.path(), &["import", &b1, "--push", &site.addr]));
    assert_eq!(skopeo_digest(&format!("docker://{}/test/app:v2", site.addr)), *v2);
    assert_eq!(
        skopeo_digest(&format!("docker://{}/charts/app:0.1.0", site.addr)),
        chart
    );
    assert_eq!(verify_all(t, &site.addr, "test/app", v2, keys), 4);
    let images = ok(&booster(receiver.path(), &["images"]));
    assert_eq!(
        images.lines().count(),
        8,
        "the image, four referrers, .sig and .att, the chart:\n{images}"
    );
    let name = format!("{}/test/app:v2", src.addr);
    let info: serde_json::Value =
        serde_json::from_str(&ok(&booster(receiver.path(), &["--json", "inspect", &name]))).unwrap();
    let kinds: Vec<&str> = info["attached"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    let count = |k: &str| kinds.iter().filter(|x| **x == k).count();
    // cosign: a bundle and a .sig signature, a bundle and a .att attestation; oras's SBOM;
    // notation's signature.
    assert_eq!(
        (count("signature"), count("attestation"), count("sbom")),
        (3, 2, 1),
        "{info}"
    );

    // A new signature upstream (sigstore bundle layout, another key).
    let key2 = w.join("key2");
    cosign_sign_with_new_key(t, &key2, &src.addr, "test/app", v2, false);
    let inv = w.join("site.inv").display().to_string();
    ok(&booster(receiver.path(), &["inventory", "-o", &inv]));
    let b2 = w.join("b2.bkp").display().to_string();
    let artifact = format!("docker://{}/bundles/app:sig", site.addr);
    let out = ok(&booster(
        sender.path(),
        &[
            "--json", "export", "--since", &inv, &new, "-o", &b2, "--to", &artifact,
        ],
    ));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let bytes = report["bundle"]["bundle_bytes"].as_u64().unwrap();
    eprintln!("bundle carrying one new signature: {bytes} bytes");
    assert!(bytes < 20_000, "{bytes} bytes: {out}");
    assert_eq!(report["bundle"]["attached"]["count"], 7, "{out}");
    ok(&booster(
        receiver.path(),
        &["import", &artifact, "--push", &site.addr],
    ));
    assert!(cosign_verifies(t, &key2, &site.addr, "test/app", v2, false));
    assert_eq!(verify_all(t, &site.addr, "test/app", v2, keys), 5);
}

/// go-containerregistry's registry with the referrers API on, built from Debian's
/// golang-github-google-go-containerregistry-dev with the system Go.
struct ApiRegistry {
    addr: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl ApiRegistry {
    fn start(t: &Tools) -> ApiRegistry {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("referrers-registry");
        must(
            Command::new("go")
                .args(["build", "-o"])
                .arg(&bin)
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/referrers-registry/main.go"))
                .env("GOPATH", &t.ggcr_gopath)
                .env("GO111MODULE", "off")
                .env("GOFLAGS", "")
                .env("GOCACHE", dir.path().join("gocache"))
                .output()
                .expect("go (golang-go) must be installed"),
            "go build referrers-registry",
        );
        std::fs::create_dir_all(dir.path().join("blobs")).unwrap();
        for _ in 0..5 {
            let port = common::registry::free_port();
            let addr = format!("127.0.0.1:{port}");
            let mut child = Command::new(&bin)
                .arg(&addr)
                .arg(dir.path().join("blobs"))
                .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
                .spawn()
                .unwrap();
            let start = Instant::now();
            // Ours answers /v2/ while it runs: a port lost to another process shows as
            // our child having exited.
            while start.elapsed() < Duration::from_secs(10) && child.try_wait().ok().flatten().is_none() {
                if std::net::TcpStream::connect(&addr).is_ok()
                    && common::http::http(&addr, "GET", "/v2/", None).0 == 200
                    && child.try_wait().ok().flatten().is_none()
                {
                    return ApiRegistry {
                        addr,
                        child,
                        _dir: dir,
                    };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            // Lost the port to another process: stop this one and try another.
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("the referrers-API registry did not start");
    }
}

impl Drop for ApiRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `copy` into a registry with the referrers API (booster leaves the indexing to it: no
/// tag-schema tag), out of it again (found through the API) into one without, and with
/// `--referrers none` nothing but the image.
#[test]
fn copy_through_a_registry_with_the_referrers_api() {
    let s = signed_source();
    let (t, src, w, keys, v2) = (&s.t, &s.src, s.work.path(), &s.keys, &s.v2);
    let api = ApiRegistry::start(t);
    let back = TestRegistry::start();
    let bare = TestRegistry::start();
    let store = tempfile::tempdir().unwrap();

    let from_src = format!("docker://{}/test/app:v2", src.addr);
    ok(&booster(
        store.path(),
        &["copy", &from_src, &format!("docker://{}/test/app:v2", api.addr)],
    ));
    // That registry reports config media types as artifact types (an upstream quirk).
    assert_eq!(verify_all_with(t, &api.addr, "test/app", v2, keys, false), 4);
    let at_api = tags(t, w, &api.addr, "test/app");
    assert!(
        !at_api
            .iter()
            .any(|x| x == &format!("sha256-{}", &v2["sha256:".len()..])),
        "the API registry indexes referrers itself: {at_api:?}"
    );

    let other = tempfile::tempdir().unwrap();
    ok(&booster(
        other.path(),
        &[
            "copy",
            &format!("docker://{}/test/app:v2", api.addr),
            &format!("docker://{}/test/app:v2", back.addr),
        ],
    ));
    assert_eq!(verify_all(t, &back.addr, "test/app", v2, keys), 4);

    let out = booster(
        store.path(),
        &[
            "copy",
            "--referrers",
            "none",
            &from_src,
            &format!("docker://{}/test/app:v2", bare.addr),
        ],
    );
    ok(&out);
    assert_eq!(skopeo_digest(&format!("docker://{}/test/app:v2", bare.addr)), *v2);
    assert!(
        discover(t, w, &bare.addr, "test/app", v2).is_empty(),
        "{}",
        stderr(&out)
    );
    assert_eq!(tags(t, w, &bare.addr, "test/app"), ["v2"]);
}

/// OCI layouts both ways: referrers oras copied into a layout (unnamed `index.json`
/// entries) are found there and pushed on; a copy into a layout lists them the same way,
/// with cosign's tags as named entries.
#[test]
fn layouts_carry_referrers_both_ways() {
    let s = signed_source();
    let (t, src, w, keys, v2) = (&s.t, &s.src, s.work.path(), &s.keys, &s.v2);
    let dst = TestRegistry::start();

    // oras's layout: the image and its four OCI referrers (not cosign's tags).
    let from_oras = w.join("from-oras");
    must(
        client(t, w, &src.addr, "oras")
            .args(["cp", "-r", "--from-plain-http", "--no-tty"])
            .arg(format!("{}/test/app:v2", src.addr))
            .arg("--to-oci-layout")
            .arg(format!("{}:v2", from_oras.display()))
            .output()
            .unwrap(),
        "oras cp -r to a layout",
    );
    let store = tempfile::tempdir().unwrap();
    ok(&booster(
        store.path(),
        &[
            "copy",
            &format!("oci:{}:v2", from_oras.display()),
            &format!("docker://{}/test/app:v2", dst.addr),
        ],
    ));
    assert_eq!(discover(t, w, &dst.addr, "test/app", v2).len(), 4);
    assert!(cosign_verifies(t, keys, &dst.addr, "test/app", v2, false));
    must(
        client(t, keys, &dst.addr, "notation")
            .args(["verify", "--insecure-registry"])
            .arg(format!("{}/test/app@{v2}", dst.addr))
            .output()
            .unwrap(),
        "notation verify after a layout",
    );

    // Into a layout: oras finds the four referrers there, cosign's tags are named entries.
    let to_layout = w.join("to-layout");
    ok(&booster(
        store.path(),
        &[
            "copy",
            &format!("docker://{}/test/app:v2", src.addr),
            &format!("oci:{}:v2", to_layout.display()),
        ],
    ));
    let json = must(
        client(t, w, &src.addr, "oras")
            .args(["discover", "--no-tty", "--format", "json", "--oci-layout"])
            .arg(format!("{}@{v2}", to_layout.display()))
            .output()
            .unwrap(),
        "oras discover in the layout",
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["referrers"].as_array().unwrap().len(), 4, "{json}");
    // A layout written without a name still reads back as its one image: the referrers
    // and cosign's tags beside it are not images.
    let unnamed = w.join("unnamed");
    ok(&booster(
        store.path(),
        &[
            "copy",
            &format!("docker://{}/test/app:v2", src.addr),
            &format!("oci:{}", unnamed.display()),
        ],
    ));
    let out = ok(&booster(
        store.path(),
        &["--json", "pull", &format!("oci:{}", unnamed.display())],
    ));
    let pulled: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(pulled[0]["digest"], *v2, "{out}");
    assert_eq!(pulled[0]["attached"].as_array().unwrap().len(), 6, "{out}");
    let hex = &v2["sha256:".len()..];
    let names = image::layout_names(&to_layout);
    for tag in [
        "v2".to_string(),
        format!("sha256-{hex}.sig"),
        format!("sha256-{hex}.att"),
    ] {
        assert!(names.contains(&tag), "{tag} not in {names:?}");
    }
}

/// `--verify-key`: the signer's key lets the image through (both layouts are checked);
/// another key, or an image without signatures, is refused with nothing pushed.
#[test]
fn verify_key_gates_apply_and_import() {
    let s = signed_source();
    let (t, src, w, keys, v2) = (&s.t, &s.src, s.work.path(), &s.keys, &s.v2);
    let v1 = &s.v1;
    let site = TestRegistry::start();
    seed_v1(src, &site);
    let other = w.join("other");
    cosign_key_pair(t, &other, &src.addr);
    let right = keys.join("cosign.pub").display().to_string();
    let wrong = other.join("cosign.pub").display().to_string();

    let old = write_list(&w.join("old.txt"), &[format!("{}/test/app:v1", src.addr)]);
    let new = write_list(&w.join("new.txt"), &[format!("{}/test/app:v2", src.addr)]);
    let sender = tempfile::tempdir().unwrap();
    let patch = w.join("p.patch").display().to_string();
    ok(&booster(sender.path(), &["diff", &old, &new, "-o", &patch]));

    // Another key: refused, naming the image; nothing reaches the site.
    let receiver = tempfile::tempdir().unwrap();
    let out = booster(
        receiver.path(),
        &["apply", &old, &new, &patch, &site.addr, "--verify-key", &wrong],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("refusing to push") && err.contains("test/app:v2"),
        "{err}"
    );
    assert!(err.contains("none of the keys"), "{err}");
    assert_eq!(tags(t, w, &site.addr, "test/app"), ["v1"]);

    // The signer's key: through, with every referrer.
    let out = ok(&booster(
        receiver.path(),
        &["apply", &old, &new, &patch, &site.addr, "--verify-key", &right],
    ));
    let _ = out;
    assert_eq!(verify_all(t, &site.addr, "test/app", v2, keys), 4);

    // An image that carries no signature (v1), through import: refused.
    let bundle = w.join("v1.bkp").display().to_string();
    let v1_list = write_list(&w.join("v1.txt"), &[format!("{}/test/app:v1", src.addr)]);
    ok(&booster(sender.path(), &["export", &v1_list, "-o", &bundle]));
    let elsewhere = TestRegistry::start();
    let fresh = tempfile::tempdir().unwrap();
    let out = booster(
        fresh.path(),
        &[
            "import",
            &bundle,
            "--push",
            &elsewhere.addr,
            "--verify-key",
            &right,
        ],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("({v1}) carries no cosign signature")),
        "{err}"
    );
    assert!(skopeo_inspect_fails(&format!(
        "docker://{}/test/app:v1",
        elsewhere.addr
    )));
}

fn skopeo_inspect_fails(image: &str) -> bool {
    !Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw", image])
        .output()
        .unwrap()
        .status
        .success()
}

/// A replica's `/sync` brings the signatures and referrers along (the primary offers its
/// registry's catalog, cosign's tags left to their images), and a replica with
/// `--verify-key` pushes the signed image and refuses the unsigned one, naming it.
#[test]
fn a_replica_sync_carries_signatures_and_checks_them() {
    let s = signed_source();
    let (t, primary_reg, w, keys, v2) = (&s.t, &s.src, s.work.path(), &s.keys, &s.v2);
    let replica_reg = TestRegistry::start();
    let guarded_reg = TestRegistry::start();
    let token = token_file(w);

    let primary = start_service_with(&w.join("primary-store"), &primary_reg.addr, &[], &token);
    let url = format!("http://{}", primary.addr);
    let replica = start_service_with(
        &w.join("replica-store"),
        &replica_reg.addr,
        &["--primary", &url, "--allow-unsigned"],
        &token,
    );
    let (code, body) = common::http::http(&replica.addr, "POST", "/sync", Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    eprintln!(
        "SYNC {body}\nPRIMARY {}\nREPLICA {}",
        std::fs::read_to_string(w.join("primary-store.log")).unwrap(),
        std::fs::read_to_string(w.join("replica-store.log")).unwrap()
    );
    assert_eq!(verify_all(t, &replica_reg.addr, "test/app", v2, keys), 4);
    let at_replica = tags(t, w, &replica_reg.addr, "test/app");
    assert!(at_replica.contains(&"v1".to_string()) && at_replica.contains(&"v2".to_string()));

    // The replica's own referrer, then a new upstream signature: both there after a sync.
    let site = attach_scan_at(t, w, &replica_reg.addr, v2);
    let key2 = w.join("key2");
    cosign_sign_with_new_key(t, &key2, &primary_reg.addr, "test/app", v2, false);
    let (code, body) = common::http::http(&replica.addr, "POST", "/sync", Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    assert!(cosign_verifies(
        t,
        &key2,
        &replica_reg.addr,
        "test/app",
        v2,
        false
    ));
    let at_replica = discover(t, &site, &replica_reg.addr, "test/app", v2);
    assert_eq!(at_replica.len(), 6, "{at_replica:?}");
    assert!(at_replica.iter().any(|a| a == SCAN), "{at_replica:?}");

    let right = keys.join("cosign.pub").display().to_string();
    let guarded = start_service_with(
        &w.join("guarded-store"),
        &guarded_reg.addr,
        &["--primary", &url, "--allow-unsigned", "--verify-key", &right],
        &token,
    );
    let (code, body) = common::http::http(&guarded.addr, "POST", "/sync", Some(TOKEN));
    assert_ne!(code, 200, "{body}");
    assert!(body.contains("refusing to push"), "{body}");
    assert!(
        body.contains("test/app:v1") && body.contains("carries no cosign signature"),
        "{body}"
    );
    assert!(!body.contains("test/app:v2"), "{body}");
    assert!(skopeo_inspect_fails(&format!(
        "docker://{}/test/app:v1",
        guarded_reg.addr
    )));
    // The four referrers and the later signature with the second key.
    assert_eq!(verify_all(t, &guarded_reg.addr, "test/app", v2, keys), 5);
}
