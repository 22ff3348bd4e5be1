//! The seed's single-dash long flags (`-config`) for the node binaries:
//! rewritten to clap's `--config` before parsing.

use std::ffi::OsString;

/// Turns `-name` / `-name=value` into `--name...` for every argument longer
/// than one letter after the dash; `--x`, `-h` and plain values pass through.
pub fn normalize(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    args.into_iter()
        .enumerate()
        .map(|(i, a)| {
            if i == 0 {
                return a;
            }
            match a.to_str() {
                Some(s) if s.starts_with('-') && !s.starts_with("--") && s.len() > 2 => {
                    let name = &s[1..];
                    if name.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
                        OsString::from(format!("-{s}"))
                    } else {
                        a
                    }
                }
                _ => a,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_dash_long_flags_become_double() {
        let v: Vec<OsString> = ["cqld", "-config", "x.yaml", "-h", "--log=1", "-5"]
            .iter()
            .map(OsString::from)
            .collect();
        let out = normalize(v);
        let out: Vec<&str> = out.iter().map(|s| s.to_str().unwrap()).collect();
        assert_eq!(out, ["cqld", "--config", "x.yaml", "-h", "--log=1", "-5"]);
    }
}
