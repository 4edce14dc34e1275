//! Inputs the fuzzers found, kept as regression tests (fuzz/README.md).

use std::path::Path;

use booster::oci::reference::ImageRef;
use recompress::codec::Reader;
use recompress::{Method, rebuild};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/fuzz")
            .join(name),
    )
    .unwrap()
}

/// Hostile preflate corrections made preflate-rs 0.7.6 spin forever on an empty piece; the
/// rebuild must give up with an error instead of hanging.
#[test]
fn hostile_preflate_corrections_do_not_hang_a_rebuild() {
    // SAFETY: this test binary sets the variable before any rebuild thread starts.
    unsafe { std::env::set_var("BOOSTER_PREFLATE_DEADLINE_SECS", "2") };
    for name in ["method-preflate-hang.bin", "method-preflate-hang2.bin"] {
        let data = fixture(name);
        let (&n, rest) = data.split_first().unwrap();
        let (plain, method_bytes) = rest.split_at((n as usize).min(rest.len()));
        let m = Method::decode(&mut Reader::new(method_bytes)).unwrap();
        let started = std::time::Instant::now();
        let e = rebuild::rebuild_gzip_bytes(&m, plain).unwrap_err();
        eprintln!("{name}: {e} after {:?}", started.elapsed());
        assert!(started.elapsed().as_secs() < 10, "took {:?}", started.elapsed());
        assert!(e.contains("preflate"), "{e}");
    }
}

/// `oci:` references whose parts are blank: parsed consistently (they print and parse back
/// to the same reference) or refused.
#[test]
fn blank_oci_reference_parts_round_trip() {
    let s = String::from_utf8(fixture("reference-oci-blank.txt")).unwrap();
    match ImageRef::parse(&s) {
        Ok(r) => assert_eq!(ImageRef::parse(&r.to_string()).unwrap(), r),
        Err(e) => assert!(e.to_string().contains("oci:"), "{e}"),
    }
    assert!(ImageRef::parse("oci:\u{b}x:\u{b}").is_err());
}

/// A registry host spelled like a transport (`docker://oci:::…:/a`, found by the `reference`
/// target) printed as `oci:::…:/a:latest`, which reads back as an OCI layout. Hosts must now
/// be `HOST[:PORT]`, and a host named like a transport prints with its `docker://` prefix.
#[test]
fn registry_hosts_named_like_transports_round_trip() {
    let found = String::from_utf8(fixture("reference-transport-host.txt")).unwrap();
    let neighbours = [
        found.as_str(),
        "docker://oci:5000/a",
        "docker://oci:5000/a:v1",
        "docker://docker-archive:5000/team/app@sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        "docker://dir:1/a",
        "docker://tarball.local/a",
        "docker://oci.example/a",
        "docker://[::1]:5000/a",
        "docker://[::1]/a",
        "docker://host:/a",
        "docker://host::5000/a",
        "docker://a..b/c",
        "docker://-a.b/c",
        "docker://[zz]:1/a",
        "docker://[::1]x/a",
        "docker://localhost:123456/a",
        "oci:5000/a:latest",
    ];
    for s in neighbours {
        match ImageRef::parse(s) {
            Ok(r) => {
                let shown = r.to_string();
                assert_eq!(ImageRef::parse(&shown).unwrap(), r, "{s} → {shown}");
            }
            Err(e) => assert!(e.to_string().contains("invalid registry"), "{s}: {e}"),
        }
    }
    let e = ImageRef::parse(&found).unwrap_err().to_string();
    assert!(e.contains("invalid registry"), "{e}");
    let r = ImageRef::parse("docker://oci:5000/a").unwrap();
    assert_eq!(r.to_string(), "docker://oci:5000/a:latest");
}

/// A near-miss replay whose corrections carry a dynamic header with fewer literal/length
/// codes (269) than the model's matches need: writing a length code past the table
/// panicked; it is an error now.
#[test]
fn replay_with_a_short_literal_table_is_an_error() {
    let (plain, m) = method_case("method-replay-short-header.bin");
    let e = rebuild::rebuild_gzip_bytes(&m, &plain).unwrap_err();
    assert!(e.contains("length code out of range"), "{e}");
}

/// A preflate member whose pieces claim more plain text than the member has: the rebuild
/// fails reading its text after the worker started. In the fuzzer the worker's reader
/// thread then outlived the rebuild (a leak report); the worker now joins it.
#[test]
fn preflate_pieces_longer_than_their_member_are_an_error() {
    let (plain, m) = method_case("method-preflate-short-member.bin");
    assert!(rebuild::rebuild_gzip_bytes(&m, &plain).is_err());
}

/// An input of the `method` fuzz target: a length byte N, N bytes of plain text, then the
/// encoded rebuild method.
fn method_case(name: &str) -> (Vec<u8>, Method) {
    let data = fixture(name);
    let (&n, rest) = data.split_first().unwrap();
    let (plain, method_bytes) = rest.split_at((n as usize).min(rest.len()));
    let m = Method::decode(&mut Reader::new(method_bytes)).unwrap();
    (plain.to_vec(), m)
}

/// A referrers tag-schema index that is JSON but not an object (`1`, found by the
/// `manifest` target) panicked on indexing; merging into it is now an error.
#[test]
fn a_tag_schema_index_that_is_not_an_object_is_refused() {
    use booster::oci::referrers::{index_entry, merge_into_tag_index};
    let data = fixture("manifest-not-an-object.json");
    let entry = index_entry(
        &booster::id::Digest::of(b"m"),
        "application/vnd.oci.image.manifest.v1+json",
        b"{}",
    );
    for existing in [data.as_slice(), b"[]", b"null", b"{\"manifests\":1}"] {
        assert!(merge_into_tag_index(Some(existing), entry.clone()).is_err());
    }
}
