//! Shipping: the container images scripts/container-image.sh makes (booster, and Debian's
//! docker-registry), run with podman on loopback as the original's companion demo — two
//! registries, two booster companions, the replica syncing from the primary — and the same
//! with the Kubernetes manifests of deploy/kubernetes through `podman kube play`; and the
//! Debian package of scripts/deb.sh installed into a fresh root.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::http::http;
use common::image::{self, Layer};
use common::podman::{Images, Podman, build_images};
use common::registry::free_port;
use common::registry::{TestRegistry, skopeo_copy, skopeo_digest};
use common::{booster, ok, pseudo_random, pseudo_text, tar_of};

const TOKEN: &str = "c0ntainer-t0ken-0123";

fn manifest_digest(layout: &Path, tag: &str) -> String {
    image::layout_digest(layout, tag)
}

#[test]
fn the_container_image_is_reproducible_and_booster_pushes_it() {
    let a = build_images();
    let b = build_images();
    let (dir_a, tag) = &a.booster;
    let (dir_b, _) = &b.booster;
    assert_eq!(manifest_digest(dir_a, tag), manifest_digest(dir_b, tag));
    assert_eq!(
        manifest_digest(&a.registry.0, &a.registry.1),
        manifest_digest(&b.registry.0, &b.registry.1)
    );
    let layer_bytes: u64 = std::fs::read_dir(dir_a.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let binary = std::fs::metadata(common::booster_bin()).unwrap().len();
    eprintln!(
        "booster image: {layer_bytes} bytes of blobs (the test binary, with debug info: {binary} bytes)"
    );

    // booster pushes its own image; the registry holds the same digest.
    let reg = TestRegistry::start();
    let store = tempfile::tempdir().unwrap();
    ok(&booster(
        store.path(),
        &[
            "copy",
            &format!("oci:{}:{tag}", dir_a.display()),
            &format!("docker://{}/booster:{tag}", reg.addr),
        ],
    ));
    assert_eq!(
        skopeo_digest(&format!("docker://{}/booster:{tag}", reg.addr)),
        manifest_digest(dir_a, tag)
    );
}

/// A small app image in two versions; v2 changes 100 bytes in the middle of a big file.
fn app_layout(dir: &Path, tag: &str, big: &[u8]) -> u64 {
    let base = tar_of(&[
        ("etc/os-release", b"booster container test\n"),
        ("usr/share/doc/x", &pseudo_text(300_000, 3)),
    ]);
    let app = tar_of(&[("opt/app/big.bin", big), ("opt/app/VERSION", tag.as_bytes())]);
    let layers = vec![
        Layer::gzip_by(&base, "gzip", &["-n", "-c"]),
        Layer::gzip_by(&app, "gzip", &["-6", "-n", "-c"]),
    ];
    image::write_image_layout(dir, tag, &layers);
    layers[1].blob.len() as u64
}

fn wait_healthy(addr: &str, what: &str, podman: &Podman, container: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(90) {
        if std::net::TcpStream::connect(addr).is_ok() && http(addr, "GET", "/healthz", None).0 == 200 {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "{what} on {addr} never became healthy:\n{}",
        podman.logs(container)
    );
}

fn wait_registry(addr: &str, podman: &Podman, container: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if std::net::TcpStream::connect(addr).is_ok() && http(addr, "GET", "/v2/", None).0 == 200 {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("registry on {addr} never answered:\n{}", podman.logs(container));
}

/// The companion demo's second half, whatever runs the services: v1 on the primary's
/// registry, `/sync` on the replica, digests equal; v2, `/sync` moves < 1/20 of the pull
/// update; `/cleanup`.
fn sync_v1_then_v2(work: &Path, primary_registry: &str, replica_registry: &str, replica: &str, token: &str) {
    let mut big = pseudo_text(3 << 20, 5);
    big.extend(pseudo_random(3 << 20, 6));
    let v1 = work.join("v1");
    app_layout(&v1, "v1", &big);
    skopeo_copy(
        &format!("oci:{}:v1", v1.display()),
        &format!("docker://{primary_registry}/demo/app:v1"),
        &[],
    );
    let (code, body) = http(replica, "POST", "/sync", Some(token));
    assert_eq!(code, 200, "{body}");
    let first: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(first["images_synced"], 1, "{body}");
    assert_eq!(
        skopeo_digest(&format!("docker://{replica_registry}/demo/app:v1")),
        skopeo_digest(&format!("docker://{primary_registry}/demo/app:v1"))
    );

    let mut big2 = big.clone();
    let mid = big2.len() / 2;
    big2[mid..mid + 100].copy_from_slice(&pseudo_random(100, 77));
    let v2 = work.join("v2");
    let pull_update = app_layout(&v2, "v2", &big2);
    skopeo_copy(
        &format!("oci:{}:v2", v2.display()),
        &format!("docker://{primary_registry}/demo/app:v2"),
        &[],
    );
    let (code, body) = http(replica, "POST", "/sync", Some(token));
    assert_eq!(code, 200, "{body}");
    let second: serde_json::Value = serde_json::from_str(&body).unwrap();
    let moved = second["bytes_transferred"].as_u64().unwrap();
    eprintln!("v2 sync moved {moved} bytes; the pull update is {pull_update} bytes");
    assert!(
        moved * 20 < pull_update,
        "moved {moved} of a {pull_update}-byte update"
    );
    assert_eq!(
        skopeo_digest(&format!("docker://{replica_registry}/demo/app:v2")),
        skopeo_digest(&format!("docker://{primary_registry}/demo/app:v2"))
    );
    let (code, body) = http(replica, "POST", "/cleanup", Some(token));
    assert_eq!(code, 200, "{body}");
}

fn load_images(podman: &Podman, images: &Images) -> (String, String) {
    let b = podman.load(&images.booster.0, &images.booster.1, "booster");
    let r = podman.load(&images.registry.0, &images.registry.1, "docker-registry");
    (b, r)
}

#[test]
fn companions_in_containers_sync_a_replica() {
    let images = build_images();
    let podman = Podman::new();
    let (booster_image, registry_image) = load_images(&podman, &images);
    let work = tempfile::tempdir().unwrap();
    let token = work.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let token_mount = format!("{}:/etc/booster/token:ro", token.display());
    // The primary signs, the replica checks (files readable by the containers' user).
    let (key, public) = common::service::key_pair(work.path(), "signing");
    for f in [&key, &public] {
        let mut p = std::fs::metadata(f).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o644);
        std::fs::set_permissions(f, p).unwrap();
    }

    let (r1, r2) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    for (name, addr) in [("registry-primary", &r1), ("registry-replica", &r2)] {
        podman.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "host",
            "-e",
            &format!("REGISTRY_HTTP_ADDR={addr}"),
            &registry_image,
        ]);
        wait_registry(addr, &podman, name);
    }
    let (b1, b2) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let companion = |name: &str, registry: &str, listen: &str, primary: Option<&str>| {
        let mut args = vec![
            "run".to_string(),
            "-d".into(),
            "--name".into(),
            name.into(),
            "--network".into(),
            "host".into(),
            // A named volume: podman gives it the image's owner of /var/lib/booster.
            "-v".into(),
            format!("{name}-store:/var/lib/booster"),
            "-v".into(),
            token_mount.clone(),
            "-e".into(),
            format!("BOOSTER_REGISTRY={registry}"),
            "-e".into(),
            format!("BOOSTER_LISTEN={listen}"),
            "-e".into(),
            "BOOSTER_TOKEN_FILE=/etc/booster/token".into(),
        ];
        match primary {
            Some(p) => args.extend([
                "-e".into(),
                format!("BOOSTER_PRIMARY=http://{p}"),
                "-v".into(),
                format!("{}:/etc/booster/signing.pub:ro", public.display()),
                "-e".into(),
                "BOOSTER_PRIMARY_KEY=/etc/booster/signing.pub".into(),
            ]),
            None => args.extend([
                "-v".into(),
                format!("{}:/etc/booster/signing.key:ro", key.display()),
                "-e".into(),
                "BOOSTER_SIGNING_KEY=/etc/booster/signing.key".into(),
            ]),
        }
        args.push(booster_image.clone());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        podman.ok(&refs);
        wait_healthy(listen, name, &podman, name);
    };
    companion("booster-primary", &r1, &b1, None);
    companion("booster-replica", &r2, &b2, Some(&b1));
    // The image's health check: `booster healthcheck` inside the container.
    podman.ok(&["exec", "booster-replica", "/usr/bin/booster", "healthcheck"]);
    // Not root inside.
    assert_eq!(
        podman
            .ok(&["exec", "booster-replica", "/usr/bin/booster", "--version"])
            .split(' ')
            .next(),
        Some("booster")
    );
    let user = podman.ok(&["inspect", "-f", "{{.Config.User}}", "booster-replica"]);
    assert_eq!(user, "10001:10001");

    sync_v1_then_v2(work.path(), &r1, &r2, &b2, TOKEN);
}

