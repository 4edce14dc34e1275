//! Checking cosign signatures with public keys (`--verify-key`), offline, with the OpenSSL
//! booster already links. Two layouts carry a signature over an image's manifest digest:
//! - legacy: the tag `sha256-<hex>.sig`, an image whose layers are simplesigning payloads
//!   (`application/vnd.dev.cosign.simplesigning.v1+json`), each signed in its layer
//!   annotation `dev.cosignproject.cosign/signature` (base64);
//! - sigstore bundle (cosign 3's default): an OCI 1.1 referrer whose layer is a sigstore
//!   bundle holding a DSSE envelope over an in-toto statement with predicate type
//!   `https://sigstore.dev/cosign/sign/v1` and the image's digest as subject.
//!
//! Only the signature and the payload's image digest are checked: no transparency log, no
//! certificate chain (key-based signing needs neither); store-format.md section 8 says so.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, Private, Public};
use openssl::sign::{Signer, Verifier};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::id::Digest;

pub const SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
pub const SIMPLESIGNING_TYPE: &str = "cosign container image signature";
pub const SIGSTORE_BUNDLE_PREFIX: &str = "application/vnd.dev.sigstore.bundle";
pub const SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";
/// A signature payload or bundle larger than this is not one.
pub const MAX_PAYLOAD: u64 = 1 << 20;

/// Public keys a signature must be made by (PEM `PUBLIC KEY`: ECDSA P-256, Ed25519, RSA).
pub struct TrustedKeys {
    keys: Vec<(PathBuf, PKey<Public>)>,
}

impl TrustedKeys {
    pub fn load(paths: &[PathBuf]) -> Result<TrustedKeys> {
        TrustedKeys::load_for("--verify-key", paths)
    }

    /// The keys of the option `flag` (named in errors).
    pub fn load_for(flag: &str, paths: &[PathBuf]) -> Result<TrustedKeys> {
        let mut keys = Vec::new();
        for p in paths {
            keys.push((p.clone(), read_key(flag, p)?));
        }
        Ok(TrustedKeys { keys })
    }

    pub fn from_pem(name: &str, pem: &[u8]) -> Result<TrustedKeys> {
        let key = parse_key("--verify-key", Path::new(name), pem)?;
        Ok(TrustedKeys {
            keys: vec![(PathBuf::from(name), key)],
        })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key files, for messages.
    pub fn describe(&self) -> String {
        self.keys
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The key (its file) that made `sig` over `message`, if any did.
    fn signer(&self, message: &[u8], sig: &[u8]) -> Option<&Path> {
        self.keys
            .iter()
            .find(|(_, k)| verifies(k, message, sig))
            .map(|(p, _)| p.as_path())
    }
}

/// A private key booster signs with (`serve --signing-key`): what a primary publishes and
/// serves, so that its replicas (`--primary-key`) and `cosign verify --key` can tell its
/// bundles from anyone else's. PEM, unencrypted: PKCS#8 `PRIVATE KEY` or SEC1
/// `EC PRIVATE KEY`, ECDSA P-256 or Ed25519 (the kinds a replica checks).
pub struct SigningKey {
    path: PathBuf,
    key: PKey<Private>,
}

/// Names the key file only: never its bytes.
impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.path.display())
    }
}

impl std::fmt::Debug for TrustedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrustedKeys({})", self.describe())
    }
}

impl SigningKey {
    pub fn load(path: &Path) -> Result<SigningKey> {
        let pem = std::fs::read(path)
            .map_err(|e| Error::io(format!("reading signing key {}", path.display()), e))?;
        SigningKey::from_pem(path, &pem)
    }

