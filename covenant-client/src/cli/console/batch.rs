//! The non-interactive console: the SQL of `-command`, or a script on
//! stdin read line by line (so results show as statements complete). Items
//! run in order; the first failure stops the run and is returned, so the
//! exit status is non-zero. `\q` ends the script early.

use std::io::BufRead;

use super::input::{Input, Item, items};
use super::session::{Flow, Session};
use crate::cli::error::CliError;

/// Where the SQL comes from.
pub(crate) enum Source<'a> {
    /// The `-command` text.
    Text(&'a str),
    /// A script, read to its end.
    Reader(&'a mut dyn BufRead),
}

/// Runs every item of `source` on `session`; stops at the first failure.
pub(crate) fn run(session: &mut Session<'_>, source: Source<'_>) -> Result<(), CliError> {
    match source {
        Source::Text(text) => run_items(session, &items(text)).map(|_| ()),
        Source::Reader(reader) => {
            let mut input = Input::default();
            let mut line = String::new();
            loop {
                line.clear();
                let n = reader
                    .read_line(&mut line)
                    .map_err(|error| CliError::Terminal { error })?;
                if n == 0 {
                    break;
                }
                let text = line.strip_suffix('\n').unwrap_or(&line);
                let text = text.strip_suffix('\r').unwrap_or(text);
                if run_items(session, &input.line(text))? == Flow::Quit {
                    return Ok(());
                }
            }
            run_items(session, &input.finish().into_iter().collect::<Vec<_>>()).map(|_| ())
        }
    }
}

/// Runs `items` until one fails or quits; returns whether to go on.
fn run_items(session: &mut Session<'_>, items: &[Item]) -> Result<Flow, CliError> {
    for item in items {
        if session.run(item)? == Flow::Quit {
            return Ok(Flow::Quit);
        }
    }
    Ok(Flow::Continue)
}
