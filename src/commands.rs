//! The edge between the command line and the library: turn parsed arguments into calls,
//! print summaries. Errors become `anyhow` here and nowhere below.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::{Cli, Command, FsckArgs, IngestArgs};
use crate::ingest::{self, IngestOptions};
use crate::ops::{fsck, stats};
use crate::output::{human_bytes, print_json};
use crate::store::Store;

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let json = cli.global.json;
    let store_dir = store_dir(cli.global.store.clone())?;
    match cli.command {
        Command::Stats => cmd_stats(&store_dir, json),
        Command::Fsck(args) => cmd_fsck(&store_dir, &args, json),
        Command::Ingest(args) => cmd_ingest(&store_dir, &args, json),
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

fn open_store(dir: &Path) -> anyhow::Result<Store> {
    Ok(Store::open(dir)?)
}

fn cmd_stats(dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let store = open_store(dir)?;
    let s = stats::stats(&store)?;
    if json {
        print_json(&s);
    } else {
        println!("store        {}", dir.display());
        println!("images       {}", s.images);
        println!(
            "manifests    {} (manifests, indexes, configs)",
            s.manifests_and_configs
        );
        println!("blobs        {}", s.blobs);
        println!("layers       {} (distinct plain streams)", s.recipes);
        println!("chunks       {}", s.chunks);
        println!("logical      {}", human_bytes(s.logical_bytes));
        println!("unique       {}", human_bytes(s.unique_bytes));
        println!("stored       {} (after compression)", human_bytes(s.stored_bytes));
        println!("on disk      {}", human_bytes(s.disk_bytes));
        println!("dedup ratio  {:.2}", s.dedup_ratio);
    }
    Ok(ExitCode::SUCCESS)
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
