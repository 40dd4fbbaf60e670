//! `sluice-bench`'s command line: `--help` prints the options; a bad
//! argument is one line on stderr and a non-zero exit, never a backtrace.

use std::process::Command;

fn bench(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice-bench"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("runs sluice-bench");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_and_bad_arguments() {
    let (code, out, _) = bench(&["--help"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Usage: sluice-bench") && out.contains("--checkpoint MS"),
        "{out}"
    );
    for (args, says) in [
        (&["--bogus"][..], "unknown argument --bogus"),
        (&["--events", "many"][..], "--events"),
        (
            &["--parallelism", "0"][..],
            "--parallelism takes numbers from 1 up",
        ),
    ] {
        let (code, _, err) = bench(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(
            err.lines().count(),
            1,
            "{args:?}: one line, no backtrace: {err}"
        );
        assert!(
            err.starts_with("sluice-bench: ") && err.contains(says),
            "{err}"
        );
    }
}
