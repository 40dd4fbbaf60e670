//! Bounds on how deeply a statement nests, checked on its tokens before it
//! is parsed, so parsing and planning take bounded time and stack.
//!
//! Two measures: the nesting of parentheses, brackets and `CASE ... END`
//! (each level is a level of recursion in the parser and later passes), and
//! the depth of an expression tree, where a chain of binary operators
//! (`1 + 1 + ...`) is as deep as it is long. Past either limit the
//! statement is refused with "expression nested too deeply" at the token
//! that crossed it.

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

/// Most levels of parentheses, brackets and `CASE` in one statement.
pub const MAX_NESTING: usize = 100;

/// Most levels of an expression tree, counting every operator of a chain.
pub const MAX_EXPRESSION_DEPTH: usize = 500;

/// The sqlparser recursion limit to use: well above what a statement within
/// [`MAX_NESTING`] needs, so the parser never stops (and backtracks) on it.
pub const PARSER_RECURSION_LIMIT: usize = 4 * MAX_NESTING + 64;

/// Where and why a statement nests too deeply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooDeep {
    /// The message.
    pub message: String,
    /// Index of the token that crossed the limit.
    pub token: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Group {
    Paren,
    Case,
}

/// Check `tokens` (one or more statements) against the limits.
pub fn check_nesting(tokens: &[TokenWithSpan]) -> Result<(), TooDeep> {
    // Per open group: its kind and the operators of the current operand
    // chain inside it.
    let mut stack: Vec<(Option<Group>, usize, usize)> = vec![(None, 0, 0)];
    for (i, t) in tokens.iter().enumerate() {
        match &t.token {
            Token::LParen | Token::LBracket => stack.push((Some(Group::Paren), 0, i)),
            Token::RParen | Token::RBracket if stack.len() > 1 => {
                stack.pop();
            }
            Token::SemiColon => {
                unclosed(&stack)?;
                stack.truncate(1);
            }
            Token::Comma => reset(&mut stack),
            Token::Word(w) => match w.keyword {
                Keyword::CASE => stack.push((Some(Group::Case), 0, i)),
                Keyword::END if stack.last().is_some_and(|g| g.0 == Some(Group::Case)) => {
                    stack.pop();
                }
                Keyword::AND | Keyword::OR => count_operator(&mut stack),
                // A new clause or CASE branch starts a new operand chain.
                Keyword::SELECT
                | Keyword::FROM
                | Keyword::WHERE
                | Keyword::GROUP
                | Keyword::HAVING
                | Keyword::ORDER
                | Keyword::LIMIT
                | Keyword::UNION
                | Keyword::WHEN
                | Keyword::THEN
                | Keyword::ELSE
                | Keyword::ON => reset(&mut stack),
                _ => {}
            },
            tok if is_binary_operator(tok) => count_operator(&mut stack),
            _ => {}
        }
        let nesting = stack.len() - 1;
        if nesting > MAX_NESTING {
            return Err(TooDeep {
                message: format!(
                    "expression nested too deeply: more than {MAX_NESTING} levels of \
                     parentheses or CASE"
                ),
                token: i,
            });
        }
        let depth: usize = stack.iter().map(|(_, ops, _)| ops + 1).sum();
        if depth > MAX_EXPRESSION_DEPTH {
            return Err(TooDeep {
                message: format!(
                    "expression nested too deeply: more than {MAX_EXPRESSION_DEPTH} levels \
                     (a chain of operators is as deep as it is long; split it, e.g. into \
                     sums of parts)"
                ),
                token: i,
            });
        }
    }
    unclosed(&stack)
}

/// A group still open where a statement ends: an unclosed `(` or a `CASE`
/// without `END` (found here, the parser would retry alternatives at every
/// level before giving up).
fn unclosed(stack: &[(Option<Group>, usize, usize)]) -> Result<(), TooDeep> {
    match stack.get(1) {
        Some((Some(Group::Paren), _, at)) => Err(TooDeep {
            message: "this parenthesis is never closed".into(),
            token: *at,
        }),
        Some((Some(Group::Case), _, at)) => Err(TooDeep {
            message: "this CASE has no END".into(),
            token: *at,
        }),
        _ => Ok(()),
    }
}

fn reset(stack: &mut [(Option<Group>, usize, usize)]) {
    if let Some(top) = stack.last_mut() {
        top.1 = 0;
    }
}

fn count_operator(stack: &mut [(Option<Group>, usize, usize)]) {
    if let Some(top) = stack.last_mut() {
        top.1 += 1;
    }
}

fn is_binary_operator(t: &Token) -> bool {
    matches!(
        t,
        Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::Mod
            | Token::StringConcat
            | Token::Eq
            | Token::DoubleEq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::Caret
            | Token::Ampersand
            | Token::Pipe
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::SluiceDialect;
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    fn check(sql: &str) -> Result<(), TooDeep> {
        let tokens = Tokenizer::new(&SluiceDialect, sql)
            .tokenize_with_location()
            .expect("tokenizes");
        check_nesting(&tokens)
    }

    #[test]
    fn ordinary_statements_pass() {
        check("SELECT a + b * 2, CASE WHEN a > 1 THEN (a - 1) ELSE 0 END FROM t WHERE x = 1 AND y = 2")
            .expect("fine");
        let wide = format!("SELECT {} FROM t", vec!["a + 1"; 2000].join(", "));
        check(&wide).expect("many short expressions are fine");
    }

    #[test]
    fn deep_parentheses_and_long_chains_are_refused() {
        let deep = format!("SELECT {}1{}", "(".repeat(101), ")".repeat(101));
        let e = check(&deep).expect_err("too deep");
        assert!(
            e.message.contains("100 levels of parentheses"),
            "{}",
            e.message
        );
        assert_eq!(
            e.token,
            2 + 100,
            "the 101st parenthesis (after SELECT and a space)"
        );
        let chain = format!("SELECT {}", vec!["1"; 600].join(" + "));
        let e = check(&chain).expect_err("too long");
        assert!(e.message.contains("500 levels"), "{}", e.message);
        let ok = format!("SELECT {}", vec!["1"; 400].join(" + "));
        check(&ok).expect("400 terms are fine");
    }

    #[test]
    fn unclosed_groups_are_found_where_they_open() {
        let e = check("SELECT (1 + (2)").expect_err("unclosed");
        assert_eq!(
            (e.message.as_str(), e.token),
            ("this parenthesis is never closed", 2)
        );
        let e = check("SELECT CASE WHEN a THEN 1; SELECT 1").expect_err("no END");
        assert_eq!(e.message, "this CASE has no END");
        check("SELECT CASE WHEN a THEN (1) END; SELECT 2").expect("balanced");
    }
}