    pub fn from_pem(path: &Path, pem: &[u8]) -> Result<SigningKey> {
        let bad = |why: String| Error::Usage(format!("--signing-key {}: {why}", path.display()));
        if pem.windows(9).any(|w| w == b"ENCRYPTED") {
            return Err(bad(
                "an encrypted key (cosign's own keys are): give an unencrypted PEM key, made with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out primary.key` (and `openssl pkey -in primary.key -pubout -out primary.pub` for the replicas)".into(),
            ));
        }
        let key = PKey::private_key_from_pem(pem).map_err(|e| bad(format!("not a PEM private key ({e})")))?;
        let p256 = key.id() == Id::EC
            && key.ec_key().ok().and_then(|k| k.group().curve_name())
                == Some(openssl::nid::Nid::X9_62_PRIME256V1);
        if !p256 && key.id() != Id::ED25519 {
            return Err(bad(format!(
                "key type {:?}: sign with ECDSA P-256 or Ed25519",
                key.id()
            )));
        }
        Ok(SigningKey {
            path: path.to_path_buf(),
            key,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The public half, PEM, for the replicas' `--primary-key`.
    pub fn public_pem(&self) -> Vec<u8> {
        self.key
            .public_key_to_pem()
            .expect("a loaded private key has a public half")
    }

    /// A signature over `message` as cosign makes one: ECDSA over SHA-256 (DER), or
    /// Ed25519 over the message itself.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let signed = match self.key.id() {
            Id::ED25519 => {
                Signer::new_without_digest(&self.key).and_then(|mut s| s.sign_oneshot_to_vec(message))
            }
            _ => Signer::new(MessageDigest::sha256(), &self.key).and_then(|mut s| {
                s.update(message)?;
                s.sign_to_vec()
            }),
        };
        signed.expect("signing with a key checked at load")
    }

    /// A cosign simplesigning payload naming `digest` as the signed manifest of
    /// `reference`, with `optional` claims, and its signature (base64), ready to go in a
    /// `.sig` layer and its `dev.cosignproject.cosign/signature` annotation.
    pub fn sign_simplesigning(
        &self,
        reference: &str,
        digest: &Digest,
        optional: serde_json::Value,
    ) -> (Vec<u8>, String) {
        let payload = simplesigning_payload(reference, digest, optional);
        let sig = base64::engine::general_purpose::STANDARD.encode(self.sign(&payload));
        (payload, sig)
    }
}

/// cosign's simplesigning payload (the "critical" part is what a verifier checks).
pub fn simplesigning_payload(reference: &str, digest: &Digest, optional: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest.to_string()},
            "type": SIMPLESIGNING_TYPE,
        },
        "optional": optional,
    }))
    .expect("json")
}

fn read_key(flag: &str, path: &Path) -> Result<PKey<Public>> {
    let pem = std::fs::read(path).map_err(|e| Error::io(format!("reading key {}", path.display()), e))?;
    parse_key(flag, path, &pem)
}

fn parse_key(flag: &str, path: &Path, pem: &[u8]) -> Result<PKey<Public>> {
    if pem.windows(11).any(|w| w == b"PRIVATE KEY") {
        return Err(Error::Usage(format!(
            "{flag} {}: this is a private key; give the public key (`openssl pkey -in KEY -pubout`). \
             (`serve --primary-key` is the primary's public signing key since booster 0.2; a replica's TLS client key is --primary-client-key)",
            path.display()
        )));
    }
    let key = PKey::public_key_from_pem(pem).map_err(|e| {
        Error::Usage(format!(
            "{flag} {}: not a PEM public key ({e}); give the .pub file `cosign generate-key-pair` wrote",
            path.display()
        ))
    })?;
    match key.id() {
        // cosign signs with SHA-256 only on P-256 (P-384 and P-521 keys use other hashes).
        Id::EC => {
            let curve = key.ec_key().ok().and_then(|k| k.group().curve_name());
            if curve == Some(openssl::nid::Nid::X9_62_PRIME256V1) {
                Ok(key)
            } else {
                Err(Error::Usage(format!(
                    "{flag} {}: only P-256 ECDSA keys are supported (this one is {curve:?})",
                    path.display()
                )))
            }
        }
        Id::ED25519 | Id::RSA => Ok(key),
        other => Err(Error::Usage(format!(
            "{flag} {}: key type {other:?} is not supported (ECDSA P-256, Ed25519, RSA)",
            path.display()
        ))),
    }
}

/// ECDSA and RSA (PKCS#1 v1.5) over SHA-256 as cosign signs; Ed25519 over the message.
fn verifies(key: &PKey<Public>, message: &[u8], sig: &[u8]) -> bool {
    let ok = match key.id() {
        Id::ED25519 => Verifier::new_without_digest(key).and_then(|mut v| v.verify_oneshot(sig, message)),
        _ => Verifier::new(MessageDigest::sha256(), key).and_then(|mut v| {
            v.update(message)?;
            v.verify(sig)
        }),
    };
    ok.unwrap_or(false)
}

/// What one attached manifest says about the image, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// A signature over the image's digest by this key.
    Signed { key: PathBuf, layout: &'static str },
    /// A signature that did not check out, and why.
    Rejected(String),
    /// Not a cosign signature (an attestation, an SBOM, …).
    NotASignature,
}

