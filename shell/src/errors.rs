//! Error messages with the offending line and a caret under the position.

use sluice_common::Error;

/// Render an error for the user. When it carries a position inside `source`
/// (the text that was run), the line is shown with a caret under the column.
pub fn render(e: &anyhow::Error, source: Option<&str>) -> String {
    let message = format!("{e}");
    let Some(Error::At { location, .. }) = e.downcast_ref::<Error>() else {
        return message;
    };
    let (Some(src), Ok(line), Ok(column)) = (
        source,
        usize::try_from(location.line),
        usize::try_from(location.column),
    ) else {
        return message;
    };
    let Some(text) = line.checked_sub(1).and_then(|i| src.lines().nth(i)) else {
        return message;
    };
    // Tabs keep their width so the caret lines up.
    let pad: String = text
        .chars()
        .take(column.saturating_sub(1))
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let gutter = format!("{line} | ");
    format!(
        "{message}\n{gutter}{text}\n{}{pad}^",
        " ".repeat(gutter.len())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_common::SourceLocation;

    #[test]
    fn caret_under_the_column() {
        let e = Error::plan("No field named nope").at(SourceLocation {
            file: None,
            line: 2,
            column: 8,
        });
        let src = "CREATE TABLE t (a INT);\nSELECT nope FROM t;";
        assert_eq!(
            render(&anyhow::Error::new(e), Some(src)),
            "line 2, column 8: plan error: No field named nope\n\
             2 | SELECT nope FROM t;\n           ^"
        );
    }

    #[test]
    fn without_a_position_only_the_message() {
        let e = anyhow::Error::new(Error::plan("bad"));
        assert_eq!(render(&e, Some("x")), "plan error: bad");
    }
}
