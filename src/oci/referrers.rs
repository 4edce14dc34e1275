//! What refers to an image: signatures, attestations, SBOMs and any OCI 1.1 referrer.
//!
//! Three dialects say that manifest R is about manifest S (its *subject*):
//! - OCI 1.1: R carries `"subject": {S}`; a registry with the referrers API lists it at
//!   `GET /v2/<name>/referrers/<S>`, one without it keeps an index under the tag
//!   `sha256-<hex of S>` (the referrers tag schema) that clients update themselves;
//! - cosign's tags: `sha256-<hex of S>.sig`, `.att` and `.sbom` name an ordinary image
//!   manifest whose layers are the signatures (attestations, SBOMs);
//! - BuildKit: attestation manifests inside the image's own index, which travel with the
//!   index anyway.
//!
//! booster keeps an attached manifest in the store as an image of its own, under a name
//! that says how it hangs on its subject: the cosign tag (`reg/repo:sha256-….sig`) or the
//! referrer's digest (`reg/repo@sha256:…`, its `subject` field naming the image). So every
//! path that moves images (bundles, inventories, gc) moves them too, and the relation is
//! read back from the names and documents alone: no record of its own.

use std::collections::HashSet;

use serde::Deserialize;

use crate::error::Result;
use crate::id::Digest;

/// How many levels of referrers of referrers are followed (a signature on an SBOM on an
/// image is two).
pub const MAX_DEPTH: usize = 3;
/// At most this many attached manifests per image: a subject with thousands of referrers
/// is a registry in trouble, not an image to copy.
pub const MAX_PER_IMAGE: usize = 256;

/// cosign's tag suffixes and what they hold.
const COSIGN_SUFFIXES: [(&str, Kind); 3] = [
    (".sig", Kind::Signature),
    (".att", Kind::Attestation),
    (".sbom", Kind::Sbom),
];

/// What an attached manifest is, for summaries and `inspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Signature,
    Attestation,
    Sbom,
    Other,
}

impl Kind {
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Signature => "signatures",
            Kind::Attestation => "attestations",
            Kind::Sbom => "SBOMs",
            Kind::Other => "other referrers",
        }
    }

    /// The kind an artifact type (or a config media type standing in for one) names.
    pub fn of_artifact_type(t: &str) -> Kind {
        let t = t.to_ascii_lowercase();
        if t.contains("signature") || t.contains("notary") || t.contains("sigstore.bundle") {
            // cosign's bundle layout stores a signature as a sigstore bundle; it holds an
            // attestation when its artifact type says in-toto.
            if t.contains("in-toto") || t.contains("intoto") {
                Kind::Attestation
            } else {
                Kind::Signature
            }
        } else if t.contains("in-toto")
            || t.contains("intoto")
            || t.contains("dsse")
            || t.contains("attestation")
        {
            Kind::Attestation
        } else if t.contains("spdx") || t.contains("cyclonedx") || t.contains("sbom") || t.contains("syft") {
            Kind::Sbom
        } else {
            Kind::Other
        }
    }
}

/// How an attached manifest hangs on its subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Link {
    /// Under cosign's tag `sha256-<hex>.sig|.att|.sbom` in the subject's repository.
    CosignTag(String),
    /// By its own `subject` field (OCI 1.1); pushed by digest.
    Subject,
}

/// An attached manifest, as found at a source or in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    pub subject: Digest,
    pub link: Link,
    pub kind: Kind,
    /// The artifact type (the manifest's `artifactType`, else its config's media type).
    pub artifact_type: String,
}

/// An attached manifest as the store holds it, for reports (`pull`, `inspect`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct AttachedImage {
    pub name: String,
    pub digest: Digest,
    pub subject: Digest,
    pub kind: Kind,
    pub artifact_type: String,
    /// Manifest and blobs, as a registry holds them.
    pub bytes: u64,
}

/// The tag of the referrers tag schema for `subject`.
pub fn tag_schema_tag(subject: &Digest) -> String {
    format!("sha256-{}", subject.hex())
}

/// cosign's tag for `subject` with `suffix` (".sig", ".att", ".sbom").
pub fn cosign_tag(subject: &Digest, suffix: &str) -> String {
    format!("sha256-{}{suffix}", subject.hex())
}

/// cosign's tags for `subject`.
pub fn cosign_tags(subject: &Digest) -> impl Iterator<Item = String> + '_ {
    COSIGN_SUFFIXES.iter().map(move |(s, _)| cosign_tag(subject, s))
}

/// The subject and kind a cosign tag names, if `tag` is one.
pub fn parse_cosign_tag(tag: &str) -> Option<(Digest, Kind)> {
    let (suffix, kind) = COSIGN_SUFFIXES.iter().find(|(s, _)| tag.ends_with(s))?;
    let hex = tag.strip_suffix(suffix)?.strip_prefix("sha256-")?;
    let d = format!("sha256:{hex}").parse().ok()?;
    Some((d, *kind))
}

