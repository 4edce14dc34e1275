//! What booster shows: log lines in the seed's style (`INF message key=value`) through
//! `tracing`, progress bars only on a terminal, colours only on a terminal without
//! `NO_COLOR`, and JSON documents on stdout for `--json`.

use std::io::IsTerminal;
use std::sync::OnceLock;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, format::Writer};
use tracing_subscriber::registry::LookupSpan;

/// How chatty to be: -q, default, -v, -vv.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
    Debug,
}

static PROGRESS: OnceLock<Option<MultiProgress>> = OnceLock::new();

/// The process's real stdout, kept aside: booster's own output (JSON, tables) goes there,
/// while file descriptor 1 is pointed at stderr so that a library printing debug text with
/// `println!` (preflate-rs does, on streams it cannot model) cannot corrupt `--json` output.
static REAL_STDOUT: OnceLock<std::fs::File> = OnceLock::new();

/// Keep stdout for booster's own output and send stray library prints to stderr. Call once,
/// first thing in `main`.
pub fn guard_stdout() {
    use std::os::fd::FromRawFd;
    // SAFETY: dup/dup2 on the process's standard descriptors; the duplicate is owned by the
    // File from here on.
    unsafe {
        let saved = libc::dup(1);
        if saved < 0 {
            return;
        }
        if libc::dup2(2, 1) < 0 {
            libc::close(saved);
            return;
        }
        let _ = REAL_STDOUT.set(std::fs::File::from_raw_fd(saved));
    }
}

/// Where booster's own stdout output goes.
pub fn stdout() -> Box<dyn std::io::Write> {
    match REAL_STDOUT.get() {
        Some(f) => Box::new(f),
        None => Box::new(std::io::stdout()),
    }
}

/// `println!` to booster's stdout.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!($crate::output::stdout(), $($arg)*);
    }};
}

fn use_colour() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// Set up logging and progress display for the process.
pub fn init(verbosity: Verbosity, json: bool) {
    let level = match verbosity {
        Verbosity::Quiet => Level::WARN,
        Verbosity::Normal => Level::INFO,
        Verbosity::Verbose => Level::DEBUG,
        Verbosity::Debug => Level::TRACE,
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BOOSTER_LOG").unwrap_or_else(|_| {
        // Other crates' debug output (hyper, rocksdb bindings) is noise at -v.
        let own = level.as_str().to_lowercase();
        tracing_subscriber::EnvFilter::new(format!("warn,booster={own}"))
    });
    let colour = use_colour();
    let bars = std::io::stderr().is_terminal() && verbosity != Verbosity::Quiet && !json;
    let multi = bars.then(|| {
        let m = MultiProgress::new();
        m.set_draw_target(ProgressDrawTarget::stderr_with_hz(8));
        m
    });
    let _ = PROGRESS.set(multi);
    let writer = ProgressAwareWriter;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || writer)
        .event_format(SeedFormat { colour })
        .try_init();
}

/// Log lines go through the progress bars' suspend so they never tear a bar.
#[derive(Clone, Copy)]
struct ProgressAwareWriter;

impl std::io::Write for ProgressAwareWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match PROGRESS.get().and_then(|p| p.as_ref()) {
            Some(m) => m.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

struct SeedFormat {
    colour: bool,
}

impl<S, N> FormatEvent<S, N> for SeedFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let (tag, colour) = match *event.metadata().level() {
            Level::ERROR => ("ERR", "\x1b[31m"),
            Level::WARN => ("WRN", "\x1b[33m"),
            Level::INFO => ("INF", "\x1b[32m"),
            Level::DEBUG => ("DBG", "\x1b[36m"),
            Level::TRACE => ("TRC", "\x1b[90m"),
        };
        if self.colour {
            write!(w, "{colour}{tag}\x1b[0m ")?;
        } else {
            write!(w, "{tag} ")?;
        }
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

fn bytes_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg:32!} {bar:30} {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} {eta}")
        .expect("valid template")
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg:32!} {bytes:>10} {bytes_per_sec:>12}")
        .expect("valid template")
}

/// A progress bar for `len` bytes (a spinner while the length is unknown: 0), hidden off
/// a terminal.
pub fn bytes_bar(len: u64, message: impl Into<String>) -> ProgressBar {
    let Some(Some(multi)) = PROGRESS.get() else {
        return ProgressBar::hidden();
    };
    let bar = if len > 0 {
        ProgressBar::new(len).with_style(bytes_style())
    } else {
        ProgressBar::new_spinner().with_style(spinner_style())
    };
    let bar = multi.add(bar);
    bar.set_message(message.into());
    if len == 0 {
        // A phase without byte progress yet (planning, verifying) still shows it is alive.
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
    }
    bar
}

/// Set a bar's total once it is known (a spinner becomes a bar) and its position.
pub fn progress_to(bar: &ProgressBar, done: u64, total: u64) {
    if total > 0 && bar.length() != Some(total) {
        bar.set_style(bytes_style());
        bar.set_length(total);
    }
    bar.set_position(done);
}

/// Start over on a bar for a new phase whose length is unknown.
pub fn restart_as_spinner(bar: &ProgressBar, message: impl Into<String>) {
    bar.set_style(spinner_style());
    bar.set_length(0);
    bar.set_position(0);
    bar.set_message(message.into());
}

/// A bar counting items (layers, images).
pub fn count_bar(len: u64, message: impl Into<String>) -> ProgressBar {
    let Some(Some(multi)) = PROGRESS.get() else {
        return ProgressBar::hidden();
    };
    let bar = multi.add(ProgressBar::new(len).with_style(
        ProgressStyle::with_template("{msg:32!} {bar:30} {pos}/{len} {elapsed}").expect("valid template"),
    ));
    bar.set_message(message.into());
    bar
}

/// Print a value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => crate::outln!("{s}"),
        Err(e) => tracing::error!("cannot serialise output: {e}"),
    }
}

/// `1234567` → `1.2 MB` (decimal units, as registries and the seed's summary use).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