/// deploy/kubernetes/*.yaml with this test's image names and ports.
fn render(
    name: &str,
    images: &Images,
    registry_port: u16,
    booster_port: u16,
    primary: Option<u16>,
    signing_dir: &Path,
) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/kubernetes")
        .join(name);
    let mut y = std::fs::read_to_string(&path).unwrap();
    for (from, to) in [
        (
            "localhost/booster:0.1.0".to_string(),
            format!("localhost/booster:{}", images.booster.1),
        ),
        (
            "localhost/docker-registry:2.8.2".to_string(),
            format!("localhost/docker-registry:{}", images.registry.1),
        ),
        ("0.0.0.0:5000".into(), format!("127.0.0.1:{registry_port}")),
        ("0.0.0.0:8080".into(), format!("127.0.0.1:{booster_port}")),
        ("port: 8080".into(), format!("port: {booster_port}")),
        (
            "containerPort: 8080".into(),
            format!("containerPort: {booster_port}"),
        ),
        (
            "containerPort: 5000".into(),
            format!("containerPort: {registry_port}"),
        ),
        (
            "value: 127.0.0.1:5000".into(),
            format!("value: 127.0.0.1:{registry_port}"),
        ),
    ] {
        y = y.replace(&from, &to);
    }
    // podman maps declared container ports onto the host, which host networking (the only
    // networking these machines allow) refuses; in a cluster they only document the port.
    let lines: Vec<&str> = y.lines().collect();
    let mut kept = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "ports:"
            && lines
                .get(i + 1)
                .is_some_and(|l| l.trim().starts_with("- containerPort:"))
        {
            i += 2;
            continue;
        }
        kept.push(lines[i]);
        i += 1;
    }
    let mut y = kept.join("\n");
    y.push('\n');
    // podman maps declared container ports onto the host, which host networking (the only
    // networking these machines allow) refuses; in a cluster they only document the port.
    let lines: Vec<&str> = y.lines().collect();
    let mut kept = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "ports:"
            && lines
                .get(i + 1)
                .is_some_and(|l| l.trim().starts_with("- containerPort:"))
        {
            i += 2;
            continue;
        }
        kept.push(lines[i]);
        i += 1;
    }
    let mut y = kept.join("\n");
    y.push('\n');
    if let Some(p) = primary {
        y = y.replace("http://booster-primary:8080", &format!("http://127.0.0.1:{p}"));
    }
    let secret = "      secret:\n        secretName: booster-signing\n        optional: false\n";
    assert!(y.contains(secret), "{name} mounts the booster-signing secret");
    y.replace(
        secret,
        &format!(
            "      hostPath:\n        path: {}\n        type: Directory\n",
            signing_dir.display()
        ),
    )
}

