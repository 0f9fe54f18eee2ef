//! Turns tokens into a syntax tree, by precedence climbing over the FHIRPath operator table.

use crate::error::ParseError;
use crate::lexer::{Spanned, Token, tokenize};

/// A syntax tree node with the byte offset it starts at (for error messages).
#[derive(Debug, Clone)]
pub(crate) struct Syntax {
    pub offset: usize,
    pub kind: SyntaxKind,
}

#[derive(Debug, Clone)]
pub(crate) enum SyntaxKind {
    /// `{}`
    Empty,
    Boolean(bool),
    String(String),
    Number(String),
    DateTime(String),
    /// A number and a unit: a UCUM code in quotes, or a calendar keyword such as `days`.
    Quantity {
        number: String,
        unit: String,
    },
    Constant(String),
    This,
    IndexVariable,
    Total,
    /// An identifier at the start of a path: an element of `$this`, or a type name.
    Identifier(String),
    /// `target.name`
    Member(Box<Syntax>, String),
    /// `target.name(args)`, or `name(args)` with no target.
    Call {
        target: Option<Box<Syntax>>,
        name: String,
        args: Vec<Syntax>,
    },
    Index(Box<Syntax>, Box<Syntax>),
    Negate(Box<Syntax>),
    Binary(BinaryOp, Box<Syntax>, Box<Syntax>),
    /// `x is T` / `x as T`; the type is a possibly qualified name (`FHIR.Patient`).
    Is(Box<Syntax>, String),
    As(Box<Syntax>, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    Implies,
    Or,
    Xor,
    And,
    In,
    Contains,
    Equal,
    Equivalent,
    NotEqual,
    NotEquivalent,
    LessOrEqual,
    Less,
    Greater,
    GreaterOrEqual,
    Union,
    Plus,
    Minus,
    Concatenate,
    Multiply,
    Divide,
    Div,
    Mod,
}

/// The calendar duration keywords that may follow a number.
pub(crate) const CALENDAR_UNITS: [&str; 16] = [
    "year",
    "years",
    "month",
    "months",
    "week",
    "weeks",
    "day",
    "days",
    "hour",
    "hours",
    "minute",
    "minutes",
    "second",
    "seconds",
    "millisecond",
    "milliseconds",
];

/// Limits that keep compiling and evaluating (which recurse over the tree) well inside a
/// thread's stack: the longest R4 expression has about 325 tokens.
const MAX_TOKENS: usize = 1_000;
const MAX_NESTING: u32 = 64;
/// The deepest tree accepted; `a + b + c` is as deep as it has operators. The deepest R4
/// expression is far shallower, and the compiler and evaluator recurse once per level.
const MAX_DEPTH: usize = 128;

/// The depth of a tree (its size is bounded by `MAX_TOKENS`, so recursing here is safe).
fn depth(syntax: &Syntax) -> usize {
    1 + match &syntax.kind {
        SyntaxKind::Member(target, _) | SyntaxKind::Negate(target) => depth(target),
        SyntaxKind::Is(target, _) | SyntaxKind::As(target, _) => depth(target),
        SyntaxKind::Index(a, b) | SyntaxKind::Binary(_, a, b) => depth(a).max(depth(b)),
        SyntaxKind::Call { target, args, .. } => target
            .iter()
            .map(|t| depth(t))
            .chain(args.iter().map(depth))
            .max()
            .unwrap_or(0),
        _ => 0,
    }
}

pub(crate) fn parse(source: &str) -> Result<Syntax, ParseError> {
    let tokens = tokenize(source)?;
    if tokens.len() > MAX_TOKENS {
        return Err(ParseError::syntax(
            source,
            tokens[MAX_TOKENS].offset,
            format!("the expression is too long (more than {MAX_TOKENS} tokens)"),
        ));
    }
    let mut parser = Parser {
        source,
        tokens,
        at: 0,
        nesting: 0,
    };
    let tree = parser.expression(0)?;
    if depth(&tree) > MAX_DEPTH {
        return Err(ParseError::syntax(
            source,
            0,
            format!("the expression nests too deeply (more than {MAX_DEPTH} levels)"),
        ));
    }
    if parser.peek() != &Token::End {
        return Err(parser.error_here("unexpected text after the end of the expression"));
    }
    Ok(tree)
}

struct Parser<'s> {
    source: &'s str,
    tokens: Vec<Spanned>,
    at: usize,
    /// How many expressions enclose the current one (parentheses, arguments, indexers).
    nesting: u32,
}

