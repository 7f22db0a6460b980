//! The stream processor's SQL, as Fluent Bit reads it (`src/stream_processor/parser/sql.l`,
//! `sql.y`): keywords are case-insensitive, strings are single-quoted (`''` is a quote),
//! identifiers may hold dots (`kubernetes.pod`), and a condition's `AND`, `OR` and `NOT` have no
//! precedence of their own — each takes everything to its right, so `a AND b OR c` is
//! `a AND (b OR c)` and `NOT a AND b` is `NOT (a AND b)`, as Fluent Bit's grammar resolves them.
//!
//! Supported: `CREATE STREAM name [WITH (tag='…')] AS SELECT … ;` and a bare `SELECT … ;`,
//! selecting `*`, keys (with `['sub']` subkeys and `AS alias`), `NOW()`, `UNIX_TIMESTAMP()`,
//! `RECORD_TAG()` and `RECORD_TIME()`, `FROM TAG:'pattern'` or `FROM STREAM:name`, and a
//! `WHERE` condition. Aggregations, windows, `GROUP BY`, `LIMIT` and snapshots are refused with
//! what to do instead.

use std::fmt;

/// One parsed task.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// `CREATE STREAM name`: the stream its results go to (none: a bare `SELECT`, whose
    /// results Fluent Bit prints to its standard output).
    pub stream: Option<String>,
    /// `WITH (tag='…')`: the tag of the results.
    pub tag: Option<String>,
    /// What each result record holds.
    pub keys: Vec<SelectKey>,
    /// Which records the task reads.
    pub source: Source,
    /// `WHERE`: which of them it keeps.
    pub condition: Option<Expr>,
    /// `condition` mixes `AND` and `OR` without parentheses (worth a warning).
    pub mixed_logic: bool,
}

/// One entry of the `SELECT` list.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectKey {
    /// `*`: every key of the record.
    All,
    /// `key['sub']… [AS alias]`.
    Key {
        name: String,
        subkeys: Vec<String>,
        alias: Option<String>,
    },
    /// `NOW()`, `UNIX_TIMESTAMP()`, `RECORD_TAG()`, `RECORD_TIME()` `[AS alias]`.
    Function {
        function: Function,
        alias: Option<String>,
    },
}

/// A function of the `SELECT` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// Local time now, `%Y-%m-%d %H:%M:%S`.
    Now,
    /// Seconds since the epoch now.
    UnixTimestamp,
    /// The record's tag.
    RecordTag,
    /// The record's time, fractional seconds.
    RecordTime,
}

impl Function {
    /// The key Fluent Bit gives the result when there is no alias.
    pub fn default_key(self) -> &'static str {
        match self {
            Function::Now => "NOW()",
            Function::UnixTimestamp => "UNIX_TIMESTAMP()",
            Function::RecordTag => "RECORD_TAG()",
            Function::RecordTime => "RECORD_TIME()",
        }
    }
}

/// `FROM …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `TAG:'pattern'`: records whose tag matches (Fluent Bit's `Match` wildcards).
    Tag(String),
    /// `STREAM:name`: the results of the task that creates stream `name`.
    Stream(String),
}

/// A `WHERE` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A record key, with subkeys.
    Key { name: String, subkeys: Vec<String> },
    /// A literal.
    Literal(Literal),
    /// `@record.contains(key)`.
    Contains { name: String, subkeys: Vec<String> },
    /// `@record.time()`.
    RecordTime,
    /// `left op right`.
    Compare(Box<Expr>, Comparison, Box<Expr>),
    /// `NOT e`.
    Not(Box<Expr>),
    /// `a AND b`.
    And(Box<Expr>, Box<Expr>),
    /// `a OR b`.
    Or(Box<Expr>, Box<Expr>),
    /// A bare key or literal used as a condition: true when it is a true boolean, a positive
    /// number or a string.
    Truthy(Box<Expr>),
}

/// A literal of a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

/// A comparison operator (`!=` is `NOT (a = b)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Eq,
    Lt,
    Lte,
    Gt,
    Gte,
}

