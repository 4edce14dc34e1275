//! Image references in skopeo's syntax, and image list files.
//!
//! `docker://host[:port]/repo[:tag][@sha256:…]`, the same without `docker://`, Docker Hub
//! short names (`ubuntu` → `docker.io/library/ubuntu:latest`), `oci:DIR[:REF]` and
//! `docker-archive:FILE[:REF]`.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::id::Digest;

pub const DOCKER_HUB: &str = "docker.io";

/// A reference to an image in a registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegistryRef {
    /// `host` or `host:port`; `docker.io` for Docker Hub.
    pub registry: String,
    /// `library/ubuntu`, `team/app`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl RegistryRef {
    /// `registry/repository`.
    pub fn repo_path(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The name image records are stored under: `registry/repo:tag`, or `registry/repo@digest`
    /// when the reference has no tag; `docker://` before a registry host spelled like a
    /// transport (`oci:5000/a` would read back as a layout).
    pub fn name(&self) -> String {
        let prefix = if TRANSPORTS.contains(&host_part(&self.registry)) {
            "docker://"
        } else {
            ""
        };
        match (&self.tag, &self.digest) {
            (Some(t), _) => format!("{prefix}{}/{}:{t}", self.registry, self.repository),
            (None, Some(d)) => format!("{prefix}{}/{}@{d}", self.registry, self.repository),
            (None, None) => format!("{prefix}{}/{}:latest", self.registry, self.repository),
        }
    }

    /// What to ask the registry for: the digest if pinned, else the tag.
    pub fn reference_str(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        }
    }

    /// The same image placed in another registry (and optionally under a namespace),
    /// keeping its repository path: `apply` and `import --push` use this.
    pub fn rehomed(&self, dest: &Destination) -> RegistryRef {
        let repository = match &dest.namespace {
            Some(ns) => format!("{ns}/{}", self.repository),
            None => self.repository.clone(),
        };
        RegistryRef {
            registry: dest.registry.clone(),
            repository,
            tag: self.tag.clone(),
            digest: self.digest,
        }
    }

    /// Whether booster talks plain http to this registry by default (loopback only).
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(&self.registry)
    }
}

/// `localhost`, or an address in 127.0.0.0/8 or `[::1]`: exactly, so that a name such as
/// `127.example.com` is not taken for loopback (and sent plain http).
pub fn is_loopback_host(registry: &str) -> bool {
    let host = host_part(registry);
    let ip = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || ip
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback() && (host.starts_with('[') == a.is_ipv6()))
}

fn host_part(registry: &str) -> &str {
    if registry.starts_with('[') {
        return match registry.find(']') {
            Some(i) => &registry[..=i],
            None => registry,
        };
    }
    registry.split(':').next().unwrap_or(registry)
}

impl fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        if self.tag.is_none() && self.digest.is_none() {
            write!(f, ":latest")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ImageRef {
    Registry(RegistryRef),
    OciLayout {
        dir: PathBuf,
        reference: Option<String>,
    },
    DockerArchive {
        file: PathBuf,
        reference: Option<String>,
    },
}

/// Transport prefixes `ImageRef::parse` reads before it tries a registry reference: the
/// supported ones, then those it refuses by name. A registry host spelled like one of them
/// (`oci:5000`) is only unambiguous with its `docker://` prefix.
const TRANSPORTS: [&str; 8] = [
    "oci",
    "docker-archive",
    "dir",
    "docker-daemon",
    "containers-storage",
    "oci-archive",
    "sif",
    "tarball",
];

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageRef::Registry(r) if TRANSPORTS.contains(&host_part(&r.registry)) => {
                write!(f, "docker://{r}")
            }
            ImageRef::Registry(r) => write!(f, "{r}"),
            ImageRef::OciLayout { dir, reference } => match reference {
                Some(r) => write!(f, "oci:{}:{r}", dir.display()),
                None => write!(f, "oci:{}", dir.display()),
            },
            ImageRef::DockerArchive { file, reference } => match reference {
                Some(r) => write!(f, "docker-archive:{}:{r}", file.display()),
                None => write!(f, "docker-archive:{}", file.display()),
            },
        }
    }
}

fn bad(reference: &str, reason: impl Into<String>) -> Error {
    Error::Reference {
        reference: reference.to_string(),
        reason: reason.into(),
    }
}