#[derive(Deserialize)]
struct ManifestLayers {
    #[serde(default)]
    layers: Vec<LayerDesc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayerDesc {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

/// Check one attached manifest of the image `subject`: its signature layers are read by
/// `blob` (bytes checked against their digest by the caller).
pub fn check(
    keys: &TrustedKeys,
    subject: &Digest,
    manifest: &[u8],
    blob: &mut dyn FnMut(&Digest) -> Result<Vec<u8>>,
) -> Vec<Finding> {
    let m: ManifestLayers = serde_json::from_slice(manifest).unwrap_or(ManifestLayers { layers: Vec::new() });
    let mut out = Vec::new();
    for l in &m.layers {
        let legacy = l.media_type == SIMPLESIGNING;
        let bundle = l.media_type.starts_with(SIGSTORE_BUNDLE_PREFIX);
        if !legacy && !bundle {
            out.push(Finding::NotASignature);
            continue;
        }
        if l.size > MAX_PAYLOAD {
            out.push(Finding::Rejected(format!(
                "signature layer {} is {} bytes",
                l.digest, l.size
            )));
            continue;
        }
        let Ok(d) = l.digest.parse::<Digest>() else {
            out.push(Finding::Rejected(format!(
                "a signature layer named {:?}",
                l.digest
            )));
            continue;
        };
        let bytes = match blob(&d) {
            Ok(b) => b,
            Err(e) => {
                out.push(Finding::Rejected(format!("signature layer {d} unreadable: {e}")));
                continue;
            }
        };
        out.push(if legacy {
            check_simplesigning(keys, subject, &bytes, l.annotations.get(SIGNATURE_ANNOTATION))
        } else {
            check_sigstore_bundle(keys, subject, &bytes)
        });
    }
    out
}

fn b64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(s.trim()).ok()
}

/// A legacy signature: `sig` (base64) over the simplesigning payload, which must name
/// `subject` as the image.
pub fn check_simplesigning(
    keys: &TrustedKeys,
    subject: &Digest,
    payload: &[u8],
    sig: Option<&String>,
) -> Finding {
    let Some(sig) = sig.and_then(|s| b64(s)) else {
        return Finding::Rejected("a .sig layer without its signature annotation".into());
    };
    let Some(key) = keys.signer(payload, &sig) else {
        return Finding::Rejected("a .sig signature made by none of the keys, or over altered bytes".into());
    };
    let v: serde_json::Value = match serde_json::from_slice(payload) {
        Ok(v) => v,
        Err(e) => return Finding::Rejected(format!("a .sig payload that is not JSON: {e}")),
    };
    let critical = &v["critical"];
    if critical["type"].as_str() != Some(SIMPLESIGNING_TYPE) {
        return Finding::Rejected(format!("a .sig payload of type {}", critical["type"]));
    }
    match critical["image"]["docker-manifest-digest"].as_str() {
        Some(d) if d == subject.to_string() => Finding::Signed {
            key: key.to_path_buf(),
            layout: "legacy .sig",
        },
        other => Finding::Rejected(format!(
            "a .sig signature over {} rather than {subject}",
            other.unwrap_or("no digest")
        )),
    }
}

/// A sigstore bundle: its DSSE envelope's signature over the PAE of its payload, an
/// in-toto statement of cosign's sign predicate whose subject is `subject`.
pub fn check_sigstore_bundle(keys: &TrustedKeys, subject: &Digest, bundle: &[u8]) -> Finding {
    let v: serde_json::Value = match serde_json::from_slice(bundle) {
        Ok(v) => v,
        Err(e) => return Finding::Rejected(format!("a sigstore bundle that is not JSON: {e}")),
    };
    let env = &v["dsseEnvelope"];
    if env.is_null() {
        return Finding::Rejected(
            "a sigstore bundle without a DSSE envelope (message signatures are not checked)".into(),
        );
    }
    let (Some(payload_type), Some(payload)) =
        (env["payloadType"].as_str(), env["payload"].as_str().and_then(b64))
    else {
        return Finding::Rejected("a DSSE envelope without its payload".into());
    };
    let pae = dsse_pae(payload_type, &payload);
    let signer = env["signatures"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["sig"].as_str().and_then(b64))
        .find_map(|sig| keys.signer(&pae, &sig));
    let Some(key) = signer else {
        return Finding::Rejected(
            "a sigstore bundle signed by none of the keys, or over altered bytes".into(),
        );
    };
    let statement: serde_json::Value = match serde_json::from_slice(&payload) {
        Ok(s) => s,
        Err(e) => return Finding::Rejected(format!("a DSSE payload that is not JSON: {e}")),
    };
    if statement["predicateType"].as_str() != Some(SIGN_PREDICATE) {
        return Finding::NotASignature;
    }
    let names_subject = statement["subject"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| s["digest"]["sha256"].as_str() == Some(subject.hex().as_str()));
    if names_subject {
        Finding::Signed {
            key: key.to_path_buf(),
            layout: "sigstore bundle",
        }
    } else {
        Finding::Rejected(format!(
            "a sigstore bundle signature over another image than {subject}"
        ))
    }
}

/// DSSE's pre-authentication encoding: what a DSSE signature is over.
pub fn dsse_pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh_key(ed25519: bool) -> SigningKey {
        let key = if ed25519 {
            PKey::generate_ed25519().unwrap()
        } else {
            let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
            PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap()
        };
        SigningKey::from_pem(Path::new("k.pem"), &key.private_key_to_pem_pkcs8().unwrap()).unwrap()
    }

