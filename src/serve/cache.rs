//! The primary's cache of built bundles (`tmp/bundles/KEY.bkp`) and the files in use.
//!
//! A bundle being streamed to a replica is *in use*: neither eviction nor `/cleanup`
//! removes it, so a replica's resumed download finds it. Everything else in the temp
//! directory is written only under the service's `work` lock, which `/cleanup` holds
//! exclusively, so cleanup never races a writer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::id::Digest;

/// Bundle keys are 32 lowercase hex digits: anything else is refused before it names a file.
pub fn is_bundle_key(key: &str) -> bool {
    key.len() == 32
        && key
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[derive(Default)]
pub struct BundleCache {
    /// Readers of each cached bundle now.
    in_use: Arc<Mutex<HashMap<PathBuf, usize>>>,
    /// sha256 and length of each bundle built by this process (a bundle found on disk from
    /// an earlier run is hashed once when first served).
    digests: Mutex<HashMap<String, (Digest, u64)>>,
}

/// Marks a file in use until dropped.
pub struct InUse {
    map: Arc<Mutex<HashMap<PathBuf, usize>>>,
    path: PathBuf,
}

impl Drop for InUse {
    fn drop(&mut self) {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.path) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.path);
            }
        }
    }
}

impl BundleCache {
    pub fn hold(&self, path: &Path) -> InUse {
        *self
            .in_use
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(path.to_path_buf())
            .or_default() += 1;
        InUse {
            map: self.in_use.clone(),
            path: path.to_path_buf(),
        }
    }

    pub fn is_in_use(&self, path: &Path) -> bool {
        self.in_use
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(path)
    }

    pub fn remember(&self, key: &str, digest: Digest, len: u64) {
        self.digests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), (digest, len));
    }

    /// The sha256 of the bundle `key` at `path`, as remembered when it was built if its
    /// length still matches, else hashed now.
    pub fn digest(&self, key: &str, path: &Path) -> crate::error::Result<(Digest, u64)> {
        let len = std::fs::metadata(path)
            .map_err(|e| crate::error::Error::io(format!("reading {}", path.display()), e))?
            .len();
        if let Some(&(d, l)) = self.digests.lock().unwrap_or_else(|e| e.into_inner()).get(key)
            && l == len
        {
            return Ok((d, l));
        }
        let (d, len) = crate::oci::source::sha256_of_file(path)?;
        self.remember(key, d, len);
        Ok((d, len))
    }
}

/// Marks a cached bundle as just used (its mtime), for [`evict_bundles`].
pub fn mark_used(path: &Path) {
    if let Ok(f) = std::fs::File::options().write(true).open(path) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
}

/// Removes the least recently used bundles of the primary's cache in `dir` until the rest
/// hold at most `limit` bytes; never `keep` (the bundle just built) nor a replica's
/// `incoming-*` download. Returns how many were removed.
pub fn evict_bundles(dir: &Path, limit: u64, keep: &Path) -> u64 {
    evict_unless(dir, limit, &|p| p == keep)
}

/// A bundle used (built, found or served) this recently stays: a replica that was just
/// answered has not started its download yet.
const EVICTION_GRACE: std::time::Duration = std::time::Duration::from_secs(120);

/// [`evict_bundles`], keeping also every bundle `keep` names (those being streamed) and
/// those used within [`EVICTION_GRACE`].
pub fn evict_unless(dir: &Path, limit: u64, keep: &dyn Fn(&Path) -> bool) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut cached: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.ends_with(".bkp")
                && !name.starts_with("incoming-")
                && e.file_type().is_ok_and(|t| t.is_file())
        })
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((m.modified().ok()?, m.len(), e.path()))
        })
        .collect();
    let mut total: u64 = cached.iter().map(|(_, len, _)| len).sum();
    cached.sort();
    let mut removed = 0;
    for (_, len, path) in cached {
        if total <= limit {
            break;
        }
        let recent = std::time::SystemTime::now()
            .duration_since(
                std::fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH),
            )
            .is_ok_and(|age| age < EVICTION_GRACE);
        if keep(&path) || recent {
            continue;
        }
        if std::fs::remove_file(&path).is_ok() {
            tracing::info!("bundle cache over {limit} bytes: removed {}", path.display());
            total -= len;
            removed += 1;
        }
    }
    removed
}

/// Removes what is under `dir` except the paths `keep` names, counting files and bytes.
/// Symbolic links are removed as links, never followed.
pub fn remove_tree_except(dir: &Path, keep: &dyn Fn(&Path) -> bool, files: &mut u64, bytes: &mut u64) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if keep(&p) {
            continue;
        }
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() {
            remove_tree_except(&p, keep, files, bytes);
            let _ = std::fs::remove_dir(&p);
        } else {
            *bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
            if std::fs::remove_file(&p).is_ok() {
                *files += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_grammar() {
        assert!(is_bundle_key("0123456789abcdef0123456789abcdef"));
        for bad in [
            "",
            "../../etc/passwd",
            "0123456789ABCDEF0123456789abcdef",
            "0123456789abcdef0123456789abcde/",
        ] {
            assert!(!is_bundle_key(bad), "{bad}");
        }
    }

    #[test]
    fn cleanup_keeps_files_in_use_and_never_follows_links() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("precious"), b"x").unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let bundles = tmp.path().join("bundles");
        std::fs::create_dir(&bundles).unwrap();
        std::fs::write(bundles.join("a.bkp"), b"aaaa").unwrap();
        std::fs::write(bundles.join("b.bkp"), b"bb").unwrap();
        std::os::unix::fs::symlink(outside.path(), tmp.path().join("link")).unwrap();
        let cache = BundleCache::default();
        let held = cache.hold(&bundles.join("a.bkp"));
        let (mut files, mut bytes) = (0, 0);
        remove_tree_except(tmp.path(), &|p| cache.is_in_use(p), &mut files, &mut bytes);
        assert!(bundles.join("a.bkp").exists());
        assert!(!bundles.join("b.bkp").exists());
        assert!(!tmp.path().join("link").exists());
        assert!(outside.path().join("precious").exists());
        assert_eq!(files, 2, "b.bkp and the link");
        drop(held);
        assert!(!cache.is_in_use(&bundles.join("a.bkp")));
    }
}