impl ImageRef {
    pub fn parse(s: &str) -> Result<ImageRef> {
        let s = s.trim();
        if s.is_empty() {
            return Err(bad(s, "empty reference"));
        }
        if s.chars().any(|c| c.is_control()) {
            return Err(bad(s, "contains a control character"));
        }
        if let Some(rest) = s.strip_prefix("oci:") {
            let (dir, reference) = split_path_ref(rest);
            if dir.is_empty() {
                return Err(bad(s, "oci: needs a directory, as in oci:DIR[:REF]"));
            }
            return Ok(ImageRef::OciLayout {
                dir: PathBuf::from(dir),
                reference,
            });
        }
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            let (file, reference) = split_path_ref(rest);
            if file.is_empty() {
                return Err(bad(
                    s,
                    "docker-archive: needs a file, as in docker-archive:FILE[:REF]",
                ));
            }
            return Ok(ImageRef::DockerArchive {
                file: PathBuf::from(file),
                reference,
            });
        }
        if let Some(rest) = s.strip_prefix("docker://") {
            return parse_registry_ref(rest)
                .map(ImageRef::Registry)
                .map_err(|e| rename(e, s));
        }
        if let Some((transport, _)) = s.split_once(':')
            && TRANSPORTS[2..].contains(&transport)
        {
            return Err(bad(
                s,
                format!("transport {transport}: is not supported; use docker://, oci: or docker-archive:"),
            ));
        }
        parse_registry_ref(s).map(ImageRef::Registry)
    }

    pub fn as_registry(&self) -> Option<&RegistryRef> {
        match self {
            ImageRef::Registry(r) => Some(r),
            _ => None,
        }
    }
}

fn rename(e: Error, whole: &str) -> Error {
    match e {
        Error::Reference { reason, .. } => bad(whole, reason),
        other => other,
    }
}

/// `PATH[:REF]`, split at the first `:` as skopeo does (references such as `app:1` keep
/// their own colon; paths with a colon are not supported).
fn split_path_ref(s: &str) -> (&str, Option<String>) {
    match s.split_once(':') {
        Some((p, r)) => (
            p.trim(),
            Some(r.trim()).filter(|r| !r.is_empty()).map(str::to_string),
        ),
        None => (s.trim(), None),
    }
}

/// Parse `[host[:port]/]repo[:tag][@digest]` with Docker Hub normalisation.
pub fn parse_registry_ref(s: &str) -> Result<RegistryRef> {
    // Names of images from registries spelled like transports carry the prefix (`name`).
    let s = s.strip_prefix("docker://").unwrap_or(s);
    if s.chars().any(|c| c.is_whitespace()) {
        return Err(bad(s, "contains whitespace"));
    }
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (
            r,
            Some(d.parse::<Digest>().map_err(|e| bad(s, e.reason.to_string()))?),
        ),
        None => (s, None),
    };
    // A tag follows the last ':' after the last '/': a ':' before that is a port.
    let last_slash = rest.rfind('/');
    let (name, tag) = match rest.rfind(':') {
        Some(i) if last_slash.is_none_or(|j| i > j) => (&rest[..i], Some(rest[i + 1..].to_string())),
        _ => (rest, None),
    };
    if let Some(t) = &tag {
        validate_tag(s, t)?;
    }
    let (registry, repository) = match name.split_once('/') {
        Some((first, remainder)) if looks_like_registry(first) => {
            validate_registry(s, first)?;
            (first.to_string(), remainder.to_string())
        }
        _ => (DOCKER_HUB.to_string(), name.to_string()),
    };
    let registry = if registry == "index.docker.io" || registry == "registry-1.docker.io" {
        DOCKER_HUB.to_string()
    } else {
        registry
    };
    let repository = if registry == DOCKER_HUB && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository
    };
    validate_repository(s, &repository)?;
    let tag = if tag.is_none() && digest.is_none() {
        Some("latest".to_string())
    } else {
        tag
    };
    Ok(RegistryRef {
        registry,
        repository,
        tag,
        digest,
    })
}

fn looks_like_registry(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost" || first.starts_with('[')
}

