//! Driving the real `sluice` binary in a pseudo-terminal, as a person
//! would: shared by the shell's interactive tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use rexpect::reader::Options;
use rexpect::session::{spawn_with_options, PtySession};

/// Generous: the binary is a debug build and CI machines are small.
pub const TIMEOUT_MS: u64 = 30_000;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("shell/ is inside the repository")
        .to_path_buf()
}

/// Start the shell with `home` as its home (history lives there).
pub fn shell(home: &Path) -> PtySession {
    shell_with(home, &[])
}

pub fn shell_with(home: &Path, args: &[&str]) -> PtySession {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.args(args)
        .current_dir(repo_root())
        .env("HOME", home)
        .env_remove("SLUICE_HISTORY")
        .env_remove("SLUICE_PAGER")
        // Long results go through the pager; `cat` pages without waiting
        // for keys.
        .env("PAGER", "cat")
        .env("TERM", "xterm");
    let options = Options::new()
        .timeout_ms(Some(TIMEOUT_MS))
        .strip_ansi_escape_codes(true);
    let mut p = spawn_with_options(cmd, options).expect("the shell starts in a pty");
    p.exp_string("Type help for commands").expect("banner");
    prompt(&mut p);
    p
}

/// Type text and press Enter (a terminal sends CR), as a person would.
pub fn type_line(p: &mut PtySession, line: &str) {
    press(p, line);
    press(p, "\r");
}

/// Send keys and make sure they reach the shell.
pub fn press(p: &mut PtySession, keys: &str) {
    p.send(keys).expect("send keys");
    p.flush().expect("flush keys");
}

/// Wait for the prompt; what was printed before it.
pub fn prompt(p: &mut PtySession) -> String {
    p.exp_string("sluice> ").expect("a prompt")
}

/// Wait for the summary of a query that gave exactly `n` rows (not a
/// count merely ending in `n`).
pub fn rows_summary(p: &mut PtySession, n: usize) {
    p.exp_regex(&format!(r"\b{n} row\(s\) in "))
        .unwrap_or_else(|e| panic!("a summary of {n} row(s): {e}"));
}

/// Leave with Ctrl-D and check the process ends cleanly.
pub fn exit(mut p: PtySession) {
    p.send_control('d').expect("Ctrl-D");
    p.exp_string("Bye.").expect("goodbye");
    p.exp_eof().expect("the shell exits");
}
