//! `cql idminer`: keep mining a harder node id for an existing key, resuming
//! after the config's current nonce, and record it only if it is harder.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use covenant_core::config::Config;
use covenant_core::crypto::{Nonce, read_key_file};
use covenant_core::pow::{DEFAULT_DIFFICULTY, MAX_DIFFICULTY, PowOptions};

use super::error::CliError;
use super::{GlobalArgs, config_path, progress, prompt};

/// Arguments of `cql idminer`.
#[derive(Debug, Args)]
pub(crate) struct IdminerArgs {
    /// Config file [default: ~/.cql/config.yaml]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Leading zero bits to reach [default: one more than the current node id's]
    #[arg(long, value_name = "N")]
    difficulty: Option<u32>,
}

pub(crate) fn run(
    args: &IdminerArgs,
    global: &GlobalArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let out_err = CliError::Output;
    let path = config_path(args.config.as_deref())?;
    let mut config = Config::load(&path)?;
    let master = prompt::master_key(
        global.password.as_deref(),
        global.with_password,
        "private.key",
        false,
    )?;
    let key = read_key_file(&config.private_key_path(), master.as_bytes())?;
    let public_key = key.public_key();
    config.verify_identity(&public_key)?;

    let (current, start) = match (config.this_node_id, config.nonce) {
        (Some(id), Some(nonce)) => (Some(id.difficulty()), next_nonce(nonce)),
        _ => (None, Nonce::default()),
    };
    let difficulty = match (args.difficulty, current) {
        (Some(d), _) => d,
        (None, Some(c)) => (c + 1).min(MAX_DIFFICULTY),
        (None, None) => DEFAULT_DIFFICULTY,
    };
    if difficulty > MAX_DIFFICULTY {
        return Err(CliError::InvalidArgument {
            flag: "-difficulty",
            reason: format!("{difficulty} is more than the {MAX_DIFFICULTY} bits of a node id"),
        });
    }
    if let Some(c) = current
        && difficulty <= c
    {
        writeln!(
            out,
            "The node id already has difficulty {c}, asked for {difficulty}: nothing to mine; \
             the config is unchanged."
        )
        .map_err(out_err)?;
        return Ok(());
    }

    writeln!(out, "Generating nonce...").map_err(out_err)?;
    out.flush().map_err(out_err)?;
    let opts = PowOptions {
        difficulty,
        start,
        ..PowOptions::default()
    };
    let found = progress::mine_with_progress(&public_key, &opts)?;
    super::print_nonce(out, &found)?;
    writeln!(out, "Generated nonce.").map_err(out_err)?;
    if current.is_some_and(|c| found.difficulty <= c) {
        writeln!(
            out,
            "Not harder than the current node id; the config is unchanged."
        )
        .map_err(out_err)?;
        return Ok(());
    }
    config.set_identity(&public_key, found.nonce);
    config.save(&path)?;
    writeln!(out, "Updated config file: {}", path.display()).map_err(out_err)?;
    Ok(())
}

/// The nonce after `n`, counting `{a b c d}` as one 256-bit number (`d` lowest).
fn next_nonce(n: Nonce) -> Nonce {
    let (d, carry) = n.d.overflowing_add(1);
    let (c, carry) = n.c.overflowing_add(u64::from(carry));
    let (b, carry) = n.b.overflowing_add(u64::from(carry));
    let a = n.a.wrapping_add(u64::from(carry));
    Nonce { a, b, c, d }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_nonce_carries() {
        let n = |a, b, c, d| Nonce { a, b, c, d };
        assert_eq!(next_nonce(n(0, 0, 0, 0)), n(0, 0, 0, 1));
        assert_eq!(next_nonce(n(1, 2, 3, u64::MAX)), n(1, 2, 4, 0));
        assert_eq!(next_nonce(n(1, 2, u64::MAX, u64::MAX)), n(1, 3, 0, 0));
        assert_eq!(
            next_nonce(n(u64::MAX, u64::MAX, u64::MAX, u64::MAX)),
            n(0, 0, 0, 0)
        );
    }
}
