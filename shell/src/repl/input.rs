//! Reading SQL as it is typed: when a statement is complete (Enter runs
//! it) and what the word under the cursor is (for completion).

/// Lexical state at the end of some SQL text.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// Inside `'...'`.
    pub in_single: bool,
    /// Inside `"..."` or `` `...` ``.
    pub in_ident: bool,
    /// Inside `/* ... */`.
    pub in_block_comment: bool,
    /// Open parentheses.
    pub depth: i32,
    /// The last character outside strings and comments that is not
    /// whitespace.
    pub last_code_char: Option<char>,
}

/// Scan `text` from the start.
pub fn scan(text: &str) -> Scan {
    let mut s = Scan::default();
    let mut quote = '\0';
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if s.in_block_comment {
            if c == '*' && chars.peek() == Some(&'/') {
                chars.next();
                s.in_block_comment = false;
            }
            continue;
        }
        if s.in_single || s.in_ident {
            if c == quote {
                // A doubled quote is an escaped quote.
                if chars.peek() == Some(&quote) {
                    chars.next();
                } else {
                    s.in_single = false;
                    s.in_ident = false;
                }
            }
            continue;
        }
        match c {
            '\'' => {
                s.in_single = true;
                quote = c;
                s.last_code_char = Some(c);
            }
            '"' | '`' => {
                s.in_ident = true;
                quote = c;
                s.last_code_char = Some(c);
            }
            '-' if chars.peek() == Some(&'-') => {
                // A line comment runs to the end of the line.
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                s.in_block_comment = true;
            }
            c if c.is_whitespace() => {}
            c => {
                match c {
                    '(' => s.depth += 1,
                    ')' => s.depth -= 1,
                    _ => {}
                }
                s.last_code_char = Some(c);
            }
        }
    }
    s
}

/// Whether the shell should run `text` now (Enter) or keep reading lines.
/// Shell commands (`\q`, `help`, ...) are complete on their own line; SQL
/// needs a `;` outside strings, comments and parentheses.
pub fn is_complete(text: &str) -> bool {
    let trimmed = text.trim();
    if trimmed.is_empty() || is_shell_command(trimmed) {
        return true;
    }
    let s = scan(text);
    !s.in_single
        && !s.in_ident
        && !s.in_block_comment
        && s.depth <= 0
        && s.last_code_char == Some(';')
}

/// `\x ...`, `help`, `quit`, `exit` (with or without a trailing `;`).
pub fn is_shell_command(trimmed: &str) -> bool {
    let t = trimmed.trim_end_matches(';').trim();
    t.starts_with('\\') || matches!(t.to_ascii_lowercase().as_str(), "help" | "quit" | "exit")
}

/// Start of the identifier-like word that ends at byte `pos` (letters,
/// digits, `_`, `.`, `-` inside option keys are part of a word).
pub fn word_start(line: &str, pos: usize) -> usize {
    line[..pos]
        .char_indices()
        .rev()
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '-'))
        .map(|(i, c)| i + c.len_utf8())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_end_with_a_semicolon_outside_strings() {
        assert!(is_complete("SELECT 1;"));
        assert!(is_complete("SELECT 1; SELECT 2;  "));
        assert!(!is_complete("SELECT 1"));
        assert!(!is_complete("SELECT 'a;"));
        assert!(is_complete("SELECT 'a;';"));
        assert!(is_complete("SELECT 'it''s';"));
        assert!(!is_complete("SELECT (1;"));
        assert!(is_complete("SELECT 1; -- done"));
        assert!(is_complete("SELECT 1; -- done\n"));
        assert!(!is_complete("SELECT 1 /* ; */"));
        assert!(!is_complete("SELECT \"a;\""));
        assert!(is_complete("\\q"));
        assert!(is_complete("help"));
        assert!(is_complete("   "));
    }

    #[test]
    fn words_for_completion() {
        let line = "SELECT bids.pr";
        assert_eq!(&line[word_start(line, line.len())..], "bids.pr");
        let line = "WITH ('connector' = 'file";
        assert_eq!(&line[word_start(line, line.len())..], "file");
        assert_eq!(word_start("", 0), 0);
    }
}
