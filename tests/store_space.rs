//! The store stays lean over many short sessions (issue 33, store-format.md §8): 32
//! back-to-back pulls of near-identical images, each its own process, then `rm` of most of
//! them and `gc`. On disk (logs left out) stays within 1.15× of what the store holds, gc
//! gives the deleted chunks' space back, and fsck has nothing to say.

mod common;

use std::path::Path;

use common::image::{self, Layer};
use common::{booster, ok, pseudo_random, pseudo_text, tar_of};

const VERSIONS: usize = 32;
const KEPT: usize = 8;
const RATIO_GOAL: f64 = 1.15;

/// Version `v` of the image: 40 text files shared by every version (two of them edited in
/// each), and 768 KiB of incompressible data of its own, so removing old versions leaves
/// real garbage in the blob files.
fn version_tar(v: usize) -> Vec<u8> {
    let mut owned: Vec<(String, Vec<u8>)> = (0..40)
        .map(|i| {
            let mut text = pseudo_text(20_000 + i * 101, 500 + i as u64);
            if i == v % 40 || i == (v * 7) % 40 {
                text.extend_from_slice(format!("edited in version {v}\n").as_bytes());
            }
            (format!("usr/share/doc/pkg{i}/README"), text)
        })
        .collect();
    owned.push((
        format!("opt/app/data-{v}.bin"),
        pseudo_random(768 << 10, 9000 + v as u64),
    ));
    let files: Vec<(&str, &[u8])> = owned.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    tar_of(&files)
}

fn json(store: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(&booster(store, &all))).unwrap()
}

fn ratio(space: &serde_json::Value) -> f64 {
    space["ratio"].as_f64().unwrap()
}

#[test]
fn many_short_sessions_then_gc_stay_within_the_space_goal() {
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("store");
    let refs: Vec<String> = (1..=VERSIONS)
        .map(|v| {
            let dir = work.path().join(format!("v{v}"));
            let layer = Layer::gzip_by(&version_tar(v), "gzip", &["-6", "-n", "-c"]);
            image::write_image_layout(&dir, "t", &[layer]);
            format!("oci:{}:t", dir.display())
        })
        .collect();
    for r in &refs {
        ok(&booster(&store, &["pull", "--jobs", "1", "-q", r]));
    }

    let stats = json(&store, &["stats"]);
    assert!(
        ratio(&stats["space"]) <= RATIO_GOAL,
        "after {VERSIONS} pulls: {}",
        stats["space"]
    );

    for r in &refs[..VERSIONS - KEPT] {
        ok(&booster(&store, &["rm", r]));
    }
    let gc = json(&store, &["gc"]);
    let space = &gc["space"];
    assert!(ratio(space) <= RATIO_GOAL, "after gc: {gc}");
    let usage = &space["usage"];
    let (garbage, blobs) = (
        usage["blob_garbage_bytes"].as_u64().unwrap(),
        usage["blob_file_bytes"].as_u64().unwrap(),
    );
    assert!(garbage * 20 <= blobs, "garbage left in blob files: {gc}");
    assert_eq!(usage["unreferenced_bytes"], 0, "{gc}");
    assert!(
        !gc["reclaimed"]["blob_rewrites"].as_array().unwrap().is_empty(),
        "{} MB of deleted chunks and no blob rewrite: {gc}",
        gc["reclaimed"]["blob_garbage_found"]
    );
    assert!(
        gc["disk_bytes_after"].as_u64().unwrap() * 2 < gc["disk_bytes_before"].as_u64().unwrap(),
        "{gc}"
    );

    let fsck = json(&store, &["fsck", "--rebuild"]);
    assert_eq!(fsck["problems"].as_array().unwrap().len(), 0, "{fsck}");
    assert_eq!(fsck["warnings"].as_array().unwrap().len(), 0, "{fsck}");
    assert_eq!(fsck["blobs_rebuilt"], KEPT as u64, "{fsck}");
}
