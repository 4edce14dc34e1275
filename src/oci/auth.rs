//! Registry credentials, found where skopeo and docker look for them:
//! `--creds user:pass`, then `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`,
//! `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`. In those files, `auths` entries
//! (base64 `user:pass` or an identity token), `credHelpers` per registry and `credsStore` as
//! the default helper (`docker-credential-NAME get`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use serde::Deserialize;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
    /// An identity (refresh) token, used with the username `<token>` in the token flow.
    IdentityToken(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
}

/// Where credentials come from for this process.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// `--creds user:pass`: used for every registry.
    pub creds: Option<(String, String)>,
    /// Auth files in the order they are consulted; missing files are skipped.
    pub files: Vec<PathBuf>,
}

impl AuthConfig {
    /// The standard search path, with `creds` from the command line if given.
    pub fn from_env(creds: Option<&str>) -> Result<AuthConfig> {
        let creds = match creds {
            Some(c) => {
                let (u, p) = c
                    .split_once(':')
                    .ok_or_else(|| Error::Usage("--creds must be USER:PASSWORD".into()))?;
                Some((u.to_string(), p.to_string()))
            }
            None => None,
        };
        let mut files = Vec::new();
        if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE") {
            files.push(PathBuf::from(p));
        }
        if let Some(p) = std::env::var_os("XDG_RUNTIME_DIR") {
            files.push(PathBuf::from(p).join("containers/auth.json"));
        }
        match std::env::var_os("DOCKER_CONFIG") {
            Some(p) => files.push(PathBuf::from(p).join("config.json")),
            None => {
                if let Some(h) = std::env::var_os("HOME") {
                    files.push(PathBuf::from(h).join(".docker/config.json"));
                }
            }
        }
        Ok(AuthConfig { creds, files })
    }

    /// Credentials for `registry` (`host[:port]`).
    pub fn lookup(&self, registry: &str) -> Result<Credentials> {
        if let Some((u, p)) = &self.creds {
            return Ok(Credentials::Basic {
                username: u.clone(),
                password: p.clone(),
            });
        }
        for path in &self.files {
            let Some(file) = read_auth_file(path)? else {
                continue;
            };
            if let Some(c) = lookup_in(&file, path, registry)? {
                return Ok(c);
            }
        }
        Ok(Credentials::Anonymous)
    }
}

fn read_auth_file(path: &Path) -> Result<Option<AuthFile>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading auth file {}", path.display()), e)),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::format(format!("auth file {}", path.display()), e.to_string()))
}

/// The keys an auth file may use for a registry: the bare host, and for Docker Hub the
/// historical `https://index.docker.io/v1/`.
fn keys_for(registry: &str) -> Vec<String> {
    let mut keys = vec![
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
        format!("https://{registry}/v1/"),
        format!("https://{registry}/v2/"),
    ];
    if registry == "docker.io" {
        keys.push("https://index.docker.io/v1/".into());
        keys.push("index.docker.io".into());
        keys.push("registry-1.docker.io".into());
    }
    keys
}

fn lookup_in(file: &AuthFile, path: &Path, registry: &str) -> Result<Option<Credentials>> {
    let keys = keys_for(registry);
    for k in &keys {
        if let Some(helper) = file.cred_helpers.get(k) {
            return run_helper(helper, registry).map(Some);
        }
    }
    for k in &keys {
        if let Some(entry) = file.auths.get(k) {
            if let Some(c) = decode_entry(entry, path, registry)? {
                return Ok(Some(c));
            }
        }
    }
    if let Some(store) = &file.creds_store {
        let c = run_helper(store, registry)?;
        if c != Credentials::Anonymous {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

fn decode_entry(e: &AuthEntry, path: &Path, registry: &str) -> Result<Option<Credentials>> {
    if let Some(t) = e.identity_token.as_ref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credentials::IdentityToken(t.clone())));
    }
    if let Some(a) = e.auth.as_ref().filter(|a| !a.is_empty()) {
        let bad = || {
            Error::format(
                format!("auth file {}", path.display()),
                format!("the auth entry for {registry} is not base64 of USER:PASSWORD"),
            )
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(a.trim())
            .map_err(|_| bad())?;
        let s = String::from_utf8(raw).map_err(|_| bad())?;
        let (u, p) = s.split_once(':').ok_or_else(bad)?;
        return Ok(Some(Credentials::Basic {
            username: u.to_string(),
            password: p.to_string(),
        }));
    }
    if let (Some(u), Some(p)) = (&e.username, &e.password) {
        return Ok(Some(Credentials::Basic {
            username: u.clone(),
            password: p.clone(),
        }));
    }
    Ok(None)
}

#[derive(Deserialize)]
struct HelperReply {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// `docker-credential-NAME get` with the registry on stdin (the docker credential helper
/// protocol). "credentials not found" means anonymous.
fn run_helper(name: &str, registry: &str) -> Result<Credentials> {
    let program = format!("docker-credential-{name}");
    let fail = |why: String| Error::Registry {
        registry: registry.to_string(),
        image: String::new(),
        message: format!("credential helper {program}: {why}"),
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            fail(format!(
                "cannot run it ({e}); install it or remove it from your auth file"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(registry.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        if text.to_lowercase().contains("credentials not found") {
            return Ok(Credentials::Anonymous);
        }
        return Err(fail(format!("it failed: {}", text.trim())));
    }
    let reply: HelperReply =
        serde_json::from_slice(&out.stdout).map_err(|e| fail(format!("unreadable reply: {e}")))?;
    if reply.username == "<token>" {
        return Ok(Credentials::IdentityToken(reply.secret));
    }
    Ok(Credentials::Basic {
        username: reply.username,
        password: reply.secret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_config_auths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let token = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        std::fs::write(
            &path,
            format!(r#"{{"auths":{{"127.0.0.1:5000":{{"auth":"{token}"}},"https://index.docker.io/v1/":{{"auth":"{token}"}}}}}}"#),
        )
        .unwrap();
        let cfg = AuthConfig {
            creds: None,
            files: vec![dir.path().join("missing.json"), path],
        };
        let alice = Credentials::Basic {
            username: "alice".into(),
            password: "s3cret".into(),
        };
        assert_eq!(cfg.lookup("127.0.0.1:5000").unwrap(), alice);
        assert_eq!(cfg.lookup("docker.io").unwrap(), alice);
        assert_eq!(cfg.lookup("quay.io").unwrap(), Credentials::Anonymous);
    }

    #[test]
    fn command_line_creds_win() {
        let cfg = AuthConfig::from_env(Some("bob:pw")).unwrap();
        assert_eq!(
            cfg.lookup("anything").unwrap(),
            Credentials::Basic {
                username: "bob".into(),
                password: "pw".into()
            }
        );
        assert!(AuthConfig::from_env(Some("nocolon")).is_err());
    }

    #[test]
    fn missing_helper_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        std::fs::write(
            &path,
            r#"{"credHelpers":{"example.com":"nonexistent-helper-xyz"}}"#,
        )
        .unwrap();
        let cfg = AuthConfig {
            creds: None,
            files: vec![path],
        };
        let e = cfg.lookup("example.com").unwrap_err().to_string();
        assert!(e.contains("docker-credential-nonexistent-helper-xyz"), "{e}");
    }
}