/// The subject a tag-schema tag names, if `tag` is one.
pub fn parse_tag_schema_tag(tag: &str) -> Option<Digest> {
    format!("sha256:{}", tag.strip_prefix("sha256-")?).parse().ok()
}

/// Whether a tag belongs to the referrers machinery rather than naming an image a user
/// would ask for (cosign's tags and the tag-schema indexes).
pub fn is_referrer_tag(tag: &str) -> bool {
    parse_cosign_tag(tag).is_some() || parse_tag_schema_tag(tag).is_some()
}

/// The parts of a manifest that say what it refers to.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReferrerFields {
    #[serde(default)]
    subject: Option<SubjectField>,
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    config: Option<ConfigField>,
    #[serde(default)]
    layers: Vec<ConfigField>,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct SubjectField {
    digest: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigField {
    #[serde(default)]
    media_type: String,
}

/// The artifact type of a manifest: `artifactType`, else the config's media type when it
/// is not an image config (the OCI 1.1 rule), else its first layer's media type.
pub fn artifact_type_of(manifest: &[u8]) -> String {
    let f: ReferrerFields = serde_json::from_slice(manifest).unwrap_or_default();
    artifact_type_from(&f)
}

fn artifact_type_from(f: &ReferrerFields) -> String {
    if let Some(t) = f.artifact_type.as_deref().filter(|t| !t.is_empty()) {
        return t.to_string();
    }
    let config = f.config.as_ref().map(|c| c.media_type.as_str()).unwrap_or("");
    let generic = config.is_empty()
        || config == super::manifest::OCI_CONFIG
        || config == super::manifest::DOCKER_CONFIG
        || config == "application/vnd.oci.empty.v1+json";
    if !generic {
        return config.to_string();
    }
    f.layers.first().map(|l| l.media_type.clone()).unwrap_or_default()
}

/// The subject named by a manifest's `subject` field.
pub fn subject_of(manifest: &[u8]) -> Option<Digest> {
    let f: ReferrerFields = serde_json::from_slice(manifest).ok()?;
    f.subject?.digest.parse().ok()
}

/// Whether the stored image `name` (top manifest bytes `manifest`) is attached to another
/// one, and how: named by a cosign tag, or named by its digest and naming a subject. An
/// image named by any other tag is an image in its own right, whatever its manifest says
/// (so a tag is never pushed as a mere attachment, past `--verify-key`).
pub fn attached(name: &str, manifest: &[u8]) -> Option<Attached> {
    let f: ReferrerFields = serde_json::from_slice(manifest).unwrap_or_default();
    let artifact_type = artifact_type_from(&f);
    if let Some(tag) = tag_of(name)
        && let Some((subject, kind)) = parse_cosign_tag(tag)
    {
        return Some(Attached {
            subject,
            link: Link::CosignTag(tag.to_string()),
            kind,
            artifact_type,
        });
    }
    if !named_by_digest(name) {
        return None;
    }
    let subject: Digest = f.subject.as_ref()?.digest.parse().ok()?;
    // cosign stores signatures and attestations alike as sigstore bundles; its annotation
    // names the predicate, which tells them apart.
    let kind = match f.annotations.get("dev.sigstore.bundle.predicateType") {
        Some(p) if p == "https://sigstore.dev/cosign/sign/v1" => Kind::Signature,
        Some(_) => Kind::Attestation,
        None => Kind::of_artifact_type(&artifact_type),
    };
    Some(Attached {
        subject,
        link: Link::Subject,
        kind,
        artifact_type,
    })
}

/// Whether an image name ends in its digest: `registry/repo@sha256:…` or, in a layout,
/// `oci:DIR:sha256:…`.
pub fn named_by_digest(name: &str) -> bool {
    match name.rsplit_once("sha256:") {
        Some((before, hex)) => {
            (before.ends_with('@') || before.ends_with(':'))
                && hex.len() == 64
                && hex.bytes().all(|b| b.is_ascii_hexdigit())
        }
        None => false,
    }
}

/// The repository part of an image name: without its tag, digest, or layout reference.
pub fn repository_of(name: &str) -> &str {
    let name = if named_by_digest(name) {
        &name[..name.len() - "sha256:".len() - 64 - 1]
    } else {
        name
    };
    match tag_of(name) {
        Some(t) => &name[..name.len() - t.len() - 1],
        None => name,
    }
}

/// The tag of an image name (`…/repo:tag`), if it has one.
pub fn tag_of(name: &str) -> Option<&str> {
    let no_digest = name.split('@').next().unwrap_or(name);
    let (_, tag) = no_digest.rsplit_once(':')?;
    (!tag.contains('/')).then_some(tag)
}

/// Attached manifests among `candidates` (stored or bundled images: name, top digest, top
/// manifest bytes) whose subject chain leads to one of `subjects`, in push order: every
/// one after its subject. Depth-bounded by [`MAX_DEPTH`].
/// `parts` gives a candidate's name, top digest and top manifest bytes.
pub fn attached_to<'a, T>(
    candidates: &'a [T],
    parts: impl Fn(&'a T) -> (&'a str, Digest, &'a [u8]),
    subjects: &HashSet<Digest>,
) -> Vec<(&'a T, Attached)> {
    let mut known: HashSet<Digest> = subjects.clone();
    let mut out: Vec<(&'a T, Attached)> = Vec::new();
    let mut taken: HashSet<&str> = HashSet::new();
    for _ in 0..MAX_DEPTH {
        let mut found = Vec::new();
        for c in candidates {
            let (name, digest, bytes) = parts(c);
            if taken.contains(name) {
                continue;
            }
            if let Some(a) = attached(name, bytes)
                && known.contains(&a.subject)
            {
                found.push((c, name, digest, a));
            }
        }
        if found.is_empty() {
            break;
        }
        for (c, name, digest, a) in found {
            taken.insert(name);
            known.insert(digest);
            out.push((c, a));
        }
    }
    out
}

/// Counts and bytes of attached manifests by kind, for summaries.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tally {
    pub count: usize,
    /// Their manifests and blobs.
    pub bytes: u64,
    pub signatures: usize,
    pub attestations: usize,
    pub sboms: usize,
    pub other: usize,
}

impl Tally {
    pub fn add(&mut self, kind: Kind, bytes: u64) {
        self.count += 1;
        self.bytes += bytes;
        *match kind {
            Kind::Signature => &mut self.signatures,
            Kind::Attestation => &mut self.attestations,
            Kind::Sbom => &mut self.sboms,
            Kind::Other => &mut self.other,
        } += 1;
    }

    /// "2 signatures, 1 attestations (4.1 KiB)", or "" when empty.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = [
            (self.signatures, Kind::Signature),
            (self.attestations, Kind::Attestation),
            (self.sboms, Kind::Sbom),
            (self.other, Kind::Other),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, k)| format!("{n} {}", k.plural()))
        .collect();
        if parts.is_empty() {
            return String::new();
        }
        format!(
            "{} ({})",
            parts.join(", "),
            crate::output::human_bytes(self.bytes)
        )
    }
}

