//! Jars and other zip archives inside layers travel opened: a patch carries what changed
//! inside them, and the receiver rebuilds every archive, and so every layer, bit-exactly.
//!
//! The archives are written by a real producer, Python's zipfile (zlib, as java.util.zip):
//! a library jar that a package update renames (the old `lib.jar` becomes a link to the new
//! `lib-1.1.jar`), a fat jar keeping library jars as STORED entries, a zip64 archive, one
//! written to a pipe (data descriptors), and a damaged one that must travel as bytes.

mod common;

use std::path::Path;
use std::process::Command;

use common::image::{self, Layer};
use common::registry::{TestRegistry, skopeo_copy, skopeo_digest};
use common::{booster, ok};

/// Writes the archives of one version (1 or 2) into `dir` with Python's zipfile.
const MAKE_JARS: &str = r#"
import io, os, random, sys, zipfile
out, version = sys.argv[1], int(sys.argv[2])
words = ["class", "public", "static", "void", "java/lang/String", "invoke", "field", "method",
         "org/apache/tomcat/util", "Code", "LineNumberTable", "StackMapTable", "()V", "<init>"]
def member(seed, n, changed):
    r = random.Random(seed)
    text = " ".join(r.choice(words) for _ in range(n)).encode()
    if changed and version == 2:
        text = text[: n // 2] + b" patched in version two " + text[n // 2 :]
    return b"\xca\xfe\xba\xbe" + text
def jar(path_or_file, seed, classes=120, changed=(3, 40), **kw):
    with zipfile.ZipFile(path_or_file, "w", zipfile.ZIP_DEFLATED, **kw) as z:
        z.writestr("META-INF/MANIFEST.MF", f"Manifest-Version: 1.0\nImplementation-Version: 1.{version}\n")
        for i in range(classes):
            z.writestr(f"org/example/lib{seed}/C{i}.class", member(seed * 1000 + i, 300 + (i * 37) % 900, i in changed))
os.makedirs(out, exist_ok=True)
# The library under its versioned name (the package renames it between versions).
jar(f"{out}/lib.jar", 1)
# A fat jar: its own classes deflated, library jars STORED, as Spring Boot lays them out.
libs = {}
for k in (2, 3):
    b = io.BytesIO(); jar(b, k, classes=80, changed=(5,) if k == 2 else ()); libs[k] = b.getvalue()
with zipfile.ZipFile(f"{out}/app.jar", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("META-INF/MANIFEST.MF", "Main-Class: org.springframework.boot.loader.JarLauncher\n")
    for i in range(30):
        z.writestr(f"BOOT-INF/classes/app/A{i}.class", member(9000 + i, 400, i == 7))
    for k, data in libs.items():
        info = zipfile.ZipInfo(f"BOOT-INF/lib/lib{k}-1.{version if k == 2 else 0}.jar")
        info.compress_type = zipfile.ZIP_STORED
        z.writestr(info, data)
# zip64 records, forced on a small archive.
with zipfile.ZipFile(f"{out}/big.zip", "w", zipfile.ZIP_DEFLATED, allowZip64=True) as z:
    with z.open("data.txt", "w", force_zip64=True) as f:
        f.write(member(77, 40000, True))
    z.comment = b"an archive comment"
# Written to a pipe: sizes and CRCs in data descriptors after each member.
class Pipe(io.RawIOBase):
    def __init__(self): self.buf = bytearray()
    def writable(self): return True
    def write(self, b): self.buf += b; return len(b)
p = Pipe()
jar(p, 4, classes=40, changed=(1,))
open(f"{out}/streamed.jar", "wb").write(bytes(p.buf))
# A damaged archive: a zip whose central directory was cut off.
b = io.BytesIO(); jar(b, 5, classes=40, changed=(2,))
open(f"{out}/damaged.jar", "wb").write(b.getvalue()[:-200])
"#;

fn make_jars(dir: &Path, version: u32) {
    let st = Command::new("python3")
        .arg("-c")
        .arg(MAKE_JARS)
        .arg(dir)
        .arg(version.to_string())
        .status()
        .expect("python3");
    assert!(st.success());
}

/// The layer of one version: the archives, and the rename of the library with its link.
fn layer_tar(dir: &Path, version: u32) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, data).unwrap();
    };
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let lib = read("lib.jar");
    if version == 1 {
        add("usr/share/java/lib.jar", &lib);
    } else {
        add("usr/share/java/lib-1.1.jar", &lib);
    }
    for name in ["app.jar", "big.zip", "streamed.jar", "damaged.jar"] {
        add(&format!("opt/app/{name}"), &read(name));
    }
    if version == 2 {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o777);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Symlink);
        b.append_link(&mut h, "usr/share/java/lib.jar", "lib-1.1.jar")
            .unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn jars_travel_opened_and_rebuild_bit_exactly() {
    let src = TestRegistry::start();
    let dst = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let base = Layer::gzip_by(
        &common::tar_of(&[("etc/os-release", b"ID=test\n")]),
        "gzip",
        &["-9", "-n", "-c"],
    );
    for version in [1, 2] {
        let jars = work.path().join(format!("jars{version}"));
        make_jars(&jars, version);
        let app = Layer::gzip_by(&layer_tar(&jars, version), "gzip", &["-6", "-n", "-c"]);
        let dir = work.path().join(format!("layout{version}"));
        let tag = format!("v{version}");
        image::write_image_layout(&dir, &tag, &[base.clone(), app]);
        skopeo_copy(
            &format!("oci:{}:{tag}", dir.display()),
            &format!("docker://{}/java/app:{tag}", src.addr),
            &[],
        );
    }
    skopeo_copy(
        &format!("docker://{}/java/app:v1", src.addr),
        &format!("docker://{}/java/app:v1", dst.addr),
        &[],
    );
    let old = work.path().join("old.txt");
    let new = work.path().join("new.txt");
    std::fs::write(&old, format!("{}/java/app:v1\n", src.addr)).unwrap();
    std::fs::write(&new, format!("{}/java/app:v2\n", src.addr)).unwrap();
    let patch = work.path().join("old-to-new.patch");
    let arg = |p: &Path| p.to_str().unwrap().to_string();
    let report: serde_json::Value = serde_json::from_str(&ok(&booster(
        &work.path().join("sender"),
        &["--json", "diff", &arg(&old), &arg(&new), "-o", &arg(&patch)],
    )))
    .unwrap();
    let archives = &report["bundle"]["archives"];
    // lib-1.1.jar (found through the new link), app.jar, big.zip, streamed.jar.
    assert_eq!(archives["opened"], 4, "{report:#}");
    assert!(archives["nested"].as_u64().unwrap() >= 1, "{report:#}");
    assert_eq!(archives["members_compressed"], 0, "{report:#}");
    // The damaged archive is not opened: it travels as bytes.
    assert_eq!(archives["as_bytes"], 1, "{report:#}");
    // Archive groups need bundle format version 2 (store-format.md 6.1).
    assert_eq!(std::fs::read(&patch).unwrap()[8..12], 2u32.to_le_bytes());
    let patch_bytes = report["patch_bytes"].as_u64().unwrap();
    let pull = report["pull_update_bytes"].as_u64().unwrap();
    assert!(
        patch_bytes * 5 < pull,
        "patch {patch_bytes} of a {pull}-byte update"
    );

    // Human summary says what happened to the archives.
    let human = booster(
        &work.path().join("sender"),
        &[
            "diff",
            &arg(&old),
            &arg(&new),
            "-o",
            &arg(&work.path().join("again.patch")),
        ],
    );
    assert!(
        common::stderr(&human).contains("archives opened"),
        "{}",
        common::stderr(&human)
    );

    let out = ok(&booster(
        &work.path().join("receiver"),
        &["--json", "apply", &arg(&old), &arg(&new), &arg(&patch), &dst.addr],
    ));
    let applied: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(applied["import"]["archives_rebuilt"], 4, "{out}");
    assert_eq!(applied["import"]["archive_members_compressed"], 0, "{out}");
    assert_eq!(
        skopeo_digest(&format!("docker://{}/java/app:v2", dst.addr)),
        skopeo_digest(&format!("docker://{}/java/app:v2", src.addr))
    );
    ok(&booster(&work.path().join("receiver"), &["fsck"]));
}

/// Zips written by Go's archive/zip (flate level 5), with the system Go (≤ 1.26 family) and
/// with Go 1.27 (whose flate is klauspost's port): every member opens and the archive
/// rebuilds exactly.
#[test]
fn go_archive_zip_rebuilds_exactly() {
    use common::goref::{Reference, go_bin};
    let work = tempfile::tempdir().unwrap();
    let sources: Vec<String> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".rs"))
        .collect();
    for reference in [Reference::Bookworm, Reference::Go1_27] {
        let out = work.path().join(format!("{reference:?}.zip"));
        let st = Command::new(go_bin("zip-writer", reference))
            .arg(&out)
            .args(&sources)
            .status()
            .unwrap();
        assert!(st.success());
        let zip = std::fs::read(&out).unwrap();
        let e = booster::zipfile::expand(&zip).unwrap();
        assert_eq!(e.stats.members_opened, sources.len() as u64, "{reference:?}");
        assert_eq!(e.stats.members_compressed, 0, "{reference:?}");
        assert_eq!(e.rebuild(zip.len() as u64).unwrap(), zip, "{reference:?}");
    }
}