/// Binding power of each binary operator level, weakest first.
fn binary_op(token: &Token) -> Option<(u8, BinaryOp)> {
    let op = match token {
        Token::Identifier(word) => match word.as_str() {
            "implies" => (1, BinaryOp::Implies),
            "or" => (2, BinaryOp::Or),
            "xor" => (2, BinaryOp::Xor),
            "and" => (3, BinaryOp::And),
            "in" => (4, BinaryOp::In),
            "contains" => (4, BinaryOp::Contains),
            "div" => (10, BinaryOp::Div),
            "mod" => (10, BinaryOp::Mod),
            _ => return None,
        },
        Token::Symbol(symbol) => match *symbol {
            "=" => (5, BinaryOp::Equal),
            "~" => (5, BinaryOp::Equivalent),
            "!=" => (5, BinaryOp::NotEqual),
            "!~" => (5, BinaryOp::NotEquivalent),
            "<=" => (6, BinaryOp::LessOrEqual),
            "<" => (6, BinaryOp::Less),
            ">" => (6, BinaryOp::Greater),
            ">=" => (6, BinaryOp::GreaterOrEqual),
            "|" => (7, BinaryOp::Union),
            "+" => (9, BinaryOp::Plus),
            "-" => (9, BinaryOp::Minus),
            "&" => (9, BinaryOp::Concatenate),
            "*" => (10, BinaryOp::Multiply),
            "/" => (10, BinaryOp::Divide),
            _ => return None,
        },
        _ => return None,
    };
    Some(op)
}

