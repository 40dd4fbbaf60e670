//! Updating results in the interactive shell, driven as a person would:
//! the live table updates rows in place (changed rows marked), a bounded
//! result ends as its final table, and `format = changelog` prints the
//! row kinds.

mod pty;

use pty::{exit, prompt, rows_summary, shell, type_line};

const VIEW: &str = "CREATE VIEW clicks AS SELECT * FROM \
    (VALUES (1, 'a'), (2, 'b'), (1, 'c'), (3, 'a'), (1, 'd')) AS t(user_id, url);";

#[test]
fn a_bounded_updating_result_ends_as_its_final_table() {
    let home = tempfile::tempdir().expect("home");
    let mut p = shell(home.path());
    type_line(&mut p, VIEW);
    p.exp_string("View 'clicks' created").expect("created");
    prompt(&mut p);
    type_line(
        &mut p,
        "SELECT user_id, COUNT(*) AS n FROM clicks GROUP BY user_id;",
    );
    for row in [r"\| 1 +\| 3 +\|", r"\| 2 +\| 1 +\|", r"\| 3 +\| 1 +\|"] {
        p.exp_regex(row).expect("a row of the final table");
    }
    prompt(&mut p);
    type_line(&mut p, "SET format = changelog;");
    prompt(&mut p);
    type_line(&mut p, "SELECT COUNT(*) AS n FROM clicks;");
    p.exp_string("+I[5]").expect("the changelog's one insert");
    rows_summary(&mut p, 1);
    prompt(&mut p);
    exit(p);
}

#[test]
fn a_live_updating_result_changes_rows_in_place() {
    let home = tempfile::tempdir().expect("home");
    let mut p = shell(home.path());
    type_line(
        &mut p,
        "CREATE TABLE gen (region INT) WITH ('connector' = 'datagen', \
         'rows-per-second' = '200', 'fields.region.min' = '1', 'fields.region.max' = '3');",
    );
    p.exp_string("Table 'gen' created").expect("created");
    prompt(&mut p);
    type_line(
        &mut p,
        "SELECT region, COUNT(*) AS n FROM gen GROUP BY region;",
    );
    p.exp_string("running").expect("status line");
    // A changed row carries the mark in the first column; the state is on
    // the status line.
    p.exp_regex(r"\| \* +\| [123] +\| \d+ +\|")
        .expect("a changed row, marked");
    p.exp_regex(r"state \d+ keys")
        .expect("state on the status line");
    p.send_control('c').expect("Ctrl-C");
    p.exp_string("Cancelled:").expect("cancelled");
    prompt(&mut p);
    exit(p);
}