/// Why a statement was refused: the message and the character where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    /// What is wrong and what to do.
    pub message: String,
    /// Character offset in the statement.
    pub at: usize,
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at character {})", self.message, self.at + 1)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    /// `STREAM:` or `TAG:`, upper-cased.
    SourceKind(String),
    /// `@record`.
    Record,
    Str(String),
    Int(i64),
    Float(f64),
    Symbol(&'static str),
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Word(w) => write!(f, "`{w}`"),
            Token::SourceKind(k) => write!(f, "`{k}:`"),
            Token::Record => write!(f, "`@record`"),
            Token::Str(s) => write!(f, "'{s}'"),
            Token::Int(i) => write!(f, "{i}"),
            Token::Float(x) => write!(f, "{x}"),
            Token::Symbol(s) => write!(f, "`{s}`"),
        }
    }
}

const SYMBOLS: [&str; 15] = [
    "!=", "<>", "<=", ">=", "<", ">", "*", ",", "=", "(", ")", "[", "]", ".", ";",
];

fn lex(text: &str) -> Result<Vec<(Token, usize)>, SqlError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let err = |message: String, at: usize| SqlError { message, at };
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(err("a string is not closed with `'`".into(), start)),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        s.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        s.push(c);
                        i += 1;
                    }
                }
            }
            tokens.push((Token::Str(s), start));
            continue;
        }
        let negative_number = c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit());
        if c.is_ascii_digit() || negative_number {
            i += 1;
            while chars.get(i).is_some_and(|d| d.is_ascii_digit()) {
                i += 1;
            }
            let is_float =
                chars.get(i) == Some(&'.') && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit());
            if is_float {
                i += 1;
                while chars.get(i).is_some_and(|d| d.is_ascii_digit()) {
                    i += 1;
                }
            }
            let number: String = chars[start..i].iter().collect();
            let token = if is_float {
                number.parse().map(Token::Float).ok()
            } else {
                number.parse().map(Token::Int).ok()
            };
            let token =
                token.ok_or_else(|| err(format!("number {number} is out of range"), start))?;
            tokens.push((token, start));
            continue;
        }
        if c == '@' {
            i += 1;
            while chars.get(i).is_some_and(|c| c.is_ascii_alphabetic()) {
                i += 1;
            }
            let word: String = chars[start + 1..i].iter().collect();
            if !word.eq_ignore_ascii_case("record") {
                return Err(err(
                    format!(
                        "unknown `@{word}`; the record functions are @record.contains(key) and @record.time()"
                    ),
                    start,
                ));
            }
            tokens.push((Token::Record, start));
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            i += 1;
            while chars
                .get(i)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let upper = word.to_ascii_uppercase();
            if chars.get(i) == Some(&':') && (upper == "STREAM" || upper == "TAG") {
                i += 1;
                tokens.push((Token::SourceKind(upper), start));
            } else {
                tokens.push((Token::Word(word), start));
            }
            continue;
        }
        let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
        let Some(symbol) = SYMBOLS.iter().find(|s| rest.starts_with(**s)) else {
            return Err(err(format!("unexpected character `{c}`"), start));
        };
        i += symbol.chars().count();
        tokens.push((Token::Symbol(symbol), start));
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    pos: usize,
    end: usize,
    mixed_logic: bool,
}

