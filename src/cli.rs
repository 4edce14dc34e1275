//! Command-line definition (clap). Types only: no I/O here, so the definition can also
//! generate completions and the man page.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "booster",
    version,
    about = "Move container images between registries and across air gaps, sending only what the other side lacks",
    long_about = "booster keeps every layer it sees as content-defined chunks in a local store, ships only what \
                  the receiver lacks (as deltas against what it has), and rebuilds every layer bit-exactly on \
                  arrival so image digests and signatures stay valid.",
    after_help = "Examples:\n  booster diff old.txt new.txt\n  booster apply old.txt new.txt old-to-new.patch localhost:5001"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Store directory [default: $XDG_DATA_HOME/booster, i.e. ~/.local/share/booster]
    #[arg(
        long,
        global = true,
        env = "BOOSTER_STORE",
        value_name = "DIR",
        help_heading = "Global options"
    )]
    pub store: Option<PathBuf>,
    /// More output (-v: debug, -vv: trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = "Global options")]
    pub verbose: u8,
    /// Only warnings and errors
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        help_heading = "Global options"
    )]
    pub quiet: bool,
    /// Print a JSON report on stdout instead of a human summary
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,
    /// Refuse layers that decompress to more than SIZE (decompression bombs)
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_size, help_heading = "Global options")]
    pub max_layer_size: Option<u64>,
    /// Refuse bundle sections larger than SIZE
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_size, help_heading = "Global options")]
    pub max_section_size: Option<u64>,
    /// If another booster has the store open, wait up to SECS for it instead of failing
    #[arg(long, global = true, value_name = "SECS", help_heading = "Global options")]
    pub wait: Option<u64>,
}

/// Options for commands that talk to registries.
#[derive(Debug, Args, Clone)]
pub struct RegistryArgs {
    /// Credentials for every registry this command uses (otherwise the auth files are used)
    #[arg(long, value_name = "USER:PASSWORD", help_heading = "Registry options")]
    pub creds: Option<String>,
    /// Require https with verified certificates (false: use plain http, as for loopback)
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, help_heading = "Registry options")]
    pub tls_verify: bool,
    /// Use plain http for this registry (repeatable); loopback registries always use http
    #[arg(
        long = "insecure-registry",
        value_name = "HOST[:PORT]",
        help_heading = "Registry options"
    )]
    pub insecure_registry: Vec<String>,
    /// Parallel blob transfers and layer analyses
    #[arg(
        long,
        short = 'j',
        default_value_t = 4,
        value_name = "N",
        help_heading = "Registry options"
    )]
    pub jobs: usize,
    /// Attempts per registry operation before giving up
    #[arg(
        long,
        default_value_t = 5,
        value_name = "N",
        help_heading = "Registry options"
    )]
    pub retries: u32,
    /// What refers to an image (cosign signatures and attestations, SBOMs, notation
    /// signatures, any OCI 1.1 referrer) travels with it (`all`) or stays behind (`none`)
    #[arg(
        long,
        value_enum,
        default_value_t = Referrers::All,
        env = "BOOSTER_REFERRERS",
        help_heading = "Registry options"
    )]
    pub referrers: Referrers,
}

