//! The interactive shell: rustyline line editing with a history file,
//! statements over several lines (a continuation prompt until the `;`),
//! meta-commands, Ctrl-C to clear the statement being typed and Ctrl-D to
//! leave. Errors are printed and the shell goes on. Input only: every item
//! runs through the [`Session`].

use std::path::{Path, PathBuf};

use rustyline::error::ReadlineError;
use rustyline::history::{FileHistory, History as _};
use rustyline::{Config, Editor};

use super::input::Input;
use super::session::{Flow, Session, error_text};
use super::statements::Pending;
use crate::cli::error::CliError;

/// How many entries the history file keeps.
const HISTORY_SIZE: usize = 1000;

/// The shell's prompts for one database: `name=> ` and the continuations.
struct Prompts {
    name: String,
}

impl Prompts {
    /// The prompt when the input so far waits for `pending`.
    fn for_pending(&self, pending: Pending) -> String {
        let mark = match pending {
            Pending::Nothing => '=',
            Pending::Statement => '-',
            Pending::Quote(q) => q,
            Pending::Comment => '*',
        };
        format!("{}{mark}> ", self.name)
    }
}

/// The shell's history: the editor's, loaded from and saved to `path`.
struct HistoryFile {
    path: Option<PathBuf>,
}

impl HistoryFile {
    fn load(&self, rl: &mut Editor<(), FileHistory>) {
        let Some(path) = &self.path else { return };
        match rl.load_history(path) {
            Ok(()) => {}
            Err(ReadlineError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!(
                "warning: cannot read the history file {}: {}",
                path.display(),
                error_text(&e)
            ),
        }
    }

    fn save(&self, rl: &mut Editor<(), FileHistory>) {
        let Some(path) = &self.path else { return };
        if let Err(e) = rl.save_history(path) {
            eprintln!(
                "warning: cannot write the history file {}: {}",
                path.display(),
                error_text(&e)
            );
        }
    }
}

fn terminal(e: ReadlineError) -> CliError {
    CliError::Terminal {
        error: match e {
            ReadlineError::Io(error) => error,
            other => std::io::Error::other(other.to_string()),
        },
    }
}

/// Runs the shell on `session` until `\q` or Ctrl-D. `name` starts the
/// prompt; `history` is the history file (none: no history kept).
pub(crate) fn run(
    session: &mut Session<'_>,
    name: &str,
    history: Option<&Path>,
) -> Result<(), CliError> {
    let config = Config::builder()
        .max_history_size(HISTORY_SIZE)
        .map_err(terminal)?
        .history_ignore_dups(true)
        .map_err(terminal)?
        .history_ignore_space(true)
        .auto_add_history(false)
        .build();
    let mut rl: Editor<(), FileHistory> = Editor::with_config(config).map_err(terminal)?;
    let history = HistoryFile {
        path: history.map(Path::to_path_buf),
    };
    history.load(&mut rl);
    let prompts = Prompts {
        name: name.to_string(),
    };
    let mut input = Input::default();
    // The lines of the entry being typed, for the history (one entry per statement).
    let mut entry = String::new();
    let result = loop {
        let line = match rl.readline(&prompts.for_pending(input.pending())) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted | ReadlineError::Signal(_)) => {
                input.clear();
                entry.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break Ok(()),
            Err(e) => break Err(terminal(e)),
        };
        if !entry.is_empty() {
            entry.push('\n');
        }
        entry.push_str(&line);
        // A paste may bring several lines at once; each is a line of input.
        let items: Vec<_> = line
            .split('\n')
            .flat_map(|l| input.line(l.strip_suffix('\r').unwrap_or(l)))
            .collect();
        if input.pending() == Pending::Nothing {
            if !entry.trim().is_empty() {
                // A refused entry (a duplicate) is not an error.
                let _ = rl.history_mut().add_owned(std::mem::take(&mut entry));
            }
            entry.clear();
        }
        let mut quit = false;
        for item in &items {
            match session.run(item) {
                Ok(Flow::Continue) => {}
                Ok(Flow::Quit) => {
                    quit = true;
                    break;
                }
                Ok(Flow::Interrupted) => eprintln!(
                    "Cancelled: stopped waiting for the answer (a write may still be applied)."
                ),
                Err(e) => eprintln!("ERROR: {}", error_text(&e)),
            }
        }
        if quit {
            break Ok(());
        }
    };
    history.save(&mut rl);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_show_what_the_input_waits_for() {
        let p = Prompts {
            name: "0a1b2c3d".into(),
        };
        assert_eq!(p.for_pending(Pending::Nothing), "0a1b2c3d=> ");
        assert_eq!(p.for_pending(Pending::Statement), "0a1b2c3d-> ");
        assert_eq!(p.for_pending(Pending::Quote('\'')), "0a1b2c3d'> ");
        assert_eq!(p.for_pending(Pending::Comment), "0a1b2c3d*> ");
    }
}