/// `is` and `as` sit between `|` and `+`.
const TYPE_LEVEL: u8 = 8;

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.tokens[self.at].token
    }

    fn offset(&self) -> usize {
        self.tokens[self.at].offset
    }

    fn next(&mut self) -> Spanned {
        let token = self.tokens[self.at].clone();
        if self.at + 1 < self.tokens.len() {
            self.at += 1;
        }
        token
    }

    fn error_here(&self, message: &str) -> ParseError {
        let found = match self.peek() {
            Token::End => "the end of the expression".to_string(),
            token => format!("{token:?}"),
        };
        ParseError::syntax(
            self.source,
            self.offset(),
            format!("{message} (found {found})"),
        )
    }

    fn expect(&mut self, symbol: &'static str) -> Result<(), ParseError> {
        if self.peek() == &Token::Symbol(symbol) {
            self.next();
            Ok(())
        } else {
            Err(self.error_here(&format!("expected `{symbol}`")))
        }
    }

    fn expression(&mut self, min_level: u8) -> Result<Syntax, ParseError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(self.error_here("the expression nests too deeply"));
        }
        let result = self.expression_inner(min_level);
        self.nesting -= 1;
        result
    }

    fn expression_inner(&mut self, min_level: u8) -> Result<Syntax, ParseError> {
        let mut left = self.unary()?;
        loop {
            let offset = self.offset();
            if let Token::Identifier(word) = self.peek()
                && (word == "is" || word == "as")
                && TYPE_LEVEL > min_level
            {
                let is = word == "is";
                self.next();
                let type_name = self.qualified_name()?;
                let target = Box::new(left);
                left = Syntax {
                    offset,
                    kind: if is {
                        SyntaxKind::Is(target, type_name)
                    } else {
                        SyntaxKind::As(target, type_name)
                    },
                };
                continue;
            }
            let Some((level, op)) = binary_op(self.peek()) else {
                break;
            };
            if level <= min_level {
                break;
            }
            self.next();
            let right = self.expression(level)?;
            left = Syntax {
                offset,
                kind: SyntaxKind::Binary(op, Box::new(left), Box::new(right)),
            };
        }
        Ok(left)
    }

    fn qualified_name(&mut self) -> Result<String, ParseError> {
        let mut name = self.identifier()?;
        while self.peek() == &Token::Symbol(".") {
            if !matches!(
                self.tokens.get(self.at + 1).map(|t| &t.token),
                Some(Token::Identifier(_) | Token::Delimited(_))
            ) {
                break;
            }
            self.next();
            name.push('.');
            name.push_str(&self.identifier()?);
        }
        Ok(name)
    }

    fn identifier(&mut self) -> Result<String, ParseError> {
        match self.peek().clone() {
            Token::Identifier(name) | Token::Delimited(name) => {
                self.next();
                Ok(name)
            }
            _ => Err(self.error_here("expected an identifier")),
        }
    }

    fn unary(&mut self) -> Result<Syntax, ParseError> {
        let offset = self.offset();
        match self.peek() {
            Token::Symbol("-") => {
                self.next();
                let operand = self.unary()?;
                Ok(Syntax {
                    offset,
                    kind: SyntaxKind::Negate(Box::new(operand)),
                })
            }
            Token::Symbol("+") => {
                self.next();
                self.unary()
            }
            _ => self.postfix(),
        }
    }

    fn postfix(&mut self) -> Result<Syntax, ParseError> {
        let mut target = self.term()?;
        loop {
            let offset = self.offset();
            match self.peek() {
                Token::Symbol(".") => {
                    self.next();
                    let name_offset = self.offset();
                    let name = self.identifier()?;
                    if self.peek() == &Token::Symbol("(") {
                        let args = self.arguments()?;
                        target = Syntax {
                            offset: name_offset,
                            kind: SyntaxKind::Call {
                                target: Some(Box::new(target)),
                                name,
                                args,
                            },
                        };
                    } else {
                        target = Syntax {
                            offset: name_offset,
                            kind: SyntaxKind::Member(Box::new(target), name),
                        };
                    }
                }
                Token::Symbol("[") => {
                    self.next();
                    let index = self.expression(0)?;
                    self.expect("]")?;
                    target = Syntax {
                        offset,
                        kind: SyntaxKind::Index(Box::new(target), Box::new(index)),
                    };
                }
                _ => return Ok(target),
            }
        }
    }

    fn arguments(&mut self) -> Result<Vec<Syntax>, ParseError> {
        self.expect("(")?;
        let mut args = Vec::new();
        if self.peek() == &Token::Symbol(")") {
            self.next();
            return Ok(args);
        }
        loop {
            args.push(self.expression(0)?);
            match self.peek() {
                Token::Symbol(",") => {
                    self.next();
                }
                Token::Symbol(")") => {
                    self.next();
                    return Ok(args);
                }
                _ => return Err(self.error_here("expected `,` or `)` in the argument list")),
            }
        }
    }

    fn term(&mut self) -> Result<Syntax, ParseError> {
        let offset = self.offset();
        let spanned = self.next();
        let kind = match spanned.token {
            Token::Symbol("(") => {
                let inner = self.expression(0)?;
                self.expect(")")?;
                return Ok(inner);
            }
            Token::Symbol("{") => {
                self.expect("}")?;
                SyntaxKind::Empty
            }
            Token::String(text) => SyntaxKind::String(text),
            Token::DateTime(text) => SyntaxKind::DateTime(text),
            Token::Constant(name) => SyntaxKind::Constant(name),
            Token::Special(name) => match name.as_str() {
                "this" => SyntaxKind::This,
                "index" => SyntaxKind::IndexVariable,
                _ => SyntaxKind::Total,
            },
            Token::Number(number) => match self.peek().clone() {
                Token::String(unit) => {
                    self.next();
                    SyntaxKind::Quantity { number, unit }
                }
                Token::Identifier(word) if CALENDAR_UNITS.contains(&word.as_str()) => {
                    self.next();
                    SyntaxKind::Quantity { number, unit: word }
                }
                _ => SyntaxKind::Number(number),
            },
            Token::Identifier(name) if name == "true" || name == "false" => {
                SyntaxKind::Boolean(name == "true")
            }
            Token::Identifier(name) | Token::Delimited(name) => {
                if self.peek() == &Token::Symbol("(") {
                    let args = self.arguments()?;
                    SyntaxKind::Call {
                        target: None,
                        name,
                        args,
                    }
                } else {
                    SyntaxKind::Identifier(name)
                }
            }
            Token::End => {
                self.at = self.tokens.len() - 1;
                return Err(ParseError::syntax(
                    self.source,
                    offset,
                    "unexpected end of the expression",
                ));
            }
            other => {
                return Err(ParseError::syntax(
                    self.source,
                    offset,
                    format!("unexpected {other:?}"),
                ));
            }
        };
        Ok(Syntax { offset, kind })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(source: &str) -> String {
        fn walk(s: &Syntax) -> String {
            match &s.kind {
                SyntaxKind::Binary(op, l, r) => format!("({:?} {} {})", op, walk(l), walk(r)),
                SyntaxKind::Negate(x) => format!("(- {})", walk(x)),
                SyntaxKind::Is(x, t) => format!("(is {} {t})", walk(x)),
                SyntaxKind::Member(x, n) => format!("{}.{n}", walk(x)),
                SyntaxKind::Call { target, name, args } => format!(
                    "{}{name}({})",
                    target
                        .as_ref()
                        .map(|t| format!("{}.", walk(t)))
                        .unwrap_or_default(),
                    args.iter().map(walk).collect::<Vec<_>>().join(", ")
                ),
                SyntaxKind::Identifier(n) => n.clone(),
                SyntaxKind::Number(n) => n.clone(),
                SyntaxKind::Boolean(b) => b.to_string(),
                other => format!("{other:?}"),
            }
        }
        walk(&parse(source).unwrap())
    }

    #[test]
    fn unary_minus_binds_looser_than_invocation() {
        assert_eq!(shape("-1.convertsToInteger()"), "(- 1.convertsToInteger())");
    }

    #[test]
    fn is_binds_tighter_than_comparison_and_union() {
        assert_eq!(shape("1 > 2 is Boolean"), "(Greater 1 (is 2 Boolean))");
        assert_eq!(shape("1 | 1 is Integer"), "(Union 1 (is 1 Integer))");
    }

    #[test]
    fn arithmetic_follows_the_usual_precedence() {
        assert_eq!(shape("1+2*3+4"), "(Plus (Plus 1 (Multiply 2 3)) 4)");
    }

    #[test]
    fn a_dangling_operator_is_a_syntax_error_with_a_column() {
        let err = parse("2 + 2 /").unwrap_err();
        assert_eq!(err.kind, crate::ParseErrorKind::Syntax);
        assert_eq!(err.position.column, 8);
    }
}
