//! `netreach completions` and `netreach man`: generated from the one flag definition
//! ([`crate::cli::Cli`]), so they cannot drift from `--help`.
//!
//! Both render into memory and then write once through a handle: the generators would
//! otherwise write (and fail) piecemeal, and a closed pipe must come back as an error that
//! `main` counts as success, never as a panic.

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;
use clap_mangen::Man;

use crate::cli::{Cli, ManArgs};
use crate::{Failure, Outcome};

/// `netreach completions SHELL`.
pub fn completions(shell: clap_complete::Shell) -> Outcome {
    let mut text = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "netreach", &mut text);
    write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// `netreach man [COMMAND]`, `netreach man --dir DIR`.
pub fn man(args: &ManArgs) -> Outcome {
    let pages = pages();
    if let Some(dir) = &args.dir {
        return install(&pages, dir);
    }
    let name = match &args.page {
        Some(sub) => format!("netreach-{sub}"),
        None => "netreach".to_owned(),
    };
    let page = pages
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| Failure::input(format!("no man page {name}")))?;
    let mut text = Vec::new();
    page.1.render(&mut text)?;
    write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// Every page: netreach's own, then one per subcommand (`netreach-wait-online`), by name. The
/// top page's SUBCOMMANDS section names exactly these.
fn pages() -> Vec<(String, Man)> {
    // Built, so each subcommand knows its display name (`netreach-status`); without the
    // `help` subcommand, which has no page of its own.
    let mut top = Cli::command().disable_help_subcommand(true);
    top.build();
    let mut pages = Vec::new();
    let mut todo = vec![top];
    while let Some(cmd) = todo.pop() {
        todo.extend(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
        let name = cmd
            .get_display_name()
            .unwrap_or_else(|| cmd.get_name())
            .to_owned();
        // The source line names the package, not the subcommand.
        let source = format!("netreach {}", env!("CARGO_PKG_VERSION"));
        pages.push((name, Man::new(cmd).source(source)));
    }
    pages.sort_by(|a, b| a.0.cmp(&b.0));
    pages
}

/// Writes each page as `DIR/NAME.1`, creating nothing but the files.
fn install(pages: &[(String, Man)], dir: &Path) -> Outcome {
    if !dir.is_dir() {
        return Err(Failure::input(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    for (_, page) in pages {
        let path = dir.join(page.get_filename());
        let mut text = Vec::new();
        page.render(&mut text)?;
        std::fs::write(&path, text)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to stdout and flushes; a closed pipe comes back as `BrokenPipe`.
fn write_stdout(bytes: &[u8]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()
}