const AGGREGATE_ADVICE: &str = "aggregations (COUNT, AVG, SUM, MIN, MAX, TIMESERIES_FORECAST), windows and GROUP BY are not supported; select the records (SELECT * … WHERE …) into a stream and aggregate at the destination (e.g. CloudWatch Logs Insights or metric filters), or in a WASM output plugin";

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(t, _)| t)
    }

    fn at(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |(_, at)| *at)
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, SqlError> {
        Err(SqlError {
            message: message.into(),
            at: self.at(),
        })
    }

    fn found(&self) -> String {
        self.peek()
            .map_or("the end of the statement".into(), |t| t.to_string())
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let yes = self.is_word(word);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn expect_word(&mut self, word: &str) -> Result<(), SqlError> {
        if self.eat_word(word) {
            Ok(())
        } else {
            self.error(format!("expected {word}, found {}", self.found()))
        }
    }

    fn eat_symbol(&mut self, symbol: &str) -> bool {
        let yes = matches!(self.peek(), Some(Token::Symbol(s)) if *s == symbol);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn expect_symbol(&mut self, symbol: &str) -> Result<(), SqlError> {
        if self.eat_symbol(symbol) {
            Ok(())
        } else {
            self.error(format!("expected `{symbol}`, found {}", self.found()))
        }
    }

    fn identifier(&mut self, what: &str) -> Result<String, SqlError> {
        match self.peek() {
            Some(Token::Word(w)) => {
                let w = w.clone();
                self.pos += 1;
                Ok(w)
            }
            _ => self.error(format!("expected {what}, found {}", self.found())),
        }
    }

    fn string(&mut self, what: &str) -> Result<String, SqlError> {
        match self.peek() {
            Some(Token::Str(s)) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            _ => self.error(format!(
                "expected {what} in single quotes, found {}",
                self.found()
            )),
        }
    }

    fn statement(&mut self) -> Result<Query, SqlError> {
        let (mut stream, mut tag) = (None, None);
        if self.eat_word("create") {
            if self.is_word("snapshot") {
                return self.error("CREATE SNAPSHOT is not supported; send the records to an output and read them there");
            }
            self.expect_word("stream")?;
            stream = Some(self.identifier("the stream's name")?);
            if self.eat_word("with") {
                self.expect_symbol("(")?;
                loop {
                    let key = self.identifier("a property, e.g. tag")?;
                    self.expect_symbol("=")?;
                    let value = self.string("the property's value")?;
                    if key.eq_ignore_ascii_case("tag") {
                        tag = Some(value);
                    } else {
                        self.pos -= 3;
                        return self.error(format!(
                            "unknown stream property `{key}`; the property is tag, e.g. WITH (tag='logs.debug')"
                        ));
                    }
                    if !self.eat_symbol(",") {
                        break;
                    }
                }
                self.expect_symbol(")")?;
            }
            self.expect_word("as")?;
        } else if self.is_word("flush") {
            return self.error("FLUSH SNAPSHOT is not supported; send the records to an output and read them there");
        }
        self.expect_word("select")?;
        let keys = self.select_keys()?;
        self.expect_word("from")?;
        let source = match self.peek().cloned() {
            Some(Token::SourceKind(kind)) => {
                self.pos += 1;
                if kind == "TAG" {
                    Source::Tag(self.string("the tag pattern, e.g. TAG:'app*'")?)
                } else {
                    Source::Stream(self.identifier("the stream's name")?)
                }
            }
            _ => {
                return self.error(format!(
                    "expected TAG:'pattern' or STREAM:name after FROM, found {}",
                    self.found()
                ));
            }
        };
        if self.is_word("window") {
            return self.error(AGGREGATE_ADVICE);
        }
        let condition = if self.eat_word("where") {
            Some(self.condition()?)
        } else {
            None
        };
        if self.is_word("group") {
            return self.error(AGGREGATE_ADVICE);
        }
        if self.is_word("limit") {
            return self.error(
                "LIMIT is not supported (Fluent Bit applies it to snapshots only); remove it",
            );
        }
        self.eat_symbol(";");
        if self.peek().is_some() {
            return self.error(format!(
                "unexpected {} after the statement; one statement per Exec",
                self.found()
            ));
        }
        Ok(Query {
            stream,
            tag,
            keys,
            source,
            condition,
            mixed_logic: self.mixed_logic,
        })
    }

    fn alias(&mut self) -> Result<Option<String>, SqlError> {
        if self.eat_word("as") {
            Ok(Some(self.identifier("the alias")?))
        } else {
            Ok(None)
        }
    }

    fn subkeys(&mut self) -> Result<Vec<String>, SqlError> {
        let mut subkeys = Vec::new();
        while self.eat_symbol("[") {
            subkeys.push(self.string("the subkey")?);
            self.expect_symbol("]")?;
        }
        Ok(subkeys)
    }

    fn select_keys(&mut self) -> Result<Vec<SelectKey>, SqlError> {
        let mut keys = Vec::new();
        loop {
            if self.eat_symbol("*") {
                keys.push(SelectKey::All);
            } else {
                let name = self.identifier("`*` or a key")?;
                let upper = name.to_ascii_uppercase();
                if matches!(self.peek(), Some(Token::Symbol("("))) {
                    let function = match upper.as_str() {
                        "NOW" => Function::Now,
                        "UNIX_TIMESTAMP" => Function::UnixTimestamp,
                        "RECORD_TAG" => Function::RecordTag,
                        "RECORD_TIME" => Function::RecordTime,
                        "COUNT" | "AVG" | "SUM" | "MIN" | "MAX" | "TIMESERIES_FORECAST" => {
                            self.pos -= 1;
                            return self.error(AGGREGATE_ADVICE);
                        }
                        _ => {
                            self.pos -= 1;
                            return self.error(format!(
                                "unknown function `{name}`; the functions are NOW(), UNIX_TIMESTAMP(), RECORD_TAG() and RECORD_TIME()"
                            ));
                        }
                    };
                    self.expect_symbol("(")?;
                    self.expect_symbol(")")?;
                    let alias = self.alias()?;
                    keys.push(SelectKey::Function { function, alias });
                } else {
                    let subkeys = self.subkeys()?;
                    let alias = self.alias()?;
                    keys.push(SelectKey::Key {
                        name,
                        subkeys,
                        alias,
                    });
                }
            }
            if !self.eat_symbol(",") {
                return Ok(keys);
            }
        }
    }

    /// `unary [(AND | OR) condition]`, right-grouped as Fluent Bit's grammar.
    fn condition(&mut self) -> Result<Expr, SqlError> {
        let left = self.unary()?;
        if self.eat_word("and") {
            let right = self.condition()?;
            self.note_mix(&right, true);
            Ok(Expr::And(Box::new(left), Box::new(right)))
        } else if self.eat_word("or") {
            let right = self.condition()?;
            self.note_mix(&right, false);
            Ok(Expr::Or(Box::new(left), Box::new(right)))
        } else {
            Ok(left)
        }
    }

    fn note_mix(&mut self, right: &Expr, and: bool) {
        match right {
            Expr::Or(..) if and => self.mixed_logic = true,
            Expr::And(..) if !and => self.mixed_logic = true,
            _ => {}
        }
    }

    fn unary(&mut self) -> Result<Expr, SqlError> {
        if self.eat_word("not") {
            // NOT takes the whole condition to its right (Fluent Bit's grammar).
            let inner = self.condition()?;
            if matches!(inner, Expr::And(..) | Expr::Or(..)) {
                self.mixed_logic = true;
            }
            return Ok(Expr::Not(Box::new(inner)));
        }
        if self.eat_symbol("(") {
            let inner = self.condition()?;
            self.expect_symbol(")")?;
            // A parenthesised group is a unit: its inner AND/OR mix is the user's choice.
            return Ok(inner);
        }
        if let Some(literal) = self.literal() {
            return Ok(Expr::Truthy(Box::new(Expr::Literal(literal))));
        }
        let left = match self.peek() {
            Some(Token::Record) => {
                self.pos += 1;
                self.expect_symbol(".")?;
                let function = self.identifier("contains or time")?;
                self.expect_symbol("(")?;
                let expr = if function.eq_ignore_ascii_case("contains") {
                    let name = self.identifier("a key")?;
                    let subkeys = self.subkeys()?;
                    Expr::Contains { name, subkeys }
                } else if function.eq_ignore_ascii_case("time") {
                    Expr::RecordTime
                } else {
                    self.pos -= 2;
                    return self.error(format!(
                        "unknown `@record.{function}`; the record functions are @record.contains(key) and @record.time()"
                    ));
                };
                self.expect_symbol(")")?;
                expr
            }
            Some(Token::Word(_)) => {
                let name = self.identifier("a key")?;
                let subkeys = self.subkeys()?;
                if self.eat_word("is") {
                    let not = self.eat_word("not");
                    self.expect_word("null")?;
                    let is_null = Expr::Compare(
                        Box::new(Expr::Key { name, subkeys }),
                        Comparison::Eq,
                        Box::new(Expr::Literal(Literal::Null)),
                    );
                    return Ok(if not {
                        Expr::Not(Box::new(is_null))
                    } else {
                        is_null
                    });
                }
                Expr::Key { name, subkeys }
            }
            _ => {
                return self.error(format!(
                    "expected a condition (key = value, key IS NULL, @record.contains(key), NOT …, ( … )), found {}",
                    self.found()
                ));
            }
        };
        let comparison = match self.peek() {
            Some(Token::Symbol("=")) => Some((Comparison::Eq, false)),
            Some(Token::Symbol("!=" | "<>")) => Some((Comparison::Eq, true)),
            Some(Token::Symbol("<")) => Some((Comparison::Lt, false)),
            Some(Token::Symbol("<=")) => Some((Comparison::Lte, false)),
            Some(Token::Symbol(">")) => Some((Comparison::Gt, false)),
            Some(Token::Symbol(">=")) => Some((Comparison::Gte, false)),
            _ => None,
        };
        let Some((op, negate)) = comparison else {
            return Ok(match left {
                // `@record.contains(k)` alone is `@record.contains(k) = true`.
                Expr::Contains { .. } => Expr::Compare(
                    Box::new(left),
                    Comparison::Eq,
                    Box::new(Expr::Literal(Literal::Bool(true))),
                ),
                other => Expr::Truthy(Box::new(other)),
            });
        };
        self.pos += 1;
        let Some(right) = self.literal() else {
            return self.error(format!(
                "expected a value (a number, 'string', true, false or NULL) after the comparison, found {}; Fluent Bit compares a key with a value, not with another key",
                self.found()
            ));
        };
        let compare = Expr::Compare(Box::new(left), op, Box::new(Expr::Literal(right)));
        Ok(if negate {
            Expr::Not(Box::new(compare))
        } else {
            compare
        })
    }

    fn literal(&mut self) -> Option<Literal> {
        let literal = match self.peek()? {
            Token::Int(i) => Literal::Int(*i),
            Token::Float(x) => Literal::Float(*x),
            Token::Str(s) => Literal::Str(s.clone()),
            Token::Word(w) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Token::Word(w) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            Token::Word(w) if w.eq_ignore_ascii_case("null") => Literal::Null,
            _ => return None,
        };
        self.pos += 1;
        Some(literal)
    }
}

/// Parse one statement (a task's `Exec`).
pub fn parse(text: &str) -> Result<Query, SqlError> {
    let tokens = lex(text)?;
    let mut parser = Parser {
        tokens,
        pos: 0,
        end: text.chars().count(),
        mixed_logic: false,
    };
    parser.statement()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Box<Expr> {
        Box::new(Expr::Key {
            name: name.into(),
            subkeys: vec![],
        })
    }

    fn eq(name: &str, value: Literal) -> Expr {
        Expr::Compare(key(name), Comparison::Eq, Box::new(Expr::Literal(value)))
    }

    #[test]
    fn create_stream_with_tag_and_where() {
        let q = parse(
            "CREATE STREAM debug WITH (tag='logs.debug') AS SELECT * from TAG:'app*' WHERE level = 'debug';",
        )
        .unwrap();
        assert_eq!(q.stream.as_deref(), Some("debug"));
        assert_eq!(q.tag.as_deref(), Some("logs.debug"));
        assert_eq!(q.keys, vec![SelectKey::All]);
        assert_eq!(q.source, Source::Tag("app*".into()));
        assert_eq!(q.condition, Some(eq("level", Literal::Str("debug".into()))));
        assert!(!q.mixed_logic);
    }

    #[test]
    fn keys_subkeys_aliases_functions_and_stream_sources() {
        let q = parse(
            "select log AS message, kubernetes['pod']['name'], record_tag() as t, NOW() from stream:apache",
        )
        .unwrap();
        assert_eq!(q.stream, None);
        assert_eq!(q.source, Source::Stream("apache".into()));
        assert_eq!(
            q.keys,
            vec![
                SelectKey::Key {
                    name: "log".into(),
                    subkeys: vec![],
                    alias: Some("message".into())
                },
                SelectKey::Key {
                    name: "kubernetes".into(),
                    subkeys: vec!["pod".into(), "name".into()],
                    alias: None
                },
                SelectKey::Function {
                    function: Function::RecordTag,
                    alias: Some("t".into())
                },
                SelectKey::Function {
                    function: Function::Now,
                    alias: None
                },
            ]
        );
    }

    #[test]
    fn logic_groups_to_the_right_as_fluent_bit_does() {
        let q = parse("SELECT * FROM TAG:'*' WHERE a = 1 AND b = 2 OR c = 3;").unwrap();
        assert_eq!(
            q.condition.unwrap(),
            Expr::And(
                Box::new(eq("a", Literal::Int(1))),
                Box::new(Expr::Or(
                    Box::new(eq("b", Literal::Int(2))),
                    Box::new(eq("c", Literal::Int(3)))
                ))
            )
        );
        assert!(q.mixed_logic);
        let q = parse("SELECT * FROM TAG:'*' WHERE NOT a = 1 AND b = 2;").unwrap();
        assert!(
            matches!(q.condition.unwrap(), Expr::Not(inner) if matches!(*inner, Expr::And(..)))
        );
        let q = parse("SELECT * FROM TAG:'*' WHERE (a = 1 AND b = 2) OR c = 3;").unwrap();
        assert!(!q.mixed_logic, "parentheses make the grouping explicit");
    }

    #[test]
    fn comparisons_null_checks_and_record_functions() {
        let q = parse(
            "SELECT * FROM TAG:'x' WHERE a != 'it''s' AND b <> -2 AND c <= 1.5 AND d IS NOT NULL AND e IS NULL AND @record.contains(f) AND @record.time() > 10 AND g;",
        )
        .unwrap();
        let text = format!("{:?}", q.condition.unwrap());
        for part in [
            "Not(Compare(Key { name: \"a\", subkeys: [] }, Eq, Literal(Str(\"it's\"))))",
            "Not(Compare(Key { name: \"b\", subkeys: [] }, Eq, Literal(Int(-2))))",
            "Compare(Key { name: \"c\", subkeys: [] }, Lte, Literal(Float(1.5)))",
            "Not(Compare(Key { name: \"d\", subkeys: [] }, Eq, Literal(Null)))",
            "Compare(Key { name: \"e\", subkeys: [] }, Eq, Literal(Null))",
            "Compare(Contains { name: \"f\", subkeys: [] }, Eq, Literal(Bool(true)))",
            "Compare(RecordTime, Gt, Literal(Int(10)))",
            "Truthy(Key { name: \"g\", subkeys: [] })",
        ] {
            assert!(text.contains(part), "{part} not in {text}");
        }
    }

    #[test]
    fn aggregations_windows_and_snapshots_are_refused_with_advice() {
        for (sql, expect) in [
            ("SELECT COUNT(*) FROM TAG:'x';", "aggregations"),
            ("SELECT avg(size) FROM TAG:'x';", "aggregations"),
            (
                "SELECT * FROM TAG:'x' WINDOW TUMBLING (5 SECOND);",
                "windows",
            ),
            ("SELECT * FROM TAG:'x' GROUP BY a;", "GROUP BY"),
            ("SELECT * FROM TAG:'x' LIMIT 5;", "LIMIT"),
            (
                "CREATE SNAPSHOT s AS SELECT * FROM TAG:'x' LIMIT 5;",
                "SNAPSHOT",
            ),
        ] {
            let e = parse(sql).unwrap_err();
            assert!(e.message.contains(expect), "{sql}: {e}");
        }
    }

    #[test]
    fn syntax_errors_say_what_was_expected_and_where() {
        let e = parse("SELECT * FROM 'x';").unwrap_err();
        assert!(e.message.contains("TAG:'pattern' or STREAM:name"), "{e}");
        assert_eq!(e.at, 14);
        let e = parse("SELECT * FROM TAG:'x' WHERE a = b;").unwrap_err();
        assert!(e.message.contains("not with another key"), "{e}");
        let e = parse("SELECT * FROM TAG:'x' WHERE a = 'open").unwrap_err();
        assert!(e.message.contains("not closed"), "{e}");
        let e = parse("CREATE STREAM s WITH (route='x') AS SELECT * FROM TAG:'x';").unwrap_err();
        assert!(e.message.contains("unknown stream property `route`"), "{e}");
        let e = parse("SELECT * FROM TAG:'x'; SELECT 1").unwrap_err();
        assert!(e.message.contains("one statement"), "{e}");
    }
}
