//! The edge between the command line and the library: turn parsed arguments into calls,
//! print summaries. Errors become `anyhow` here and nowhere below.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::cli::ServeArgs;
use crate::cli::{
    ApplyArgs, BundleArgs, Cli, Command, CopyArgs, DiffArgs, ExportArgs, FsckArgs, GcArgs, ImportArgs,
    IngestArgs, InspectArgs, InventoryArgs, PullArgs, PushArgs, RegistryArgs, RmArgs, VerifyArgs,
};
use crate::delta::DeltaOptions;
use crate::ingest::{self, IngestOptions};
use crate::layer::Analysis;
use crate::oci::auth::AuthConfig;
use crate::oci::cosign::TrustedKeys;
use crate::oci::layout::OciLayout;
use crate::oci::reference::{Destination, ImageRef, list_or_ref};
use crate::oci::registry::{Registries, RegistryOptions};
use crate::oci::source::Sink;
use crate::ops::artifact::{self, Place};
use crate::ops::make_bundle::BundleOptions;
use crate::ops::pull::{Ctx, PlatformFilter, PullOptions, image_name};
use crate::ops::push::{MountHints, destination_for};
use crate::ops::{apply, diff, export, gc, import, inventory};
use crate::ops::{fsck, inspect, pull, push, push_attached, stats};
use crate::output::{human_bytes, print_json};
use crate::store::Store;

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let json = cli.global.json;
    if matches!(
        cli.command,
        Command::Completions(_) | Command::Man | Command::Healthcheck(_) | Command::PreflateWorker
    ) {
        // None needs a store.
        return run_without_store(cli);
    }
    // preflate rebuilds run in child processes that can be killed (see preflate_worker).
    if let Ok(exe) = std::env::current_exe() {
        recompress::preflate_worker::enable(exe);
    }
    LOCK_WAIT.store(cli.global.wait.unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
    if let Some(n) = cli.global.max_layer_size {
        crate::ingest::set_max_layer_len(n);
    }
    if let Some(n) = cli.global.max_section_size {
        crate::bundle::BundleReader::set_max_section(n);
    }
    let store_dir = store_dir(cli.global.store.clone())?;
    match cli.command {
        Command::Stats => cmd_stats(&store_dir, json),
        Command::Fsck(args) => cmd_fsck(&store_dir, &args, json),
        Command::Ingest(args) => cmd_ingest(&store_dir, &args, json),
        Command::Pull(args) => cmd_pull(&store_dir, &args, json),
        Command::Push(args) => cmd_push(&store_dir, &args, json),
        Command::Copy(args) => cmd_copy(&store_dir, &args, json),
        Command::Diff(args) => cmd_diff(&store_dir, &args, json),
        Command::Apply(args) => cmd_apply(&store_dir, &args, json),
        Command::Import(args) => cmd_import(&store_dir, &args, json),
        Command::Verify(args) => cmd_verify(&args, json),
        Command::Export(args) => cmd_export(&store_dir, &args, json),
        Command::Inventory(args) => cmd_inventory(&store_dir, &args, json),
        Command::Gc(args) => cmd_gc(&store_dir, &args, json),
        Command::Serve(args) => cmd_serve(&store_dir, &args),
        Command::Completions(_) | Command::Man | Command::Healthcheck(_) | Command::PreflateWorker => {
            unreachable!("handled before the store is opened")
        }
        Command::Images => cmd_images(&store_dir, json),
        Command::Rm(args) => cmd_rm(&store_dir, &args, json),
        Command::Inspect(args) => cmd_inspect(&store_dir, &args, json),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .max(2),
        )
        .enable_all()
        .build()?)
}

pub fn registry_options(args: &RegistryArgs) -> anyhow::Result<RegistryOptions> {
    Ok(RegistryOptions {
        auth: AuthConfig::from_env(args.creds.as_deref())?,
        insecure: args.insecure_registry.clone(),
        plain_http_everywhere: !args.tls_verify,
        attempts: args.retries.max(1),
        ..RegistryOptions::default()
    })
}

fn context(dir: &Path, args: &RegistryArgs) -> anyhow::Result<Ctx> {
    Ok(Ctx::new(
        Arc::new(open_store(dir)?),
        Arc::new(Registries::new(registry_options(args)?)),
        args.jobs.max(1),
    )
    .with_referrers(args.referrers == crate::cli::Referrers::All))
}

/// Expand LIST|REF arguments into references.
fn references(args: &[String]) -> anyhow::Result<Vec<ImageRef>> {
    let mut out = Vec::new();
    for a in args {
        out.extend(list_or_ref(a)?);
    }
    Ok(out)
}

