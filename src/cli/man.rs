//! `swantrail man`: the manual pages, generated from the clap definition
//! and from the documented example config, so they never drift from the
//! program they describe.
//!
//! `swantrail(1)` and one `swantrail-<command>(1)` per subcommand come from
//! clap_mangen; `swantrail.toml(5)` wraps `config/swantrail.toml` (every key,
//! commented, with its default) in a page. The packages ship what
//! `swantrail man --out-dir DIR` writes; this file must never describe an
//! option by hand.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

/// The documented example configuration, the body of `swantrail.toml(5)`.
const EXAMPLE_CONFIG: &str = include_str!("../../config/swantrail.toml");

/// Arguments of `swantrail man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// The page to print: `swantrail`, `swantrail-<command>` or `swantrail.toml`.
    #[arg(default_value = "swantrail")]
    pub page: String,
    /// Write every page (`swantrail.1`, `swantrail-run.1`, ..., `swantrail.toml.5`)
    /// into DIR instead of printing one.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// Run `swantrail man` for the program described by `command`.
pub fn man_command(args: ManArgs, command: clap::Command) -> anyhow::Result<ExitCode> {
    if let Some(dir) = args.out_dir {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        for page in pages(command) {
            let man = man_page(page);
            man.generate_to(&dir)
                .with_context(|| format!("cannot write {}", man.get_filename()))?;
        }
        let config_page = dir.join("swantrail.toml.5");
        std::fs::write(&config_page, config_page_roff())
            .with_context(|| format!("cannot write {}", config_page.display()))?;
        return Ok(ExitCode::SUCCESS);
    }
    let text = if args.page == "swantrail.toml" {
        config_page_roff()
    } else {
        let page = pages(command)
            .into_iter()
            .find(|p| p.get_display_name().unwrap_or(p.get_name()) == args.page);
        let Some(page) = page else {
            anyhow::bail!(
                "no manual page {:?}; the pages are swantrail, swantrail-<command> and swantrail.toml",
                args.page
            );
        };
        let mut roff = Vec::new();
        man_page(page)
            .render(&mut roff)
            .context("cannot render the page")?;
        String::from_utf8_lossy(&roff).into_owned()
    };
    super::write_stdout(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// The program and each of its subcommands, built so that a subcommand is
/// named `swantrail-<command>` as its page is.
fn pages(command: clap::Command) -> Vec<clap::Command> {
    let mut command = command.disable_help_subcommand(true);
    command.build();
    let mut pages: Vec<clap::Command> = command
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    pages.insert(0, command);
    pages
}

/// One page, with the program's name and version as its source (clap_mangen
/// would put the subcommand's name there).
fn man_page(command: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(command)
        .source(format!("swantrail {}", env!("CARGO_PKG_VERSION")))
        .manual("swantrail manual")
}

/// `swantrail.toml(5)`: a short description, then the example file verbatim.
fn config_page_roff() -> String {
    let mut page = String::new();
    let version = env!("CARGO_PKG_VERSION");
    page.push_str(&format!(
        ".TH swantrail.toml 5 \"\" \"swantrail {version}\" \"File Formats\"\n"
    ));
    page.push_str(".SH NAME\nswantrail.toml \\- configuration of the swantrail daemon\n");
    page.push_str(".SH SYNOPSIS\n/etc/swantrail/swantrail.toml\n");
    page.push_str(
        ".SH DESCRIPTION\n\
         \\fBswantrail run \\-\\-config\\fR reads this TOML file: where the spools and \
         checkpoints live, how snapshots become events, the sources that look at pluto \
         ([[source]]), the sinks that receive the events ([[sink]]), the daemon's own log \
         ([log]) and the Prometheus endpoint ([metrics]).\n\
         .PP\n\
         Unknown keys are errors. \\fBswantrail check\\-config\\fR \\fIFILE\\fR reports every \
         mistake with its file, line and key. Durations are strings such as \"500ms\", \"10s\", \
         \"2m\" or \"1m30s\"; sizes are a number of bytes or strings such as \"16MiB\".\n\
         .SH THE DOCUMENTED EXAMPLE\n\
         The file below is the one the package installs. Every key is shown, commented, \
         with its default value.\n\
         .PP\n.nf\n.RS 2\n",
    );
    for line in EXAMPLE_CONFIG.lines() {
        page.push_str(&roff_literal(line));
        page.push('\n');
    }
    page.push_str(".RE\n.fi\n");
    page.push_str(
        ".SH FILES\n\
         .TP\n/etc/swantrail/swantrail.toml\nthe configuration the systemd unit runs with\n\
         .TP\n/var/lib/swantrail\nthe default state_dir: spools, checkpoints, dead letters\n\
         .TP\n/var/log/swantrail/events.ndjson\nthe example's file sink\n\
         .SH SEE ALSO\n\\fBswantrail\\fR(1), \\fBswantrail\\-run\\fR(1), \\fBswantrail\\-check\\-config\\fR(1)\n",
    );
    page
}

/// One line of text shown as is inside `.nf`: backslashes escaped, and a
/// leading `.` or `'` kept from being read as a request.
fn roff_literal(line: &str) -> String {
    let escaped = line.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}
