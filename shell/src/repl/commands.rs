//! Shell commands: `help`/`\?`, `\q`, `\i file`, `\d [name]`, `\timing`.

use sluice_engine::Session;

use super::Flow;

const HELP: &str = "\
Statements end with ';' and may span lines. Enter inside an open string or
parenthesis continues the statement. Tab completes names; Ctrl-R searches
history; Ctrl-C cancels a running query (or the line being typed); Ctrl-D exits.

SQL
  CREATE TABLE t (...) WITH (...)   declare a source or sink (datagen, filesystem,
                                    memory, blackhole); SHOW CREATE TABLE t
  CREATE VIEW v AS SELECT ...       DROP TABLE t / DROP VIEW v
  SELECT ...                        live results; bounded inputs end by themselves
  INSERT INTO t SELECT ...          starts a background job
  SHOW TABLES, DESCRIBE t           EXPLAIN [ANALYZE] SELECT ...
  SHOW JOBS, STOP JOB n             background jobs and their counters
  SET                               list settings; SET key = value; RESET [key]
                                    (format = table|changelog|csv|json, max-rows = n|auto,
                                     timing = on|off)

Commands
  help, \\?        this text
  \\q, quit, exit  leave (running jobs are waited for or stopped)
  \\i file.sql     run a file's statements
  \\d              list tables and views;  \\d name  describe one
  \\timing         toggle printing each statement's time
";

/// Run a shell command line (already known to be one).
pub(crate) async fn run(session: &Session, line: &str) -> Flow {
    let line = line.trim().trim_end_matches(';').trim();
    let (cmd, arg) = match line.split_once(char::is_whitespace) {
        Some((c, a)) => (c, a.trim()),
        None => (line, ""),
    };
    match cmd.to_ascii_lowercase().as_str() {
        "\\q" | "quit" | "exit" => return Flow::Quit,
        "help" | "\\?" | "\\h" => eprint!("{HELP}"),
        "\\i" if arg.is_empty() => eprintln!("\\i needs a file name"),
        "\\i" => match std::fs::read_to_string(arg) {
            Ok(text) => {
                // Relative paths in the file are relative to its folder.
                let folder = std::path::Path::new(arg)
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .map(std::path::Path::to_path_buf);
                let before = session.set_base_dir(folder);
                let flow = Box::pin(super::run_input(session, &text, Some(arg))).await;
                session.set_base_dir(before);
                return flow;
            }
            Err(e) => eprintln!("cannot read {arg}: {e}"),
        },
        "\\d" if arg.is_empty() => {
            return Box::pin(super::run_input(session, "SHOW TABLES;", None)).await;
        }
        "\\d" => {
            let sql = format!("DESCRIBE {arg};");
            return Box::pin(super::run_input(session, &sql, None)).await;
        }
        "\\timing" => {
            let on = session.settings().get("timing").ok().as_deref() == Some("on");
            let next = if on { "off" } else { "on" };
            match session.settings().set("timing", next) {
                Ok(_) => eprintln!("Timing is {next}."),
                Err(e) => eprintln!("{e}"),
            }
        }
        other => eprintln!("unknown command {other}; type help for the list"),
    }
    Flow::Continue
}