/// `--referrers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Referrers {
    All,
    None,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch images from registries, OCI layouts or docker archives into the store
    #[command(
        after_help = "Examples:\n  booster pull docker://127.0.0.1:5000/app:v1\n  booster pull images.txt --platform linux/amd64"
    )]
    Pull(PullArgs),
    /// Push images from the store to a registry or an OCI layout
    #[command(
        after_help = "Examples:\n  booster push 127.0.0.1:5000/app:v1 --to localhost:5001\n  booster push app.txt --to oci:/srv/mirror"
    )]
    Push(PushArgs),
    /// Copy one image from a source to a destination through the store (like skopeo copy)
    #[command(
        after_help = "Examples:\n  booster copy oci:./layout:v1 docker://127.0.0.1:5000/app:v1\n  booster copy docker-archive:app.tar oci:./out:app"
    )]
    Copy(CopyArgs),
    /// Write a patch that turns a registry holding OLD into one holding NEW
    #[command(
        after_help = "Examples:\n  booster diff old.txt new.txt                  # writes old-to-new.patch\n  booster diff --dry-run --json old.txt new.txt"
    )]
    Diff(DiffArgs),
    /// Apply a patch: rebuild the NEW images from OLD (in REGISTRY) and push them there
    #[command(
        after_help = "Examples:\n  booster apply old.txt new.txt old-to-new.patch localhost:5001\n  booster apply old.txt new.txt old-to-new.patch registry.local:5000/mirror"
    )]
    Apply(ApplyArgs),
    /// Import a bundle or patch into the store (optionally pushing its images)
    #[command(
        after_help = "Examples:\n  booster import bundle.bkp\n  booster import /media/usb/bundle.bkp.001 --push registry.local:5000\n  booster import docker://registry.example/bundles:t3f0c5e18a2b4d07c-full"
    )]
    Import(ImportArgs),
    /// Write a bundle of what a receiver that has OLD lacks to rebuild NEW (for air gaps)
    #[command(
        after_help = "Examples:\n  booster export --since old.txt new.txt -o bundle.bkp\n  booster export --since site.inv new.txt -o /media/usb/bundle.bkp --split-size 4G\n  booster export --since old.txt new.txt --to docker://registry.example/bundles"
    )]
    Export(ExportArgs),
    /// Write an inventory of this store, for the sender's next `export --since`
    #[command(
        after_help = "Examples:\n  booster inventory -o site.inv\n  booster inventory --json -o site.inv"
    )]
    Inventory(InventoryArgs),
    /// Remove what no image needs any more and give the space back
    #[command(after_help = "Examples:\n  booster rm old.txt && booster gc\n  booster gc --dry-run")]
    Gc(GcArgs),
    /// Check a bundle completely without importing it
    #[command(
        after_help = "Examples:\n  booster verify bundle.bkp\n  booster verify /media/usb/bundle.bkp.003"
    )]
    Verify(VerifyArgs),
    /// Run the companion service beside a registry (primary, or replica with --primary)
    #[command(
        after_help = "Examples:\n  booster serve --registry 127.0.0.1:5000 --listen 127.0.0.1:8080\n  booster serve --registry 127.0.0.1:5001 --listen 127.0.0.1:8081 --primary http://127.0.0.1:8080 --allow-unsigned\n  curl -X POST http://127.0.0.1:8081/sync\n\nBeyond loopback: --token-file FILE (16+ characters, e.g. `openssl rand -hex 32`), and --signing-key on the primary with --primary-key on its replicas."
    )]
    Serve(Box<ServeArgs>),
    /// Probe a companion service's /healthz: exit 0 when it answers 200 (container health checks)
    #[command(
        after_help = "Examples:\n  booster healthcheck                       # 127.0.0.1:8080, or BOOSTER_LISTEN's port\n  booster healthcheck 127.0.0.1:8081"
    )]
    Healthcheck(HealthcheckArgs),
    /// Internal: rebuild preflate pieces sent on stdin (booster runs it as a child process)
    #[command(hide = true)]
    PreflateWorker,
    /// Print shell completions (bash, zsh, fish, elvish, powershell)
    #[command(
        after_help = "Examples:\n  booster completions bash > /etc/bash_completion.d/booster\n  booster completions zsh > ~/.zfunc/_booster"
    )]
    Completions(CompletionsArgs),
    /// Write the man page (roff) to stdout
    #[command(
        after_help = "Examples:\n  booster man > booster.1 && man ./booster.1\n  booster man | gzip > /usr/share/man/man1/booster.1.gz"
    )]
    Man,
    /// List the images in the store
    #[command(after_help = "Examples:\n  booster images\n  booster images --json")]
    Images,
    /// Remove image records from the store (run `booster gc` to free their space)
    #[command(
        after_help = "Examples:\n  booster rm 127.0.0.1:5000/app:v1\n  booster rm old.txt && booster gc"
    )]
    Rm(RmArgs),
    /// Show each layer of a stored image: sizes, encoder, rebuild method, correction bytes
    #[command(
        after_help = "Examples:\n  booster inspect 127.0.0.1:5000/app:v1\n  booster inspect --json app:v1"
    )]
    Inspect(InspectArgs),
    /// Show what the store holds: images, layers, chunks, dedup and compression
    #[command(after_help = "Examples:\n  booster stats\n  booster stats --json | jq .dedup_ratio")]
    Stats,
    /// Check the store: re-hash every chunk, check every record and image is complete
    #[command(
        after_help = "Examples:\n  booster fsck\n  booster fsck --rebuild   # also rebuild every layer and check its digest"
    )]
    Fsck(FsckArgs),
    /// Ingest local tar files or blobs into the store (for tests and benchmarks)
    #[command(after_help = "Examples:\n  booster ingest layer.tar\n  booster ingest --json a.tar b.tar")]
    Ingest(IngestArgs),
}

