//! `swantrail completions SHELL`: the shell completion script, generated
//! from the clap definition (clap_complete) so that it always knows every
//! subcommand and flag. The packages ship the bash, zsh and fish scripts it
//! prints; this file must never list an option by hand.

use std::process::ExitCode;

/// Arguments of `swantrail completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Print the completion script of `command` for the chosen shell.
pub fn completions_command(
    args: CompletionsArgs,
    mut command: clap::Command,
) -> anyhow::Result<ExitCode> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "swantrail", &mut script);
    super::write_stdout(&script)?;
    Ok(ExitCode::SUCCESS)
}