/// The bytes a stored manifest and its blobs take, as the registry holds them.
pub fn manifest_and_blob_bytes(manifest: &[u8], media_type: &str) -> u64 {
    let blobs = match super::manifest::parse(manifest, Some(media_type)) {
        Ok(super::manifest::Parsed::Manifest { config, layers, .. }) => {
            config.size + layers.iter().map(|l| l.size).sum::<u64>()
        }
        _ => 0,
    };
    manifest.len() as u64 + blobs
}

/// Merge `entry` into a referrers tag-schema index (`existing`, or a new one), keeping
/// every entry already there: a signature made at the destination survives. Returns None
/// when the entry is already listed.
pub fn merge_into_tag_index(existing: Option<&[u8]>, entry: serde_json::Value) -> Result<Option<Vec<u8>>> {
    let mut index = match existing {
        Some(bytes) => serde_json::from_slice::<serde_json::Value>(bytes)
            .map_err(|e| crate::error::Error::format("referrers tag-schema index", e.to_string()))?,
        None => serde_json::json!({
            "schemaVersion": 2,
            "mediaType": super::manifest::OCI_INDEX,
            "manifests": [],
        }),
    };
    let digest = entry["digest"].clone();
    // `get_mut`, not indexing: indexing a JSON value that is not an object panics.
    let manifests = index
        .get_mut("manifests")
        .and_then(|m| m.as_array_mut())
        .ok_or_else(|| crate::error::Error::format("referrers tag-schema index", "it lists no manifests"))?;
    if manifests.iter().any(|m| m["digest"] == digest) {
        return Ok(None);
    }
    manifests.push(entry);
    Ok(Some(serde_json::to_vec(&index).expect("json")))
}

