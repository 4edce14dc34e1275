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
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
