//! Real OCI images for tests: layers compressed by real encoders (GNU gzip, pigz, zstd, the
//! Go programs), written as OCI image layouts that skopeo and booster read.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use sha2::Digest as _;

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// Run an encoder command with `data` on stdin and return its stdout.
pub fn encode_with(program: &str, args: &[&str], data: &[u8]) -> Vec<u8> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} must be installed: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = data.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[derive(Clone)]
pub struct Layer {
    pub blob: Vec<u8>,
    pub media_type: String,
    pub diff_id: String,
}

impl Layer {
    pub fn plain(tar: &[u8]) -> Layer {
        Layer {
            blob: tar.to_vec(),
            media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            diff_id: sha256(tar),
        }
    }

    /// gzip-compressed by a real encoder command (`gzip -6 -n`, `pigz`, …).
    pub fn gzip_by(tar: &[u8], program: &str, args: &[&str]) -> Layer {
        Layer {
            blob: encode_with(program, args, tar),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            diff_id: sha256(tar),
        }
    }

    pub fn zstd_by(tar: &[u8], args: &[&str]) -> Layer {
        Layer {
            blob: encode_with("zstd", args, tar),
            media_type: "application/vnd.oci.image.layer.v1.tar+zstd".into(),
            diff_id: sha256(tar),
        }
    }
}

fn put_blob(dir: &Path, data: &[u8]) -> String {
    let d = sha256(data);
    let p = dir.join("blobs/sha256").join(&d[7..]);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
    d
}

/// Write one image manifest (and its config and layers) into the layout; returns
/// (manifest digest, manifest bytes).
pub fn write_manifest(dir: &Path, layers: &[Layer], arch: &str) -> (String, Vec<u8>) {
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Env": ["PATH=/usr/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let config_digest = put_blob(dir, &config);
    let layer_descs: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| {
            let d = put_blob(dir, &l.blob);
            serde_json::json!({"mediaType": l.media_type, "digest": d, "size": l.blob.len()})
        })
        .collect();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": layer_descs,
    }))
    .unwrap();
    let d = put_blob(dir, &manifest);
    (d, manifest)
}

fn write_index_json(dir: &Path, entries: Vec<serde_json::Value>) {
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// An OCI layout holding one single-platform image named `reference`.
pub fn write_image_layout(dir: &Path, reference: &str, layers: &[Layer]) -> String {
    let (d, m) = write_manifest(dir, layers, "amd64");
    write_index_json(
        dir,
        vec![serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": m.len(),
            "annotations": {"org.opencontainers.image.ref.name": reference}
        })],
    );
    d
}

/// An OCI layout holding a two-platform index named `reference`; returns the index digest.
pub fn write_multiarch_layout(dir: &Path, reference: &str, amd64: &[Layer], arm64: &[Layer]) -> String {
    let (d1, m1) = write_manifest(dir, amd64, "amd64");
    let (d2, m2) = write_manifest(dir, arm64, "arm64");
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d1, "size": m1.len(),
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d2, "size": m2.len(),
             "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
        ]
    }))
    .unwrap();
    let di = put_blob(dir, &index);
    write_index_json(
        dir,
        vec![serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json", "digest": di, "size": index.len(),
            "annotations": {"org.opencontainers.image.ref.name": reference}
        })],
    );
    di
}

/// The entries of a layout's `index.json`.
fn index_entries(dir: &Path) -> Vec<serde_json::Value> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    index["manifests"].as_array().unwrap().clone()
}

fn ref_name(entry: &serde_json::Value) -> Option<&str> {
    entry["annotations"]["org.opencontainers.image.ref.name"].as_str()
}

/// The manifest digest `index.json` of a layout gives for `reference`.
pub fn layout_digest(dir: &Path, reference: &str) -> String {
    index_entries(dir)
        .iter()
        .find(|e| ref_name(e) == Some(reference))
        .unwrap_or_else(|| panic!("no {reference} in {}", dir.display()))["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Every name (`org.opencontainers.image.ref.name`) in a layout's `index.json`.
pub fn layout_names(dir: &Path) -> Vec<String> {
    index_entries(dir)
        .iter()
        .filter_map(|e| ref_name(e).map(str::to_string))
        .collect()
}

/// A tar layer of `n` text-like files plus one big binary-ish file.
pub fn sample_tar(seed: u64, files: usize, big: usize) -> Vec<u8> {
    let mut owned: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..files {
        owned.push((
            format!("usr/share/doc/pkg{i}/README"),
            super::pseudo_text(3000 + i * 37, seed * 1000 + i as u64),
        ));
    }
    let mut bin = super::pseudo_text(big / 2, seed + 77);
    bin.extend(super::pseudo_random(big / 2, seed + 78));
    owned.push(("usr/lib/libbig.so".into(), bin));
    let files: Vec<(&str, &[u8])> = owned.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    super::tar_of(&files)
}