/// The descriptor of a referrer as the tag-schema index lists it: media type, digest,
/// size, artifact type and the manifest's annotations.
pub fn index_entry(digest: &Digest, media_type: &str, manifest: &[u8]) -> serde_json::Value {
    let mut e = serde_json::json!({
        "mediaType": media_type,
        "digest": digest.to_string(),
        "size": manifest.len(),
    });
    let t = artifact_type_of(manifest);
    if !t.is_empty() {
        e["artifactType"] = serde_json::Value::String(t);
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(manifest)
        && let Some(a) = v.get("annotations").filter(|a| a.is_object())
    {
        e["annotations"] = a.clone();
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::of(&[n])
    }

    #[test]
    fn cosign_tags_round_trip() {
        let s = d(1);
        let tag = cosign_tag(&s, ".att");
        assert_eq!(parse_cosign_tag(&tag), Some((s, Kind::Attestation)));
        assert_eq!(parse_tag_schema_tag(&tag_schema_tag(&s)), Some(s));
        assert!(parse_cosign_tag(&tag_schema_tag(&s)).is_none());
        assert!(parse_tag_schema_tag(&tag).is_none());
        assert!(parse_cosign_tag("sha256-zz.sig").is_none());
        assert!(is_referrer_tag(&tag) && !is_referrer_tag("v1"));
    }

    #[test]
    fn attached_by_tag_or_subject() {
        let s = d(1);
        let plain = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json"},"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json"}]}"#;
        let name = format!("reg/app:{}", cosign_tag(&s, ".sig"));
        let a = attached(&name, plain).unwrap();
        assert_eq!((a.subject, a.kind), (s, Kind::Signature));
        assert!(attached("reg/app:v1", plain).is_none());
        let referrer = format!(
            r#"{{"schemaVersion":2,"artifactType":"application/spdx+json","subject":{{"digest":"{s}","size":1}},"config":{{"mediaType":"application/vnd.oci.empty.v1+json"}},"layers":[]}}"#
        );
        let a = attached(&format!("reg/app@{}", d(2)), referrer.as_bytes()).unwrap();
        assert_eq!((a.subject, a.link, a.kind), (s, Link::Subject, Kind::Sbom));
    }

    #[test]
    fn only_cosign_tags_and_digest_names_are_attached() {
        let s = d(1);
        let m = format!(
            r#"{{"subject":{{"digest":"{s}"}},"config":{{"mediaType":"application/vnd.oci.image.config.v1+json"}}}}"#
        );
        // A runnable image that names a subject but is asked for by tag stays an image.
        assert!(attached("reg/app:v1", m.as_bytes()).is_none());
        assert!(attached(&format!("reg/app@{}", d(2)), m.as_bytes()).is_some());
        assert!(attached(&format!("oci:/l:{}", d(2)), m.as_bytes()).is_some());
        assert!(named_by_digest(&format!("reg/app@{s}")) && !named_by_digest("reg/app:sha256"));
        for name in [
            format!("reg/app@{s}"),
            format!("reg/app:{}", cosign_tag(&s, ".sig")),
            "reg/app:v1".to_string(),
            format!("oci:/l:{s}"),
        ] {
            let want = if name.starts_with("oci:") {
                "oci:/l"
            } else {
                "reg/app"
            };
            assert_eq!(repository_of(&name), want, "{name}");
        }
        assert_eq!(repository_of("docker://oci:5000/a:v1"), "docker://oci:5000/a");
        assert_eq!(repository_of(&format!("reg/app:v1@{s}")), "reg/app");
    }

    #[test]
    fn push_order_follows_subject_chains() {
        let img = d(1);
        let sbom = format!(r#"{{"artifactType":"application/spdx+json","subject":{{"digest":"{img}"}}}}"#);
        let sbom_d = Digest::of(sbom.as_bytes());
        let sig_on_sbom = format!(
            r#"{{"artifactType":"application/vnd.cncf.notary.signature","subject":{{"digest":"{sbom_d}"}}}}"#
        );
        let unrelated = format!(r#"{{"subject":{{"digest":"{}"}}}}"#, d(9));
        // Stored under digest names, as pulls record them.
        let name = |d: Digest| format!("r@{d}");
        let (sig_d, other_d) = (Digest::of(sig_on_sbom.as_bytes()), d(8));
        let c = vec![
            (name(sig_d), sig_d, sig_on_sbom.into_bytes()),
            (name(other_d), other_d, unrelated.into_bytes()),
            (name(sbom_d), sbom_d, sbom.into_bytes()),
        ];
        let got: Vec<String> = attached_to(&c, |c| (&c.0, c.1, &c.2), &HashSet::from([img]))
            .into_iter()
            .map(|(c, _)| c.0.clone())
            .collect();
        assert_eq!(got, [name(sbom_d), name(sig_d)]);
    }

    #[test]
    fn tag_index_merge_keeps_what_is_there() {
        let a = serde_json::json!({"mediaType": "m", "digest": d(1).to_string(), "size": 1});
        let b = serde_json::json!({"mediaType": "m", "digest": d(2).to_string(), "size": 2});
        let one = merge_into_tag_index(None, a.clone()).unwrap().unwrap();
        assert!(merge_into_tag_index(Some(&one), a).unwrap().is_none());
        let two = merge_into_tag_index(Some(&one), b).unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&two).unwrap();
        assert_eq!(v["manifests"].as_array().unwrap().len(), 2);
    }
}