/// `HOST[:PORT]` as the distribution reference grammar has it: dot-separated labels of
/// letters, digits and inner `-`, or a bracketed IPv6 address; a port of 1 to 5 digits.
/// Anything looser (`oci:::`, `host:`) would not survive being printed and read back.
fn validate_registry(whole: &str, registry: &str) -> Result<()> {
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        match rest.split_once(']') {
            Some((addr, "")) if is_ipv6_literal(addr) => (None, None),
            Some((addr, port)) if is_ipv6_literal(addr) => match port.strip_prefix(':') {
                Some(p) => (None, Some(p)),
                None => return Err(bad_registry(whole, registry)),
            },
            _ => return Err(bad_registry(whole, registry)),
        }
    } else {
        match registry.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(registry), None),
        }
    };
    let host_ok = host.is_none_or(|h| {
        h.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
    });
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()));
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(bad_registry(whole, registry))
    }
}

fn is_ipv6_literal(addr: &str) -> bool {
    !addr.is_empty() && addr.parse::<std::net::Ipv6Addr>().is_ok()
}

fn bad_registry(whole: &str, registry: &str) -> Error {
    bad(
        whole,
        format!("invalid registry {registry:?} (HOST[:PORT], HOST made of letters, digits, - and .)"),
    )
}

pub fn validate_tag(whole: &str, t: &str) -> Result<()> {
    let ok = !t.is_empty()
        && t.len() <= 128
        && t.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(bad(
            whole,
            format!("invalid tag {t:?} (letters, digits, _ . -; at most 128)"),
        ))
    }
}

fn validate_repository(whole: &str, repo: &str) -> Result<()> {
    if repo.is_empty() {
        return Err(bad(whole, "missing repository name"));
    }
    for comp in repo.split('/') {
        let ok = !comp.is_empty()
            && comp
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
            && comp.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && comp.chars().last().is_some_and(|c| c.is_ascii_alphanumeric());
        if !ok {
            let hint = if comp.chars().any(|c| c.is_ascii_uppercase()) {
                " (repository names must be lower case)"
            } else {
                ""
            };
            return Err(bad(whole, format!("invalid repository component {comp:?}{hint}")));
        }
    }
    Ok(())
}

/// Where `push`, `apply` and `import --push` put images: `HOST[:PORT][/NAMESPACE]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub registry: String,
    pub namespace: Option<String>,
}

impl Destination {
    pub fn parse(s: &str) -> Result<Destination> {
        let t = s.trim().trim_start_matches("docker://").trim_end_matches('/');
        if t.is_empty() {
            return Err(bad(s, "empty registry"));
        }
        let (registry, namespace) = match t.split_once('/') {
            Some((r, ns)) => (r.to_string(), Some(ns.to_string())),
            None => (t.to_string(), None),
        };
        if registry.contains('@')
            || !registry
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        {
            return Err(bad(s, "expected HOST[:PORT][/NAMESPACE]"));
        }
        if let Some(ns) = &namespace {
            validate_repository(s, ns)?;
        }
        Ok(Destination { registry, namespace })
    }
}

/// Read an image list: one reference per line; `#` starts a comment; blank lines ignored.
pub fn read_image_list(path: &Path) -> Result<Vec<ImageRef>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading image list {}", path.display()), e))?;
    parse_image_list(path, &text)
}

pub fn parse_image_list(path: &Path, text: &str) -> Result<Vec<ImageRef>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = match line.find('#') {
            Some(j) => &line[..j],
            None => line,
        }
        .trim();
        if line.is_empty() {
            continue;
        }
        let r = ImageRef::parse(line).map_err(|e| Error::ImageList {
            file: path.to_path_buf(),
            line: i + 1,
            reason: e.to_string(),
        })?;
        out.push(r);
    }
    Ok(out)
}

