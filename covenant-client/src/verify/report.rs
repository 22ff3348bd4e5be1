//! How a [`VerifyReport`] reads: one line per check, for `cql verify` and
//! for apps that log it. `{}` shows at most [`SHOWN_BLOCKS`] block lines
//! (the first and last ones); `{:#}` shows every block.

use std::fmt;

use super::{BlockCheck, VerifyReport};

/// Block lines `{}` shows before eliding the middle ones.
pub(crate) const SHOWN_BLOCKS: usize = 20;

fn short(hex: &str) -> &str {
    hex.get(..16).unwrap_or(hex)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl fmt::Display for BlockCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "block {} (height {}) {}…: ok — signed by miner {}…, merkle root over {} and {}",
            self.count,
            self.height,
            short(&self.hash.to_hex()),
            short(&self.producer.to_string()),
            plural(self.writes, "write", "writes"),
            plural(self.reads, "read", "reads"),
        )?;
        if self.yours > 0 {
            write!(f, " ({} yours)", self.yours)?;
        }
        if self.parent_checked {
            if self.count == 0 {
                f.write_str(", first block (no parent)")?;
            } else {
                write!(f, ", parent link to block {}", self.count - 1)?;
            }
        } else {
            f.write_str(", checked on its own")?;
        }
        if self.writes_proved > 0 {
            write!(
                f,
                ", {} proved",
                plural(
                    self.writes_proved,
                    "acknowledged write",
                    "acknowledged writes"
                )
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "database {} (head from miner {})",
            self.database.to_dsn(),
            self.miner
        )?;
        let Some((from, to)) = self.range else {
            writeln!(f, "the database has no block yet: nothing to check")?;
            return writeln!(
                f,
                "acknowledged writes: {} remembered, none in a block yet",
                self.writes_acknowledged
            );
        };
        writeln!(
            f,
            "blocks {from}..={to}: {} checked — for this database, sealed and signed by one of its \
             miners, merkle root recomputed from the entries, every request's signature, parent links",
            self.blocks.len()
        )?;
        let n = self.blocks.len();
        let elide = !f.alternate() && n > SHOWN_BLOCKS;
        let half = SHOWN_BLOCKS / 2;
        for (i, b) in self.blocks.iter().enumerate() {
            if elide && i == half {
                writeln!(
                    f,
                    "  … {} more blocks ok (`{{:#}}` / `cql verify -all` lists them) …",
                    n - SHOWN_BLOCKS
                )?;
            }
            if elide && i >= half && i < n - half {
                continue;
            }
            writeln!(f, "  {b}")?;
        }
        for b in &self.others {
            writeln!(f, "  outside the range: {b}")?;
        }
        if let Some(t) = &self.trusted {
            writeln!(
                f,
                "trusted head block {} {}: still in the chain; the head extends it",
                t.count, t.hash
            )?;
        }
        let unsealed = if self.writes_unsealed == 0 {
            String::new()
        } else {
            format!(
                ", {} not in a block yet (the miner has {} awaiting the next block)",
                self.writes_unsealed,
                plural(
                    usize::try_from(self.pending_at_miner).unwrap_or(usize::MAX),
                    "write",
                    "writes"
                )
            )
        };
        writeln!(
            f,
            "acknowledged writes: {} remembered, {} proved in blocks (merkle path to the block's \
             root, same answer recorded){unsealed}",
            self.writes_acknowledged,
            self.proofs.len()
        )?;
        if let Some(h) = &self.head {
            writeln!(f, "verified head: block {} {}", h.count, h.hash)?;
        }
        Ok(())
    }
}