fn cmd_pull(dir: &Path, args: &PullArgs, json: bool) -> anyhow::Result<ExitCode> {
    let ctx = context(dir, &args.registry)?;
    let refs = references(&args.images)?;
    let opts = PullOptions::new(
        args.platform.as_deref().map(PlatformFilter::parse).transpose()?,
        Analysis::Full,
    );
    let rt = runtime()?;
    let mut reports = Vec::new();
    for r in &refs {
        reports.push(rt.block_on(pull::pull_image(&ctx, r, &opts))?);
    }
    if json {
        print_json(&reports);
    }
    Ok(ExitCode::SUCCESS)
}

/// Turn `--to` into a sink for one stored image.
fn sink_for(ctx: &Ctx, name: &str, to: &str) -> anyhow::Result<Sink> {
    if let Some(rest) = to.strip_prefix("oci:") {
        let (dir, reference) = match rest.split_once(':') {
            Some((d, r)) => (d, Some(r.to_string())),
            None => (rest, None),
        };
        // Without an explicit REF, each image is named by its tag in the layout.
        let reference = reference.or_else(|| {
            name.rsplit_once(':')
                .map(|(_, t)| t.to_string())
                .filter(|t| !t.contains('/'))
        });
        return Ok(Sink::Layout {
            layout: OciLayout::create(Path::new(dir))?,
            reference,
        });
    }
    let dest = Destination::parse(to)?;
    let image = destination_for(name, &dest).map_err(|e| {
        anyhow::anyhow!("{e}; images that do not come from a registry can be pushed with `booster copy SRC docker://HOST/REPO:TAG`")
    })?;
    Ok(Sink::Registry {
        registries: ctx.registries.clone(),
        image,
    })
}