    #[test]
    fn what_booster_signs_its_keys_verify_and_others_do_not() {
        for ed in [false, true] {
            let key = fresh_key(ed);
            let d = Digest::of(b"bundle");
            let (payload, sig) = key.sign_simplesigning("booster/bundle", &d, serde_json::json!({"n": 1}));
            let trusted = TrustedKeys::from_pem("k.pub", &key.public_pem()).unwrap();
            assert!(matches!(
                check_simplesigning(&trusted, &d, &payload, Some(&sig)),
                Finding::Signed { .. }
            ));
            let other = TrustedKeys::from_pem("o.pub", &fresh_key(ed).public_pem()).unwrap();
            assert!(matches!(
                check_simplesigning(&other, &d, &payload, Some(&sig)),
                Finding::Rejected(_)
            ));
            assert!(matches!(
                check_simplesigning(&trusted, &Digest::of(b"other"), &payload, Some(&sig)),
                Finding::Rejected(_)
            ));
        }
        let rsa = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let e = SigningKey::from_pem(Path::new("r.pem"), &rsa.private_key_to_pem_pkcs8().unwrap());
        assert!(e.is_err());
        let e = SigningKey::from_pem(
            Path::new("c.key"),
            b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
        );
        assert!(e.err().unwrap().to_string().contains("genpkey"));
    }