#[derive(Debug, Args)]
pub struct FsckArgs {
    /// Also rebuild every blob from its recipe and check its sha256
    #[arg(long)]
    pub rebuild: bool,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Files to ingest (uncompressed streams; each is recorded under its sha256)
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Image lists (one reference per line) or references
    #[arg(required = true, value_name = "LIST|REF")]
    pub images: Vec<String>,
    /// Keep only this platform of a multi-platform image (the index itself is then not kept)
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Image lists or references of images in the store
    #[arg(required = true, value_name = "LIST|REF")]
    pub images: Vec<String>,
    /// HOST[:PORT][/NAMESPACE] (each image keeps its repository path under it) or oci:DIR
    #[arg(long, value_name = "DEST")]
    pub to: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Source: docker://…, oci:DIR[:REF] or docker-archive:FILE[:REF]
    #[arg(value_name = "SRC")]
    pub source: String,
    /// Destination: docker://… or oci:DIR[:REF]
    #[arg(value_name = "DEST")]
    pub destination: String,
    /// Keep only this platform of a multi-platform image
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Image lists or references of images in the store
    #[arg(required = true, value_name = "LIST|REF")]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Reference of an image in the store
    #[arg(value_name = "REF")]
    pub image: String,
}

/// Options that shape a bundle's payload.
#[derive(Debug, Args, Clone)]
pub struct BundleArgs {
    /// zstd level for the payload (deltas and new data)
    #[arg(long, default_value_t = 19, value_name = "N", help_heading = "Bundle options")]
    pub level: i32,
    /// Most reference bytes one delta frame may use
    #[arg(long, default_value = "32M", value_name = "SIZE", value_parser = parse_size, help_heading = "Bundle options")]
    pub max_prefix: u64,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Old images (an image list file or a reference): what the receiver has
    #[arg(value_name = "OLD")]
    pub old: String,
    /// New images (an image list file or a reference): what it should have
    #[arg(value_name = "NEW")]
    pub new: String,
    /// Patch file [default: OLD-to-NEW.patch, from the list names]
    #[arg(short, long, value_name = "PATCH")]
    pub output: Option<std::path::PathBuf>,
    /// Print the estimate without writing the patch
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub bundle: BundleArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Old images (list or reference), as given to diff
    #[arg(value_name = "OLD")]
    pub old: String,
    /// New images (list or reference), as given to diff
    #[arg(value_name = "NEW")]
    pub new: String,
    /// The patch made by `booster diff`
    #[arg(value_name = "PATCH")]
    pub patch: std::path::PathBuf,
    /// Registry holding OLD, where NEW goes: HOST[:PORT][/NAMESPACE]
    #[arg(value_name = "REGISTRY")]
    pub registry_dest: String,
    /// Push an image only if it carries a cosign signature (legacy .sig or sigstore
    /// bundle) over its digest by one of these public keys (repeatable; PEM: ECDSA P-256,
    /// Ed25519, RSA)
    #[arg(long = "verify-key", value_name = "KEY.pub")]
    pub verify_key: Vec<std::path::PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The bundle (or any of its volumes), or a bundle artifact: docker://REGISTRY/REPO:TAG, oci:DIR[:TAG]
    #[arg(value_name = "BUNDLE")]
    pub bundle: String,
    /// Also rebuild the bundle's images and push them to HOST[:PORT][/NAMESPACE]
    #[arg(long, value_name = "REGISTRY")]
    pub push: Option<String>,
    /// Push an image only if it carries a cosign signature (legacy .sig or sigstore
    /// bundle) over its digest by one of these public keys (repeatable; PEM: ECDSA P-256,
    /// Ed25519, RSA)
    #[arg(long = "verify-key", value_name = "KEY.pub")]
    pub verify_key: Vec<std::path::PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle (or any of its volumes)
    #[arg(value_name = "BUNDLE")]
    pub bundle: std::path::PathBuf,
}