#[test]
fn the_kubernetes_manifests_run_under_podman_kube_play() {
    let images = build_images();
    let podman = Podman::new();
    load_images(&podman, &images);
    let work = tempfile::tempdir().unwrap();
    let (r1, b1, r2, b2) = (free_port(), free_port(), free_port(), free_port());
    let secret =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/secret.yaml"))
            .unwrap();
    let placeholder = secret
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .unwrap()
        .to_string();
    // podman 4.3 writes a Secret's `data` values into the volume without decoding their
    // base64 (a cluster decodes them): the services share the encoded form, so that is the
    // token this test sends.
    let token = "YzBudGFpbmVyLXQwa2VuLTAxMjM="; // base64 of TOKEN
    let secret = secret.replace(&placeholder, token);
    // That quirk would hand booster a key file in base64: the signing keys come from a
    // host directory instead (in a cluster, the booster-signing Secret).
    let signing = work.path().join("signing");
    std::fs::create_dir(&signing).unwrap();
    let (key, public) = common::service::key_pair(&signing, "signing");
    for f in [&key, &public, &signing] {
        let mut p = std::fs::metadata(f).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut p, if f.is_dir() { 0o755 } else { 0o644 });
        std::fs::set_permissions(f, p).unwrap();
    }
    let files = [
        ("secret.yaml", secret),
        (
            "primary.yaml",
            render("primary.yaml", &images, r1, b1, None, &signing),
        ),
        (
            "replica.yaml",
            render("replica.yaml", &images, r2, b2, Some(b1), &signing),
        ),
    ];
    for (name, text) in &files {
        let path = work.path().join(name);
        std::fs::write(&path, text).unwrap();
        podman.ok(&["kube", "play", "--network", "host", path.to_str().unwrap()]);
    }
    wait_registry(&format!("127.0.0.1:{r1}"), &podman, "booster-primary-registry");
    wait_registry(&format!("127.0.0.1:{r2}"), &podman, "booster-replica-registry");
    wait_healthy(
        &format!("127.0.0.1:{b1}"),
        "primary",
        &podman,
        "booster-primary-booster",
    );
    wait_healthy(
        &format!("127.0.0.1:{b2}"),
        "replica",
        &podman,
        "booster-replica-booster",
    );
    sync_v1_then_v2(
        work.path(),
        &format!("127.0.0.1:{r1}"),
        &format!("127.0.0.1:{r2}"),
        &format!("127.0.0.1:{b2}"),
        token,
    );
}

#[test]
fn the_debian_package_installs_into_a_fresh_root() {
    let out = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/deb.sh");
    let o = Command::new(&script)
        .arg(out.path())
        .env("BOOSTER_BIN", common::booster_bin())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "deb.sh: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let deb = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(deb.ends_with("_amd64.deb") || deb.ends_with(".deb"), "{deb}");
    let root = common::fresh_root::FreshRoot::new();
    root.install_deb(Path::new(&deb));
    let version = root.run(&["/usr/bin/booster", "--version"]);
    assert!(version.starts_with("booster "), "{version}");
    // The unit's ExecStart, with --help: the command line it starts parses.
    let unit = root.read("lib/systemd/system/booster.service");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    let mut argv: Vec<&str> = exec.split_whitespace().collect();
    argv.push("--help");
    let help = root.run(&argv);
    assert!(help.contains("--registry"), "{help}");
    assert!(
        root.read("etc/passwd").contains("\nbooster:") || root.read("etc/passwd").starts_with("booster:")
    );
    assert!(root.exists("usr/share/man/man1/booster.1.gz"));
    assert!(root.exists("usr/share/bash-completion/completions/booster"));
}
