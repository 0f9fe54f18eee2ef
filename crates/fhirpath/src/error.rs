//! The crate's error types: what goes wrong while reading or compiling an expression, and what
//! goes wrong while evaluating one.

use std::fmt;

/// Where in the expression source a problem is: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

impl Position {
    /// The position of byte `offset` in `source`.
    pub(crate) fn of(source: &str, offset: usize) -> Position {
        let mut line = 1;
        let mut column = 1;
        for (i, c) in source.char_indices() {
            if i >= offset {
                break;
            }
            if c == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        Position { line, column }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Which stage rejected an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// The text is not FHIRPath (an unfinished comment, a dangling operator...).
    Syntax,
    /// The text parses, but means nothing: an unknown function, a wrong number of arguments, an
    /// element that the context type does not have, a function applied to the wrong type.
    Semantic,
}

/// An expression that could not be compiled, with the place it went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind_text} error at {position}: {message}", kind_text = match self.kind { ParseErrorKind::Syntax => "syntax", ParseErrorKind::Semantic => "semantic" })]
pub struct ParseError {
    pub kind: ParseErrorKind,
    pub position: Position,
    pub message: String,
}

impl ParseError {
    pub(crate) fn syntax(source: &str, offset: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            kind: ParseErrorKind::Syntax,
            position: Position::of(source, offset),
            message: message.into(),
        }
    }

    pub(crate) fn semantic(source: &str, offset: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            kind: ParseErrorKind::Semantic,
            position: Position::of(source, offset),
            message: message.into(),
        }
    }
}

/// Evaluation failed. These are the user's errors that FHIRPath defines as errors (a singleton
/// expected and several items found, an operator applied to the wrong types...), plus what a
/// hook reported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// The expression does something FHIRPath forbids on this input.
    #[error("{0}")]
    Invalid(String),
    /// A hook (resolver, terminology, profiles) failed.
    #[error("{0}")]
    Hook(String),
    /// The evaluation spent its budget of steps (a loop without end, a collection or string
    /// that doubles at every step...) and was stopped.
    #[error("expression too costly: evaluation stopped after {limit} steps")]
    TooCostly { limit: u64 },
}

pub(crate) fn invalid<T>(message: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError::Invalid(message.into()))
}
