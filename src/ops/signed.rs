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

/// The claim a signature carries its signing time in (unix seconds, as a string).
pub const SIGNED_AT: &str = "io.booster.signed-at";

/// Signs the manifest `subject` of the repository `r`, with the time of signing, and
/// pushes the signature under cosign's tag for it (replacing an earlier one: a release
/// pointer re-signed now is newer than any copy of its old signature).
pub async fn push_signature(ctx: &Ctx, r: &RegistryRef, subject: &Digest, key: &SigningKey) -> Result<()> {
    let reference = format!("{}/{}", r.registry, r.repository);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (payload, sig) = key.sign_simplesigning(
        &reference,
        subject,
        serde_json::json!({SIGNED_AT: now.to_string()}),
    );
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

/// Checks that the manifest `subject` in `place` carries a cosign signature (legacy
/// layout) by one of `keys`, made for this repository; returns the latest signing time
/// the valid signatures claim (0 for signatures without one). The error says what was
/// found instead.
pub async fn check_signed(ctx: &Ctx, place: &Place, subject: &Digest, keys: &TrustedKeys) -> Result<u64> {
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
    let layers: Vec<serde_json::Value> = serde_json::from_slice::<serde_json::Value>(&sig.bytes)
        .ok()
        .and_then(|m| m["layers"].as_array().cloned())
        .unwrap_or_default();
    let source = crate::oci::source::Source::Registry {
        registries: ctx.registries.clone(),
        image: r.clone(),
    };
    let mut why = Vec::new();
    let mut signed_at: Option<u64> = None;
    for l in layers {
        let (Some(d), Some(size)) = (
            l["digest"].as_str().and_then(|d| d.parse::<Digest>().ok()),
            l["size"].as_u64(),
        ) else {
            continue;
        };
        if l["mediaType"].as_str() != Some(cosign::SIMPLESIGNING) || size > cosign::MAX_PAYLOAD {
            continue;
        }
        let payload = super::pull::fetch_small_blob(ctx, &source, &d, size).await?;
        let sig = l["annotations"][cosign::SIGNATURE_ANNOTATION]
            .as_str()
            .map(str::to_string);
        match cosign::check_simplesigning(keys, subject, &payload, sig.as_ref()) {
            Finding::Signed { .. } => {}
            Finding::Rejected(w) => {
                why.push(w);
                continue;
            }
            Finding::NotASignature => continue,
        }
        let claims: serde_json::Value = serde_json::from_slice(&payload).unwrap_or_default();
        // A signature made for another repository (a staging one signed with the same
        // key) does not count here. The host is not compared: a mirror serves as well.
        let made_for = claims["critical"]["identity"]["docker-reference"]
            .as_str()
            .and_then(|r| r.split_once('/').map(|(_, repo)| repo.to_string()));
        if made_for.as_deref() != Some(r.repository.as_str()) {
            why.push(format!(
                "a signature made for {}, not {}",
                made_for.as_deref().unwrap_or("no repository"),
                r.repository
            ));
            continue;
        }
        let at = claims["optional"][SIGNED_AT]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        signed_at = Some(signed_at.map_or(at, |s: u64| s.max(at)));
    }
    signed_at.ok_or_else(|| {
        not_signed(if why.is_empty() {
            format!("{tag} holds no signature")
        } else {
            why.join("; ")
        })
    })
}
