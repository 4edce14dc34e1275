//! Signatures on bundle artifacts (`store-format.md` 6.7): a primary with `--signing-key`
//! signs each bundle manifest and release pointer it publishes, in cosign's legacy layout
//! (the tag `sha256-<hex>.sig` beside it), so that its replicas (`--primary-key`) and
//! `cosign verify --key` can both check them. Verification shares `oci::cosign` with
//! `--verify-key` on images.

use super::artifact::Place;
use super::pull::Ctx;
use crate::error::{Error, IoContext, Result};
use crate::id::Digest;
use crate::oci::cosign::{self, Finding, SigningKey, TrustedKeys};
use crate::oci::manifest::OCI_MANIFEST;
use crate::oci::reference::RegistryRef;
use crate::oci::referrers::cosign_tag;

const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// The `.sig` image cosign would write for one payload: its config, and its manifest.
fn signature_image(payload: &[u8], sig: &str) -> (Vec<u8>, Vec<u8>) {
    let payload_digest = Digest::of(payload);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "",
        "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": [payload_digest.to_string()]},
    }))
    .expect("json");
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": Digest::of(&config).to_string(), "size": config.len()},
        "layers": [{
            "mediaType": cosign::SIMPLESIGNING,
            "digest": payload_digest.to_string(),
            "size": payload.len(),
            "annotations": {cosign::SIGNATURE_ANNOTATION: sig},
        }],
    }))
    .expect("json");
    (config, manifest)
}

/// Signs the manifest `subject` of the repository `r` and pushes the signature under
/// cosign's tag for it.
pub async fn push_signature(ctx: &Ctx, r: &RegistryRef, subject: &Digest, key: &SigningKey) -> Result<()> {
    let reference = format!("{}/{}", r.registry, r.repository);
    let (payload, sig) = key.sign_simplesigning(&reference, subject, serde_json::Value::Null);
    let (config, manifest) = signature_image(&payload, &sig);
    for blob in [&payload, &config] {
        let d = Digest::of(blob);
        if ctx.registries.blob_exists(r, &d).await? {
            continue;
        }
        let path = ctx
            .store
            .tmp_dir()?
            .join(format!("signature-{}-{}", d.hex(), std::process::id()));
        std::fs::write(&path, blob).ctx(|| format!("writing {}", path.display()))?;
        let pushed = ctx.registries.push_blob_file(r, &d, &path, &|_| {}).await;
        let _ = std::fs::remove_file(&path);
        pushed?;
    }
    ctx.registries
        .push_manifest(r, &cosign_tag(subject, ".sig"), &manifest, OCI_MANIFEST)
        .await
}

/// Checks that the manifest `subject` in `place` carries a cosign signature by one of
/// `keys`; the error says what was found instead.
pub async fn check_signed(ctx: &Ctx, place: &Place, subject: &Digest, keys: &TrustedKeys) -> Result<()> {
    let not_signed = |reason: String| Error::BundleNotSigned {
        what: format!("{} ({subject})", place.repository()),
        keys: keys.describe(),
        reason,
    };
    let Place::Registry(r) = place else {
        return Err(not_signed(
            "signatures are checked on registries of bundles only".into(),
        ));
    };
    let tag = cosign_tag(subject, ".sig");
    let Some(sig) = ctx.registries.find_manifest_by_tag(r, &tag).await? else {
        return Err(not_signed(format!("it has no signature (no tag {tag})")));
    };
    // Signature layers are small (checked against MAX_PAYLOAD in `check`): fetched first,
    // each against its digest, then checked together.
    let layers: Vec<(Digest, u64)> = serde_json::from_slice::<serde_json::Value>(&sig.bytes)
        .ok()
        .and_then(|m| m["layers"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|l| Some((l["digest"].as_str()?.parse().ok()?, l["size"].as_u64()?)))
        .filter(|(_, size)| *size <= cosign::MAX_PAYLOAD)
        .collect();
    let mut blobs = std::collections::HashMap::new();
    for (d, size) in layers {
        let path = ctx
            .store
            .tmp_dir()?
            .join(format!("signature-{}-{}", d.hex(), std::process::id()));
        let fetched = ctx.registries.fetch_blob(r, &d, Some(size), &path, &|_| {}).await;
        let bytes = fetched.and_then(|_| std::fs::read(&path).ctx(|| format!("reading {}", path.display())));
        let _ = std::fs::remove_file(&path);
        blobs.insert(d, bytes?);
    }
    // A signature made for another repository (a staging one signed with the same key)
    // does not count here: the payload names the repository it was made for. The host is
    // not compared, so a mirror of the repository serves as well.
    let for_here = |payload: &[u8]| {
        serde_json::from_slice::<serde_json::Value>(payload)
            .ok()
            .and_then(|v| {
                v["critical"]["identity"]["docker-reference"]
                    .as_str()
                    .map(str::to_string)
            })
            .and_then(|r| r.split_once('/').map(|(_, repo)| repo.to_string()))
            .is_some_and(|repo| repo == r.repository)
    };
    let findings = cosign::check(keys, subject, &sig.bytes, &mut |d| match blobs.get(d) {
        Some(b) if for_here(b) => Ok(b.clone()),
        Some(_) => Err(Error::format(
            d.to_string(),
            format!("a signature made for another repository than {}", r.repository),
        )),
        None => Err(Error::format(d.to_string(), "a signature layer not fetched")),
    });
    if findings.iter().any(|f| matches!(f, Finding::Signed { .. })) {
        return Ok(());
    }
    let why: Vec<String> = findings
        .into_iter()
        .filter_map(|f| match f {
            Finding::Rejected(why) => Some(why),
            _ => None,
        })
        .collect();
    Err(not_signed(if why.is_empty() {
        format!("{tag} holds no signature")
    } else {
        why.join("; ")
    }))
}