fn cmd_push(dir: &Path, args: &PushArgs, json: bool) -> anyhow::Result<ExitCode> {
    let ctx = context(dir, &args.registry)?;
    let refs = references(&args.images)?;
    let rt = runtime()?;
    let hints = MountHints::default();
    let names: Vec<String> = refs.iter().map(image_name).collect();
    let place = |name: &str| sink_for(&ctx, name, &args.to).map_err(|e| crate::Error::Usage(e.to_string()));
    let reports = rt.block_on(push_attached::push_all(&ctx, &names, &place, &hints))?;
    if json {
        print_json(&reports);
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_copy(dir: &Path, args: &CopyArgs, json: bool) -> anyhow::Result<ExitCode> {
    let ctx = context(dir, &args.registry)?;
    let src = ImageRef::parse(&args.source)?;
    let dst = ImageRef::parse(&args.destination)?;
    let opts = PullOptions::new(
        args.platform.as_deref().map(PlatformFilter::parse).transpose()?,
        Analysis::Full,
    );
    let rt = runtime()?;
    let pulled = rt.block_on(pull::pull_image(&ctx, &src, &opts))?;
    if let ImageRef::DockerArchive { .. } = &dst {
        anyhow::bail!("writing docker-archive is not supported; copy to oci:DIR instead")
    }
    // Signatures and other referrers go beside the image wherever it goes.
    let place = |_: &str| -> crate::Result<Sink> {
        Ok(match &dst {
            ImageRef::Registry(r) => Sink::Registry {
                registries: ctx.registries.clone(),
                image: r.clone(),
            },
            ImageRef::OciLayout { dir, reference } => Sink::Layout {
                layout: OciLayout::create(dir)?,
                reference: reference.clone(),
            },
            ImageRef::DockerArchive { .. } => unreachable!("refused above"),
        })
    };
    let mut pushed_all = rt.block_on(push_attached::push_all(
        &ctx,
        std::slice::from_ref(&pulled.name),
        &place,
        &MountHints::default(),
    ))?;
    let pushed = pushed_all.remove(0);
    // The store now also knows the image under its registry name, so later pushes, diffs
    // and exports can name it that way.
    if let ImageRef::Registry(r) = &dst
        && let Some(rec) = ctx.store.image(&pulled.name)?
    {
        ctx.store.set_image(&r.name(), &rec)?;
    }
    if json {
        print_json(&serde_json::json!({"pulled": pulled, "pushed": pushed, "attached_pushed": pushed_all}));
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_images(dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let store = open_store(dir)?;
    let images = store.images()?;
    // Signatures and other attached manifests say what they are attached to.
    let mut rows = Vec::new();
    for (n, r) in &images {
        let attached = match store.doc(&r.digest)? {
            Some(doc) => crate::oci::referrers::attached(n, &doc.data),
            None => None,
        };
        rows.push((n, r, attached));
    }
    if json {
        let list: Vec<_> = rows
            .iter()
            .map(|(n, r, a)| {
                serde_json::json!({
                    "name": n, "digest": r.digest, "media_type": r.media_type,
                    "attached_to": a.as_ref().map(|a| a.subject.to_string()),
                    "kind": a.as_ref().map(|a| a.kind),
                })
            })
            .collect();
        print_json(&list);
    } else {
        for (n, r, a) in &rows {
            match a {
                Some(a) => crate::outln!(
                    "{n}  {}  ({} of {})",
                    r.digest,
                    format!("{:?}", a.kind).to_lowercase(),
                    a.subject.short()
                ),
                None => crate::outln!("{n}  {}", r.digest),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_rm(dir: &Path, args: &RmArgs, json: bool) -> anyhow::Result<ExitCode> {
    let store = open_store(dir)?;
    let mut removed = Vec::new();
    let mut missing = Vec::new();
    let mut gone = std::collections::HashSet::new();
    for r in references(&args.images)? {
        let name = image_name(&r);
        if let Some(rec) = store.image(&name)? {
            gone.insert(rec.digest);
            gone.extend(push::manifest_digests(&store, &rec.digest).unwrap_or_default());
        }
        if store.remove_image(&name)? {
            removed.push(name);
        } else {
            missing.push(name);
        }
    }
    // Signatures and other manifests attached to what is gone go too, unless another
    // name still holds their subject.
    for (_, rec) in store.images()? {
        gone.remove(&rec.digest);
        for d in push::manifest_digests(&store, &rec.digest).unwrap_or_default() {
            gone.remove(&d);
        }
    }
    for a in inspect::attached_of(&store, gone)? {
        if store.remove_image(&a.name)? {
            removed.push(a.name);
        }
    }
    if json {
        print_json(&serde_json::json!({"removed": removed, "not_found": missing}));
    } else {
        for n in &removed {
            tracing::info!("removed {n}");
        }
        for n in &missing {
            tracing::warn!("{n} is not in the store");
        }
        if !removed.is_empty() {
            tracing::info!("run `booster gc` to free the space they used");
        }
    }
    Ok(if missing.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn cmd_inspect(dir: &Path, args: &InspectArgs, json: bool) -> anyhow::Result<ExitCode> {
    let store = open_store(dir)?;
    let name = image_name(&ImageRef::parse(&args.image)?);
    let info = inspect::inspect(&store, &name)?;
    if json {
        print_json(&info);
        return Ok(ExitCode::SUCCESS);
    }
    crate::outln!("{}  {}  {}", info.name, info.digest, info.media_type);
    for m in &info.manifests {
        crate::outln!(
            "manifest {}{}",
            m.digest,
            m.platform
                .as_ref()
                .map(|p| format!("  ({p})"))
                .unwrap_or_default()
        );
        crate::outln!(
            "  {:<19} {:>10} {:>10}  {:<22} {:<40} {:>10}",
            "layer",
            "size",
            "plain",
            "encoder",
            "rebuild method",
            "corrections"
        );
        for l in &m.layers {
            crate::outln!(
                "  {:<19} {:>10} {:>10}  {:<22} {:<40} {:>10}",
                l.digest.short(),
                human_bytes(l.compressed_size),
                l.uncompressed_size.map(human_bytes).unwrap_or_else(|| "-".into()),
                truncate(&l.encoder, 22),
                truncate(&l.method, 40),
                l.correction_bytes
            );
        }
    }
    if let Some(s) = &info.attached_to {
        crate::outln!("attached to {s}");
    }
    if !info.attached.is_empty() {
        crate::outln!("attached ({} in all):", info.attached.len());
        for a in &info.attached {
            crate::outln!(
                "  {:<12} {:<48} {:>10}  {}",
                format!("{:?}", a.kind).to_lowercase(),
                truncate(&a.artifact_type, 48),
                human_bytes(a.bytes),
                a.name
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}

/// `--store`, else `$BOOSTER_STORE` (clap handles both), else `$XDG_DATA_HOME/booster`,
/// else `~/.local/share/booster`.
pub fn store_dir(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p);
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(x).join("booster"));
    }
    let home =
        std::env::var_os("HOME").context("neither --store, BOOSTER_STORE, XDG_DATA_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".local/share/booster"))
}

/// `--wait SECS`: how long to wait for another process to release the store.
static LOCK_WAIT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn open_store(dir: &Path) -> anyhow::Result<Store> {
    let wait = std::time::Duration::from_secs(LOCK_WAIT.load(std::sync::atomic::Ordering::Relaxed));
    let started = std::time::Instant::now();
    let mut told = false;
    loop {
        match Store::open(dir) {
            Err(crate::Error::StoreInUse { pid, .. }) if started.elapsed() < wait => {
                if !told {
                    tracing::info!(
                        "store {} is in use by pid {pid}; waiting up to {}s",
                        dir.display(),
                        wait.as_secs()
                    );
                    told = true;
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            other => return Ok(other?),
        }
    }
}

fn cmd_stats(dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let store = open_store(dir)?;
    let s = stats::stats(&store)?;
    if json {
        print_json(&s);
    } else {
        crate::outln!("store        {}", dir.display());
        crate::outln!("images       {}", s.images);
        crate::outln!(
            "manifests    {} (manifests, indexes, configs)",
            s.manifests_and_configs
        );
        crate::outln!("blobs        {}", s.blobs);
        crate::outln!("layers       {} (distinct plain streams)", s.recipes);
        crate::outln!("chunks       {}", s.chunks);
        crate::outln!("logical      {}", human_bytes(s.logical_bytes));
        crate::outln!("unique       {}", human_bytes(s.unique_bytes));
        crate::outln!("stored       {} (after compression)", human_bytes(s.stored_bytes));
        crate::outln!("on disk      {}", human_bytes(s.disk_bytes));
        crate::outln!("dedup ratio  {:.2}", s.dedup_ratio);
        print_space(&s.space);
    }
    Ok(ExitCode::SUCCESS)
}

/// The space lines of `stats` (store-format.md §5.1).
fn print_space(sp: &stats::SpaceReport) {
    let u = &sp.usage;
    crate::outln!(
        "space ratio  {:.2} (on disk without logs ÷ what the store holds: {})",
        sp.ratio,
        human_bytes(sp.held_bytes)
    );
    crate::outln!(
        "  on disk    tables {}, blob files {} (garbage {}), logs {}, unreferenced {}",
        human_bytes(u.table_bytes),
        human_bytes(u.blob_file_bytes),
        human_bytes(u.blob_garbage_bytes),
        human_bytes(u.log_bytes),
        human_bytes(u.unreferenced_bytes)
    );
}

fn cmd_fsck(dir: &Path, args: &FsckArgs, json: bool) -> anyhow::Result<ExitCode> {
    let store = open_store(dir)?;
    let bar = crate::output::count_bar(0, "checking");
    let report = fsck::fsck(
        &store,
        fsck::FsckOptions {
            rebuild: args.rebuild,
        },
        &mut |what, n| {
            bar.set_message(format!("checking {what}"));
            bar.set_position(n);
        },
    )?;
    bar.finish_and_clear();
    if json {
        print_json(&report);
    } else {
        for p in &report.problems {
            tracing::error!("{p}");
        }
        for w in &report.warnings {
            tracing::warn!("{w}");
        }
        tracing::info!(
            "checked {} chunks, {} recipes, {} blobs, {} documents, {} images{}: {}",
            report.chunks_checked,
            report.recipes_checked,
            report.blobs_checked,
            report.docs_checked,
            report.images_checked,
            if args.rebuild {
                format!(", rebuilt {} blobs", report.blobs_rebuilt)
            } else {
                String::new()
            },
            if report.is_clean() {
                "no problems".to_string()
            } else {
                format!("{} problems", report.problems.len())
            }
        );
    }
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn cmd_ingest(dir: &Path, args: &IngestArgs, json: bool) -> anyhow::Result<ExitCode> {
    let store = open_store(dir)?;
    let mut results = Vec::new();
    for f in &args.files {
        let len = std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
        let bar = crate::output::bytes_bar(len, f.display().to_string());
        let mut file = std::fs::File::open(f).with_context(|| format!("opening {}", f.display()))?;
        let started = std::time::Instant::now();
        let out = ingest::ingest(
            &store,
            &mut file,
            &f.display().to_string(),
            IngestOptions::default(),
            &mut |n| bar.set_position(n),
        )?;
        bar.finish_and_clear();
        let secs = started.elapsed().as_secs_f64();
        if !json {
            tracing::info!(
                "ingested {} as {}: {} in {} chunks, {} new ({} stored), {:.0} MB/s",
                f.display(),
                out.digest(),
                human_bytes(out.len),
                out.chunks,
                out.new_chunks,
                human_bytes(out.stored_bytes),
                out.len as f64 / secs.max(1e-9) / 1e6
            );
        }
        results.push(serde_json::json!({"file": f, "outcome": out, "seconds": secs}));
    }
    if json {
        print_json(&results);
    }
    Ok(ExitCode::SUCCESS)
}

fn bundle_options(args: &BundleArgs, split: Option<u64>, dry_run: bool) -> BundleOptions {
    BundleOptions {
        delta: DeltaOptions {
            level: args.level,
            prefix_max: args.max_prefix,
            ..DeltaOptions::default()
        },
        split,
        dry_run,
    }
}

/// `old.txt` + `new.txt` → `old-to-new.patch`.
fn default_patch_name(old: &str, new: &str) -> PathBuf {
    let stem = |s: &str| {
        let p = Path::new(s);
        if p.is_file() {
            p.file_stem()
                .map(|x| x.to_string_lossy().to_string())
                .unwrap_or_else(|| "old".into())
        } else {
            s.rsplit(['/', ':']).next().unwrap_or(s).to_string()
        }
    };
    PathBuf::from(format!("{}-to-{}.patch", stem(old), stem(new)))
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1} %", 100.0 * part as f64 / whole as f64)
    }
}

fn cmd_diff(dir: &Path, args: &DiffArgs, json: bool) -> anyhow::Result<ExitCode> {
    let ctx = context(dir, &args.registry)?;
    let old = list_or_ref(&args.old)?;
    let new = list_or_ref(&args.new)?;
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| default_patch_name(&args.old, &args.new));
    let opts = bundle_options(&args.bundle, None, args.dry_run);
    let rt = runtime()?;
    let r = rt.block_on(diff::diff(&ctx, &old, &new, &out, &opts))?;
    if json {
        print_json(&r);
        return Ok(ExitCode::SUCCESS);
    }
    tracing::info!(
        "old: {} images, {} compressed, {} uncompressed",
        r.old.images,
        human_bytes(r.old.compressed_bytes),
        human_bytes(r.old.uncompressed_bytes)
    );
    tracing::info!(
        "new: {} images, {} compressed, {} uncompressed",
        r.new.images,
        human_bytes(r.new.compressed_bytes),
        human_bytes(r.new.uncompressed_bytes)
    );
    tracing::info!(
        "push-and-pull update size: {} ({} blobs)",
        human_bytes(r.pull_update_bytes),
        r.pull_update_blobs
    );
    if r.dry_run {
        tracing::info!(
            "patch size (estimate, nothing written): {}",
            human_bytes(r.patch_bytes)
        );
    } else {
        tracing::info!(
            "patch size: {} written to {}",
            human_bytes(r.patch_bytes),
            out.display()
        );
    }
    tracing::info!(
        "savings: {:.1} % (patch is {} of the pull update)",
        r.savings_percent,
        pct(r.patch_bytes, r.pull_update_bytes)
    );
    log_attached(&r.bundle.attached);
    log_archives(&r.bundle.archives);
    if r.bundle.carried_whole_bytes > 0 {
        tracing::warn!(
            "{} of the patch are layers carried whole (their encoder is not modelled, see `booster inspect`)",
            human_bytes(r.bundle.carried_whole_bytes)
        );
    }
    print_layer_table(&r.bundle.layers);
    Ok(ExitCode::SUCCESS)
}

/// The summary line for jars, wars and other zip archives inside layers.
fn log_archives(t: &crate::ops::make_bundle::ArchiveTally) {
    if t.opened + t.as_bytes > 0 {
        tracing::info!("archives in layers: {}", t.describe());
    }
}

/// The summary line for what travels attached to the images.
fn log_attached(t: &crate::oci::referrers::Tally) {
    if t.count > 0 {
        tracing::info!("with the images: {}", t.describe());
    }
}

fn print_layer_table(rows: &[crate::ops::make_bundle::LayerRow]) {
    crate::outln!(
        "{:<14} {:<7} {:>10} {:>10} {:>10}  {}",
        "layer",
        "status",
        "size",
        "plain",
        "in patch",
        "rebuild method"
    );
    for l in rows {
        crate::outln!(
            "{:<14} {:<7} {:>10} {:>10} {:>10}  {}",
            l.digest.short(),
            format!("{:?}", l.status).to_lowercase(),
            human_bytes(l.compressed_size),
            human_bytes(l.uncompressed_size),
            human_bytes(l.bytes_in_bundle),
            l.method
        );
    }
}

fn cmd_apply(dir: &Path, args: &ApplyArgs, json: bool) -> anyhow::Result<ExitCode> {
    let ctx = context(dir, &args.registry)?.with_verify_keys(TrustedKeys::load(&args.verify_key)?);
    let old = list_or_ref(&args.old)?;
    let new = list_or_ref(&args.new)?;
    let dest = Destination::parse(&args.registry_dest)?;
    let rt = runtime()?;
    let r = rt.block_on(apply::apply(&ctx, &old, &new, &args.patch, &dest))?;
    if json {
        print_json(&r);
    } else {
        let uploaded: u64 = r.pushed.iter().map(|p| p.bytes_uploaded).sum();
        tracing::info!(
            "applied {}: {} images pushed to {} ({} uploaded, every digest verified)",
            args.patch.display(),
            r.pushed.len(),
            args.registry_dest,
            human_bytes(uploaded)
        );
        log_archives_rebuilt(&r.import);
    }
    Ok(ExitCode::SUCCESS)
}

/// The summary line for archives a bundle carried opened.
fn log_archives_rebuilt(report: &crate::ops::import::ImportReport) {
    if report.archives_rebuilt > 0 {
        tracing::info!(
            "{} archives (jars, wars, zips) rebuilt from their members' plain text; {} members were carried compressed",
            report.archives_rebuilt,
            report.archive_members_compressed
        );
    }
}

fn cmd_import(dir: &Path, args: &ImportArgs, json: bool) -> anyhow::Result<ExitCode> {
    if !args.verify_key.is_empty() && args.push.is_none() {
        anyhow::bail!("--verify-key checks images before they are pushed: give --push REGISTRY too");
    }
    let ctx = context(dir, &args.registry)?.with_verify_keys(TrustedKeys::load(&args.verify_key)?);
    let place = match artifact_source(&args.bundle)? {
        Some(place) => match runtime()?.block_on(artifact::resolve_for_store(&ctx, place))? {
            Some(p) => Some(p),
            None => {
                if json {
                    print_json(&serde_json::json!({"up_to_date": true, "source": args.bundle}));
                } else {
                    tracing::info!(
                        "{}: this store already holds every image of the release",
                        args.bundle
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
        },
        None => None,
    };
    let fetched = match place {
        Some(place) => {
            // Named after the reference, and kept when a fetch fails, so that a rerun
            // keeps the volumes already whole.
            let name = blake3::hash(args.bundle.as_bytes()).to_hex();
            let scratch = ctx.store.tmp_dir()?.join(format!("artifact-{}", &name[..16]));
            let bar = crate::output::bytes_bar(0, "fetching bundle");
            let f = runtime()?.block_on(artifact::fetch(&ctx, &place, &scratch, &|a, b| {
                crate::output::progress_to(&bar, a, b)
            }));
            bar.finish_and_clear();
            Some(f?)
        }
        None => None,
    };
    let path = fetched
        .as_ref()
        .map(|f| f.path.clone())
        .unwrap_or_else(|| PathBuf::from(&args.bundle));
    let bar = crate::output::bytes_bar(0, "importing");
    let report = import::import_bundle(&ctx.store, &path, &mut |what, a, b| {
        bar.set_message(what.to_string());
        crate::output::progress_to(&bar, a, b);
    });
    bar.finish_and_clear();
    if let Some(f) = &fetched {
        let _ = std::fs::remove_dir_all(&f.dir);
    }
    let mut report = report?;
    if fetched.is_some() {
        report.bundle = args.bundle.clone();
    }
    let mut pushed = Vec::new();
    if let Some(to) = &args.push {
        let dest = Destination::parse(to)?;
        let rt = runtime()?;
        pushed = rt.block_on(push_attached::push_all_to(
            &ctx,
            &report.images,
            &dest,
            &MountHints::default(),
        ))?;
    }
    if json {
        let artifact = fetched
            .as_ref()
            .map(|f| serde_json::json!({"manifest_digest": f.manifest_digest, "volumes": f.artifact.volumes.len(), "bytes_transferred": f.transferred, "labels": f.artifact.labels}));
        print_json(&serde_json::json!({"import": report, "pushed": pushed, "artifact": artifact}));
    } else if report.added_anything() {
        tracing::info!(
            "imported {}: {} images, {} new chunks ({}), {} layers, {} sections already present",
            args.bundle,
            report.images.len(),
            report.chunks_added,
            human_bytes(report.chunk_bytes_added),
            report.recipes_added,
            report.sections_skipped
        );
        log_archives_rebuilt(&report);
    } else {
        tracing::info!(
            "imported {}: nothing new (the store already had everything)",
            args.bundle
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `docker://…` and `oci:…` name bundle artifacts; anything else is a bundle file.
fn artifact_source(arg: &str) -> anyhow::Result<Option<Place>> {
    if arg.starts_with("docker://") || arg.starts_with("oci:") {
        return Ok(Some(Place::parse(arg)?));
    }
    Ok(None)
}

fn cmd_verify(args: &VerifyArgs, json: bool) -> anyhow::Result<ExitCode> {
    let reader = crate::bundle::BundleReader::open(&args.bundle)?;
    let bar = crate::output::bytes_bar(reader.total_len(), "verifying");
    reader.verify(&mut |a, _| bar.set_position(a))?;
    bar.finish_and_clear();
    let meta = crate::bundle::Meta::decode(&reader.read(0)?)
        .map_err(|e| anyhow::anyhow!("bundle {}: meta section: {e}", args.bundle.display()))?;
    // Decode every section too: a checksum only proves the bytes are what was written.
    for i in 0..reader.index.len() {
        let data = reader.read(i)?;
        let ok = match reader.kind(i) {
            crate::bundle::SectionKind::Recipes => crate::bundle::format::decode_plans(&data).map(|_| ()),
            crate::bundle::SectionKind::Payload => crate::bundle::PayloadSection::decode(&data).map(|_| ()),
            crate::bundle::SectionKind::Blobs => crate::bundle::format::decode_blobs(&data).map(|_| ()),
            crate::bundle::SectionKind::Docs => crate::bundle::format::decode_docs(&data).map(|_| ()),
            _ => Ok(()),
        };
        ok.map_err(|e| {
            anyhow::anyhow!(
                "bundle {}: {}: {e}",
                args.bundle.display(),
                reader.section_name(i)
            )
        })?;
    }
    if json {
        print_json(&serde_json::json!({
            "bundle": args.bundle, "bytes": reader.total_len(), "volumes": reader.volume_count(),
            "sections": reader.index.len(), "images": meta.images, "base": meta.base, "ok": true
        }));
    } else {
        tracing::info!(
            "{} is intact: {} in {} volume(s), {} sections, {} images, needs {} base layers",
            args.bundle.display(),
            human_bytes(reader.total_len()),
            reader.volume_count(),
            reader.index.len(),
            meta.images.len(),
            meta.base.len()
        );
        for i in &meta.images {
            crate::outln!("{}  {}", i.name, i.digest);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_export(dir: &Path, args: &ExportArgs, json: bool) -> anyhow::Result<ExitCode> {
    let ctx = context(dir, &args.registry)?;
    let since = export::Since::parse(args.since.as_deref())?;
    let new = references(&args.images)?;
    let to = args.to.as_deref().map(Place::parse).transpose()?;
    let split = match (args.split_size, &to) {
        (None, Some(_)) => Some(artifact::DEFAULT_VOLUME),
        (s, _) => s,
    };
    let opts = bundle_options(&args.bundle, split, args.dry_run);
    // Without -o the bundle is only an artifact: written in the store's temp space first.
    let (output, scratch) = match &args.output {
        Some(o) => (o.clone(), None),
        None => {
            let dir = ctx
                .store
                .tmp_dir()?
                .join(format!("export-{}", std::process::id()));
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            (dir.join("bundle.bkp"), Some(dir))
        }
    };
    let signer = args
        .signing_key
        .as_deref()
        .map(crate::oci::cosign::SigningKey::load)
        .transpose()?;
    let rt = runtime()?;
    let r = rt.block_on(export::export(
        &ctx,
        &since,
        &new,
        &output,
        &opts,
        to.as_ref(),
        signer.as_ref(),
    ));
    if let Some(dir) = &scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
    let r = r?;
    if json {
        print_json(&r);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(p) = &r.published {
        tracing::info!(
            "pushed {} ({} in {} volumes, {} uploaded); manifest {}",
            p.reference,
            human_bytes(p.bytes),
            p.volumes,
            p.blobs_uploaded,
            p.manifest_digest
        );
    }
    let b = &r.bundle;
    let volumes = if b.files.len() > 1 {
        format!(" in {} volumes", b.files.len())
    } else {
        String::new()
    };
    if args.dry_run {
        tracing::info!(
            "bundle would be {} (nothing written)",
            human_bytes(b.bundle_bytes)
        );
    } else if let Some(o) = &args.output {
        tracing::info!("wrote {}{volumes}: {}", o.display(), human_bytes(b.bundle_bytes));
    }
    tracing::info!(
        "{} images; base: {} layers the receiver has ({} needed); payload {}, metadata {}",
        b.images.len(),
        r.base_layers,
        b.base_required,
        human_bytes(b.payload_bytes),
        human_bytes(b.metadata_bytes)
    );
    log_attached(&b.attached);
    log_archives(&b.archives);
    if b.carried_whole_bytes > 0 {
        tracing::warn!(
            "{} of the bundle are layers carried whole",
            human_bytes(b.carried_whole_bytes)
        );
    }
    print_layer_table(&b.layers);
    Ok(ExitCode::SUCCESS)
}

fn cmd_inventory(dir: &Path, args: &InventoryArgs, json: bool) -> anyhow::Result<ExitCode> {
    let store = open_store(dir)?;
    let inv = inventory::Inventory::of_store(&store)?;
    inv.write(&args.output)?;
    let size = std::fs::metadata(&args.output).map(|m| m.len()).unwrap_or(0);
    if json {
        print_json(
            &serde_json::json!({"file": args.output, "bytes": size, "images": inv.images.len(), "layers": inv.contents.len()}),
        );
    } else {
        tracing::info!(
            "wrote {} ({}): {} images, {} layers",
            args.output.display(),
            human_bytes(size),
            inv.images.len(),
            inv.contents.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_gc(dir: &Path, args: &GcArgs, json: bool) -> anyhow::Result<ExitCode> {
    let store = open_store(dir)?;
    let r = gc::gc(&store, args.dry_run)?;
    if json {
        print_json(&r);
    } else {
        let verb = if r.dry_run { "would remove" } else { "removed" };
        tracing::info!(
            "{verb} {} chunks ({} stored, {} plain), {} layers, {} blob records, {} manifests/configs; {} images kept",
            r.chunks_removed,
            human_bytes(r.stored_bytes_removed),
            human_bytes(r.chunk_bytes_removed),
            r.recipes_removed,
            r.blobs_removed,
            r.docs_removed,
            r.images
        );
        if !r.dry_run {
            let rewrites = match r.reclaimed.blob_rewrites.last() {
                Some(share) => format!(
                    "; rewrote the oldest {:.0} % of the blob files for {} of deleted chunks",
                    share * 100.0,
                    human_bytes(r.reclaimed.blob_garbage_found)
                ),
                None => String::new(),
            };
            tracing::info!(
                "store on disk: {} → {} ({:.2}× what it holds, logs left out){rewrites}",
                human_bytes(r.disk_bytes_before),
                human_bytes(r.disk_bytes_after),
                r.space.ratio
            );
            if let Some(need) = r.reclaimed.short_of_space {
                tracing::warn!(
                    "{} of deleted chunks stay in blob files: rewriting them needs {} free; free space and run `booster gc` again",
                    human_bytes(r.reclaimed.blob_garbage_left),
                    human_bytes(need)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_without_store(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Completions(args) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(args.shell, &mut cmd, "booster", &mut crate::output::stdout());
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(cmd).render(&mut crate::output::stdout())?;
        }
        Command::PreflateWorker => {
            recompress::preflate_worker::serve(std::io::stdin().lock(), crate::output::stdout())?;
        }
        Command::Healthcheck(args) => {
            let addr = args.addr.unwrap_or_else(crate::serve::local_listen_addr);
            let timeout = std::time::Duration::from_secs(args.timeout.max(1));
            if let Err(e) = crate::serve::probe_health(&addr, timeout) {
                eprintln!("booster healthcheck: {addr}: {e}");
                return Ok(ExitCode::FAILURE);
            }
        }
        _ => unreachable!("only called for commands without a store"),
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_serve(dir: &Path, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let mut reg_args = args.registry_opts.clone();
    let registry = match args.registry.strip_prefix("http://") {
        Some(rest) => {
            reg_args
                .insecure_registry
                .push(rest.trim_end_matches('/').to_string());
            rest
        }
        None => args.registry.strip_prefix("https://").unwrap_or(&args.registry),
    };
    let registry = Destination::parse(registry)?;
    let token = args
        .token_file
        .as_deref()
        .map(crate::serve::read_token_file)
        .transpose()?;
    crate::serve::check_exposure(&args.listen, token.is_some(), args.no_auth)?;
    let upstreams = args
        .primary
        .iter()
        .map(|p| crate::serve::Upstream::parse(p))
        .collect::<crate::error::Result<Vec<_>>>()?;
    crate::serve::check_upstreams(&upstreams, token.is_some(), args.insecure)?;
    let signing_key = args
        .signing_key
        .as_deref()
        .map(crate::oci::cosign::SigningKey::load)
        .transpose()?
        .map(std::sync::Arc::new);
    let primary_keys = (!args.primary_key.is_empty())
        .then(|| TrustedKeys::load_for("--primary-key", &args.primary_key))
        .transpose()?
        .map(std::sync::Arc::new);
    let ctx = context(dir, &reg_args)?.with_verify_keys(TrustedKeys::load(&args.verify_key)?);
    let config = crate::serve::ServeConfig {
        registry,
        images: args.images.clone(),
        primary: upstreams,
        publish: args
            .publish
            .as_deref()
            .map(crate::serve::Upstream::parse)
            .transpose()?
            .map(|u| match u {
                crate::serve::Upstream::Bundles(r) => Ok(r),
                crate::serve::Upstream::Service(_) => Err(anyhow::anyhow!(
                    "--publish takes a registry repository (docker://REGISTRY/REPO), not a service URL"
                )),
            })
            .transpose()?,
        token,
        signing_key,
        primary_keys,
        allow_unsigned: args.allow_unsigned,
        bundle: bundle_options(&args.bundle, None, false),
        max_builds: args.max_builds,
        bundle_cache_bytes: args.bundle_cache,
        tls: match (&args.tls.tls_cert, &args.tls.tls_key) {
            (Some(cert), Some(key)) => Some(crate::serve::TlsConfig {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: args.tls.tls_client_ca.clone(),
            }),
            _ => None,
        },
        primary_tls: crate::serve::ClientTls {
            ca: args.tls.primary_ca.clone(),
            cert: args.tls.primary_client_cert.clone(),
            key: args.tls.primary_client_key.clone(),
        },
        limits: crate::serve::Limits {
            max_inventory: args.limits.max_inventory,
            inventory_memory: args.limits.inventory_memory,
            write_timeout: std::time::Duration::from_secs(args.limits.write_timeout),
            body_timeout: std::time::Duration::from_secs(args.limits.request_timeout),
            max_connections: args.limits.max_connections,
        },
    };
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    let state = crate::serve::AppState::new(ctx, config)?;
    let rt = runtime()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        tracing::info!(
            "booster serve on {scheme}://{} beside registry {}{}",
            listener.local_addr()?,
            args.registry,
            if args.primary.is_empty() {
                String::new()
            } else {
                format!(", replica of {}", args.primary.join(" then "))
            }
        );
        crate::serve::serve(listener, state, crate::serve::shutdown_signal()).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