/// A command argument that is either an image list file or a single reference.
pub fn list_or_ref(arg: &str) -> Result<Vec<ImageRef>> {
    let p = Path::new(arg);
    if p.is_file() {
        return read_image_list(p);
    }
    ImageRef::parse(arg).map(|r| vec![r])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(s: &str) -> RegistryRef {
        match ImageRef::parse(s).unwrap() {
            ImageRef::Registry(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn normalises_docker_hub_names() {
        assert_eq!(reg("ubuntu").to_string(), "docker.io/library/ubuntu:latest");
        assert_eq!(reg("team/app:1.0").to_string(), "docker.io/team/app:1.0");
        assert_eq!(
            reg("docker://ubuntu:22.04").name(),
            "docker.io/library/ubuntu:22.04"
        );
        assert_eq!(reg("index.docker.io/library/ubuntu").registry, "docker.io");
    }

    #[test]
    fn loopback_is_exact() {
        for yes in [
            "localhost:5000",
            "127.0.0.1",
            "127.8.9.10:80",
            "[::1]:5000",
            "[::1]",
        ] {
            assert!(is_loopback_host(yes), "{yes}");
        }
        for no in [
            "127.example.com",
            "127.0.0.1.nip.io:5000",
            "localhost.example",
            "10.0.0.1",
            "[::2]",
        ] {
            assert!(!is_loopback_host(no), "{no}");
        }
    }

    #[test]
    fn parses_ports_tags_and_digests() {
        let r = reg("127.0.0.1:5000/bench/debian:old");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "bench/debian", Some("old"))
        );
        assert!(r.is_loopback());
        let d = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        let r = reg(&format!("localhost:5000/a@{d}"));
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.unwrap().to_string(), d);
        assert_eq!(r.name(), format!("localhost:5000/a@{d}"));
        let r = reg("localhost/a/b");
        assert_eq!((r.registry.as_str(), r.repository.as_str()), ("localhost", "a/b"));
    }

    #[test]
    fn parses_layouts_and_archives() {
        assert_eq!(
            ImageRef::parse("oci:/tmp/layout:v1").unwrap(),
            ImageRef::OciLayout {
                dir: "/tmp/layout".into(),
                reference: Some("v1".into())
            }
        );
        assert_eq!(
            ImageRef::parse("oci:/tmp/layout").unwrap(),
            ImageRef::OciLayout {
                dir: "/tmp/layout".into(),
                reference: None
            }
        );
        assert_eq!(
            ImageRef::parse("docker-archive:img.tar:app:1").unwrap(),
            ImageRef::DockerArchive {
                file: "img.tar".into(),
                reference: Some("app:1".into())
            }
        );
    }

    #[test]
    fn bad_references_say_what_is_wrong() {
        let e = ImageRef::parse("Ubuntu").unwrap_err().to_string();
        assert!(e.contains("lower case"), "{e}");
        let e = ImageRef::parse("ubuntu:bad tag").unwrap_err().to_string();
        assert!(e.contains("whitespace"), "{e}");
        let e = ImageRef::parse("ubuntu@sha256:1234").unwrap_err().to_string();
        assert!(e.contains("64 hex"), "{e}");
        let e = ImageRef::parse("dir:/tmp/x").unwrap_err().to_string();
        assert!(e.contains("not supported"), "{e}");
    }

    #[test]
    fn image_lists_skip_comments_and_name_bad_lines() {
        let list = "# old images\nubuntu:22.04\n\n  alpine # trailing comment\nBAD\n";
        let e = parse_image_list(Path::new("old.txt"), list)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("old.txt:5: "), "{e}");
        let ok = parse_image_list(Path::new("old.txt"), "ubuntu:22.04\n# c\n alpine \n").unwrap();
        assert_eq!(ok.len(), 2);
    }

    #[test]
    fn destinations_keep_repository_paths() {
        let d = Destination::parse("localhost:5001/mirror").unwrap();
        let r = reg("docker.io/library/ubuntu:bionic");
        assert_eq!(
            r.rehomed(&d).to_string(),
            "localhost:5001/mirror/library/ubuntu:bionic"
        );
        assert!(Destination::parse("local host").is_err());
    }

    proptest::proptest! {
        /// What parses prints to text that parses to the same reference, for inputs made of
        /// the pieces references are made of (transport names, separators, ports, digests).
        #[test]
        fn display_parses_back_to_the_same_reference(
            pieces in proptest::collection::vec(proptest::sample::select(vec![
                "docker://", "oci", "docker-archive", "dir", "localhost", "[::1]", "a", "b1",
                "5000", ":", ":", "/", "/", ".", "-", "_", "@", "latest",
                "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            ]), 1..12)
        ) {
            let s: String = pieces.concat();
            if let Ok(r) = ImageRef::parse(&s) {
                let shown = r.to_string();
                proptest::prop_assert_eq!(ImageRef::parse(&shown).ok(), Some(r.clone()), "{} → {}", s, shown);
                // The store's names (`images`, `inspect`, errors) read back the same way.
                if let ImageRef::Registry(x) = &r {
                    let name = x.name();
                    let back = ImageRef::parse(&name).ok().and_then(|b| b.as_registry().map(|b| b.name()));
                    proptest::prop_assert_eq!(back, Some(name.clone()), "{} → {}", s, name);
                }
            }
        }
    }
}