/// `4G`, `512M`, `1500K`, or bytes (binary units).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(format!("unknown size unit in {s:?} (use K, M, G or T)")),
            };
            (&s[..i], m)
        }
        _ => (s, 1),
    };
    let n: f64 = num.parse().map_err(|_| format!("not a size: {s:?}"))?;
    if n <= 0.0 {
        return Err(format!("size must be positive: {s:?}"));
    }
    Ok((n * mult as f64) as u64)
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// What the receiver has: an image list, a reference, or an inventory from `booster inventory`
    #[arg(long, value_name = "OLD|INVENTORY")]
    pub since: Option<String>,
    /// New images: image lists or references
    #[arg(required = true, value_name = "NEW|REF")]
    pub images: Vec<String>,
    /// Bundle file (with --split-size, or --to: volumes FILE.001, FILE.002, …)
    #[arg(short, long, value_name = "FILE", required_unless_present = "to")]
    pub output: Option<std::path::PathBuf>,
    /// Also (or instead) push the bundle as an OCI artifact: docker://REGISTRY/REPO[:TAG] or oci:DIR[:TAG]
    /// (tagged TARGETS-BASE, and TAG; moves the repository's `current` release pointer)
    #[arg(long, value_name = "REF")]
    pub to: Option<String>,
    /// With --to a registry: sign the bundle and the release pointer (cosign's .sig layout) with this PEM private key, for replicas with --primary-key
    #[arg(long, value_name = "KEY", requires = "to")]
    pub signing_key: Option<std::path::PathBuf>,
    /// Split into volumes of at most SIZE (e.g. 4G for FAT32 sticks: use 4095M; with --to: 128M)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub split_size: Option<u64>,
    /// Print the estimate without writing the bundle
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub bundle: BundleArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// Inventory file to write
    #[arg(short, long, value_name = "FILE")]
    pub output: std::path::PathBuf,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Report what would be freed without removing anything
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The registry beside this service: [http://]HOST[:PORT] (http:// means plain http)
    #[arg(long, env = "BOOSTER_REGISTRY", value_name = "URL")]
    pub registry: String,
    /// Replica: push a synced image only if it carries a cosign signature over its digest
    /// by one of these public keys (repeatable, or comma-separated in the variable)
    #[arg(
        long = "verify-key",
        env = "BOOSTER_VERIFY_KEY",
        value_name = "KEY.pub",
        value_delimiter = ','
    )]
    pub verify_key: Vec<std::path::PathBuf>,
    /// Address to listen on
    #[arg(
        long,
        env = "BOOSTER_LISTEN",
        default_value = "127.0.0.1:8080",
        value_name = "ADDR"
    )]
    pub listen: String,
    /// Be a replica (enables /sync) of the booster service at URL, or of a registry
    /// repository of bundles docker://REGISTRY/REPO; repeat to fall back in order
    #[arg(long, env = "BOOSTER_PRIMARY", value_name = "URL", value_delimiter = ',')]
    pub primary: Vec<String>,
    /// Primary: also push every bundle built, as an OCI artifact, to docker://REGISTRY/REPO
    #[arg(long, env = "BOOSTER_PUBLISH", value_name = "REPO")]
    pub publish: Option<String>,
    /// Image list to offer replicas [default: every tag in the registry's catalog]
    #[arg(long, env = "BOOSTER_IMAGES", value_name = "LIST")]
    pub images: Option<std::path::PathBuf>,
    /// File holding a bearer token (16+ characters) required on every endpoint but /healthz (and sent to the primary); required to listen beyond loopback
    #[arg(long, env = "BOOSTER_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// Listen beyond loopback without a token (when something in front of the service authenticates)
    #[arg(long, env = "BOOSTER_NO_AUTH", conflicts_with = "token_file")]
    pub no_auth: bool,
    /// Send the token to an http:// primary beyond loopback (in clear)
    #[arg(long, env = "BOOSTER_INSECURE")]
    pub insecure: bool,
    /// Primary: sign the bundles served and published with this PEM private key (ECDSA P-256 or Ed25519)
    #[arg(long, env = "BOOSTER_SIGNING_KEY", value_name = "KEY")]
    pub signing_key: Option<std::path::PathBuf>,
    /// Replica: import only bundles signed by one of these PEM public keys (the primary's --signing-key)
    #[arg(
        long = "primary-key",
        env = "BOOSTER_PRIMARY_KEY",
        value_name = "KEY.pub",
        value_delimiter = ','
    )]
    pub primary_key: Vec<std::path::PathBuf>,
    /// Replica: import bundles without checking who made them (no --primary-key)
    #[arg(long, env = "BOOSTER_ALLOW_UNSIGNED", conflicts_with = "primary_key")]
    pub allow_unsigned: bool,
    /// Bundle builds a primary runs at once; replicas asking for the same bundle share one
    #[arg(long, env = "BOOSTER_MAX_BUILDS", default_value_t = 2, value_name = "N")]
    pub max_builds: usize,
    /// Most bytes of built bundles a primary keeps (least recently used removed first)
    #[arg(long, env = "BOOSTER_BUNDLE_CACHE", default_value = "10G", value_name = "SIZE", value_parser = parse_size)]
    pub bundle_cache: u64,
    #[command(flatten)]
    pub tls: ServeTlsArgs,
    #[command(flatten)]
    pub limits: ServeLimitArgs,
    #[command(flatten)]
    pub bundle: BundleArgs,
    #[command(flatten)]
    pub registry_opts: RegistryArgs,
}