    fn golden(name: &str) -> Vec<u8> {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/golden/cosign")
                .join(name),
        )
        .unwrap()
    }

    fn keys() -> TrustedKeys {
        TrustedKeys::from_pem("cosign.pub", &golden("cosign.pub")).unwrap()
    }

    fn image() -> Digest {
        Digest::of(&golden("image-manifest.json"))
    }

    fn layers(manifest: &str, payload: &str) -> (Vec<u8>, Vec<u8>) {
        (golden(manifest), golden(payload))
    }

    fn run(keys: &TrustedKeys, subject: &Digest, manifest: &[u8], payload: &[u8]) -> Vec<Finding> {
        let payload = payload.to_vec();
        check(keys, subject, manifest, &mut |_| Ok(payload.clone()))
    }

    /// Real cosign 3.1.1 output (tests/golden/cosign, made by tests/fixtures/sign-image.sh).
    #[test]
    fn real_cosign_signatures_verify_in_both_layouts() {
        for (m, p, layout) in [
            (
                "legacy-sig-manifest.json",
                "legacy-sig-payload.json",
                "legacy .sig",
            ),
            (
                "bundle-sig-manifest.json",
                "bundle-sig-layer.json",
                "sigstore bundle",
            ),
        ] {
            let (manifest, payload) = layers(m, p);
            assert_eq!(
                run(&keys(), &image(), &manifest, &payload),
                [Finding::Signed {
                    key: "cosign.pub".into(),
                    layout
                }],
                "{m}"
            );
        }
        // An attestation is not a signature, though made by the same key.
        let (manifest, payload) = layers("bundle-att-manifest.json", "bundle-att-layer.json");
        assert_eq!(
            run(&keys(), &image(), &manifest, &payload),
            [Finding::NotASignature]
        );
    }

    #[test]
    fn tampered_payloads_other_images_and_other_keys_are_refused() {
        let other_key = openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap();
        let pem = PKey::from_ec_key(other_key).unwrap().public_key_to_pem().unwrap();
        let stranger = TrustedKeys::from_pem("other.pub", &pem).unwrap();
        for (m, p) in [
            ("legacy-sig-manifest.json", "legacy-sig-payload.json"),
            ("bundle-sig-manifest.json", "bundle-sig-layer.json"),
        ] {
            let (manifest, payload) = layers(m, p);
            assert!(matches!(
                run(&stranger, &image(), &manifest, &payload)[0],
                Finding::Rejected(_)
            ));
            assert!(matches!(
                run(&keys(), &Digest::of(b"another image"), &manifest, &payload)[0],
                Finding::Rejected(_)
            ));
            // One byte of the signed payload changed (the image digest it names).
            let text = String::from_utf8(payload.clone()).unwrap();
            let tampered = if m.starts_with("legacy") {
                text.replacen("sha256:c", "sha256:d", 1).into_bytes()
            } else {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                let inner =
                    String::from_utf8(b64(v["dsseEnvelope"]["payload"].as_str().unwrap()).unwrap()).unwrap();
                let altered = base64::engine::general_purpose::STANDARD.encode(inner.replacen(
                    "\"sha256\":\"c",
                    "\"sha256\":\"d",
                    1,
                ));
                text.replace(v["dsseEnvelope"]["payload"].as_str().unwrap(), &altered)
                    .into_bytes()
            };
            assert_ne!(tampered, payload);
            assert!(
                matches!(
                    run(&keys(), &image(), &manifest, &tampered)[0],
                    Finding::Rejected(_)
                ),
                "{m}"
            );
        }
    }

    /// Ed25519 and RSA keys (cosign imports both with `import-key-pair`), checked against
    /// signatures OpenSSL makes the way cosign does: a legacy payload, and a DSSE envelope.
    #[test]
    fn ed25519_and_rsa_keys_verify_both_layouts() {
        use openssl::pkey::Private;
        let subject = image();
        let payload = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"r/a"}},"image":{{"docker-manifest-digest":"{subject}"}},"type":"{SIMPLESIGNING_TYPE}"}},"optional":null}}"#
        );
        let statement = format!(
            r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"digest":{{"sha256":"{}"}}}}],"predicateType":"{SIGN_PREDICATE}","predicate":{{}}}}"#,
            subject.hex()
        );
        let sign = |key: &PKey<Private>, msg: &[u8]| -> Vec<u8> {
            let mut s = match key.id() {
                Id::ED25519 => openssl::sign::Signer::new_without_digest(key).unwrap(),
                _ => openssl::sign::Signer::new(MessageDigest::sha256(), key).unwrap(),
            };
            s.sign_oneshot_to_vec(msg).unwrap()
        };
        let b64e = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        for key in [
            PKey::generate_ed25519().unwrap(),
            PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap(),
        ] {
            let keys = TrustedKeys::from_pem("k.pub", &key.public_key_to_pem().unwrap()).unwrap();
            let sig = b64e(&sign(&key, payload.as_bytes()));
            let legacy = check_simplesigning(&keys, &subject, payload.as_bytes(), Some(&sig));
            assert!(
                matches!(legacy, Finding::Signed { .. }),
                "{:?}: {legacy:?}",
                key.id()
            );
            let pae = dsse_pae("application/vnd.in-toto+json", statement.as_bytes());
            let bundle = format!(
                r#"{{"dsseEnvelope":{{"payload":"{}","payloadType":"application/vnd.in-toto+json","signatures":[{{"sig":"{}"}}]}}}}"#,
                b64e(statement.as_bytes()),
                b64e(&sign(&key, &pae))
            );
            let found = check_sigstore_bundle(&keys, &subject, bundle.as_bytes());
            assert!(
                matches!(found, Finding::Signed { .. }),
                "{:?}: {found:?}",
                key.id()
            );
            let other = check_simplesigning(&keys, &Digest::of(b"other"), payload.as_bytes(), Some(&sig));
            assert!(matches!(other, Finding::Rejected(_)));
        }
        // A P-384 key is refused when loaded: cosign signs with it over SHA-384.
        let p384 = openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::SECP384R1).unwrap(),
        )
        .unwrap();
        let pem = PKey::from_ec_key(p384).unwrap().public_key_to_pem().unwrap();
        assert!(TrustedKeys::from_pem("p384.pub", &pem).is_err());
    }

    #[test]
    fn pae_is_dsse_v1() {
        assert_eq!(dsse_pae("t", b"ab"), b"DSSEv1 1 t 2 ab");
    }
}
