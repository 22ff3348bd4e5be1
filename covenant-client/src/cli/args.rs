//! Accepting the seed's single-dash long flags (`-miner`, `-config`,
//! `-wait-tx-confirm`) on top of clap, which only knows `--name`.
//!
//! Before clap parses, [`normalize_args`] rewrites `-name` and `-name=value`
//! to `--name` / `--name=value` when `name` is longer than one character and
//! is a long flag of the subcommand being parsed (or a global one). Anything
//! else — short flags, values, positionals, everything after `--` — is left
//! untouched, so `--name` keeps working too.

use std::ffi::OsString;

use clap::Command;

/// Rewrites single-dash long flags in `argv` (program name first) for `cmd`.
pub fn normalize_args(cmd: &Command, argv: Vec<OsString>) -> Vec<OsString> {
    let mut cmd = cmd.clone();
    // Building propagates global flags (and help/version) into every subcommand.
    cmd.build();
    let mut current = &cmd;
    let mut out = Vec::with_capacity(argv.len());
    let mut args = argv.into_iter();
    if let Some(program) = args.next() {
        out.push(program);
    }
    let mut skip_value = false;
    let mut only_positionals = false;
    for arg in args {
        if only_positionals || skip_value {
            skip_value = false;
            out.push(arg);
            continue;
        }
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            only_positionals = true;
            out.push(arg);
            continue;
        }
        if let Some(long) = text.strip_prefix("--") {
            let (name, has_value) = split_value(long);
            skip_value = !has_value && takes_value(current, name);
            out.push(arg);
            continue;
        }
        if let Some(single) = text.strip_prefix('-') {
            let (name, has_value) = split_value(single);
            if name.chars().count() > 1 && find_long(current, name).is_some() {
                skip_value = !has_value && takes_value(current, name);
                out.push(OsString::from(format!("-{text}")));
                continue;
            }
            out.push(arg);
            continue;
        }
        if let Some(sub) = current.find_subcommand(text) {
            current = sub;
        }
        out.push(arg);
    }
    out
}

fn split_value(flag: &str) -> (&str, bool) {
    match flag.split_once('=') {
        Some((name, _)) => (name, true),
        None => (flag, false),
    }
}

fn find_long<'a>(cmd: &'a Command, name: &str) -> Option<&'a clap::Arg> {
    cmd.get_arguments().find(|a| {
        a.get_long() == Some(name)
            || a.get_all_aliases()
                .is_some_and(|aliases| aliases.contains(&name))
    })
}

fn takes_value(cmd: &Command, name: &str) -> bool {
    find_long(cmd, name).is_some_and(|a| a.get_action().takes_values())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction};

    fn cmd() -> Command {
        Command::new("cql")
            .arg(
                Arg::new("password")
                    .long("password")
                    .global(true)
                    .action(ArgAction::Set),
            )
            .subcommand(
                Command::new("generate")
                    .arg(Arg::new("miner").long("miner").action(ArgAction::Set))
                    .arg(
                        Arg::new("with-password")
                            .long("with-password")
                            .action(ArgAction::SetTrue),
                    )
                    .arg(Arg::new("dir")),
            )
    }

    fn norm(args: &[&str]) -> Vec<String> {
        let argv = args.iter().map(OsString::from).collect();
        normalize_args(&cmd(), argv)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn single_dash_long_flags_become_double_dash() {
        assert_eq!(
            norm(&[
                "cql",
                "generate",
                "-miner",
                "1.2.3.4:5",
                "-with-password",
                "d"
            ]),
            [
                "cql",
                "generate",
                "--miner",
                "1.2.3.4:5",
                "--with-password",
                "d"
            ]
        );
        assert_eq!(
            norm(&["cql", "generate", "-miner=1.2.3.4:5", "-password", "x"]),
            ["cql", "generate", "--miner=1.2.3.4:5", "--password", "x"]
        );
        // Global flags before the subcommand too.
        assert_eq!(
            norm(&["cql", "-password", "x", "generate"]),
            ["cql", "--password", "x", "generate"]
        );
    }

    #[test]
    fn everything_else_is_untouched() {
        // Double dash, short flags, unknown names, values that look like flags, after `--`.
        for args in [
            &["cql", "generate", "--miner", "h:1"][..],
            &["cql", "generate", "-h"],
            &["cql", "generate", "-bogus"],
            &["cql", "-miner", "generate"],
            &["cql", "generate", "--", "-miner"],
        ] {
            let expected: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            assert_eq!(norm(args), expected, "{args:?}");
        }
        // A value that happens to look like a flag name stays a value.
        assert_eq!(
            norm(&["cql", "generate", "-miner", "-with-password"]),
            ["cql", "generate", "--miner", "-with-password"]
        );
    }
}