/// TLS for the service and for a replica's primary.
#[derive(Debug, Args)]
#[command(next_help_heading = "TLS")]
pub struct ServeTlsArgs {
    /// Serve https with this PEM certificate (chain)
    #[arg(long, env = "BOOSTER_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert
    #[arg(long, env = "BOOSTER_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Admit only clients with a certificate signed by these PEM CAs (mutual TLS)
    #[arg(
        long,
        env = "BOOSTER_TLS_CLIENT_CA",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_client_ca: Option<std::path::PathBuf>,
    /// Trust only these PEM CAs for an https:// --primary
    #[arg(long, env = "BOOSTER_PRIMARY_CA", value_name = "FILE")]
    pub primary_ca: Option<std::path::PathBuf>,
    /// Client certificate (PEM) this replica shows its primary
    #[arg(
        long,
        env = "BOOSTER_PRIMARY_CLIENT_CERT",
        value_name = "FILE",
        requires = "primary_client_key"
    )]
    pub primary_client_cert: Option<std::path::PathBuf>,
    /// The PKCS#8 PEM private key of --primary-client-cert
    #[arg(
        long,
        env = "BOOSTER_PRIMARY_CLIENT_KEY",
        value_name = "FILE",
        requires = "primary_client_cert"
    )]
    pub primary_client_key: Option<std::path::PathBuf>,
}

/// Bounds on what clients may ask of the service.
#[derive(Debug, Args)]
#[command(next_help_heading = "Request limits")]
pub struct ServeLimitArgs {
    /// Largest inventory POST /bundles accepts (413 beyond)
    #[arg(long, default_value = "256M", value_name = "SIZE", value_parser = parse_size)]
    pub max_inventory: u64,
    /// Bytes of inventories held in memory at once over all requests (more wait their turn)
    #[arg(long, default_value = "512M", value_name = "SIZE", value_parser = parse_size)]
    pub inventory_memory: u64,
    /// Seconds a response write may make no progress before the connection is closed
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub write_timeout: u64,
    /// Seconds a client has to send a request head (then the connection is closed) and an inventory (408 beyond)
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub request_timeout: u64,
    /// Connections open at once (more wait to be accepted)
    #[arg(long, default_value_t = 512, value_name = "N")]
    pub max_connections: usize,
}

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The service's address [default: BOOSTER_LISTEN with 0.0.0.0 read as 127.0.0.1, else 127.0.0.1:8080]
    #[arg(value_name = "ADDR")]
    pub addr: Option<String>,
    /// Seconds to wait for the answer
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}
