//! Lexer and parser for Go's `text/template` syntax, following the structure of Go's
//! `text/template/parse` so that what parses, what fails and the failure messages match:
//! trim markers, comments, keywords, `else if`/`else with`, `define`/`block`, variable
//! declaration and assignment, field chains, parenthesised pipelines.

use std::fmt;
use std::sync::Arc;

use crate::Error;
use crate::value::Value;

/// How deeply control structures and parenthesised pipelines may nest: a bound on the
/// parser's recursion so that hostile input cannot overflow the stack.
const MAX_PARSE_DEPTH: usize = 200;

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Text,
    LeftDelim,
    RightDelim,
    Space,
    Identifier,
    Keyword,
    Bool,
    Field,
    Variable,
    Dot,
    Nil,
    Number,
    String,
    RawString,
    CharConstant,
    Pipe,
    LeftParen,
    RightParen,
    Declare,
    Assign,
    Char,
    Eof,
    Error,
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    val: String,
    pos: usize,
    line: usize,
}

impl fmt::Display for Token {
    /// Go's `item.String()`, used in "unexpected ..." messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::Eof => f.write_str("EOF"),
            Kind::Error => f.write_str(&self.val),
            Kind::Keyword | Kind::Nil => write!(f, "<{}>", self.val),
            _ if self.val.chars().count() > 10 => {
                let short: String = self.val.chars().take(10).collect();
                write!(f, "{}...", crate::gofmt::go_quote(&short, false))
            }
            _ => f.write_str(&crate::gofmt::go_quote(&self.val, false)),
        }
    }
}

const KEYWORDS: [&str; 10] = [
    "block", "break", "continue", "define", "else", "end", "if", "range", "template", "with",
];

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Splits a template into tokens. Go's lexer runs concurrently with the parser; here the
/// whole input is lexed first, stopping at the first error token.
struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    line: usize,
    tokens: Vec<Token>,
    paren_depth: usize,
    trim_next_text: bool,
}

impl<'a> Lexer<'a> {
    fn lex(src: &'a str) -> Vec<Token> {
        let mut l = Lexer {
            src,
            pos: 0,
            line: 1,
            tokens: Vec::new(),
            paren_depth: 0,
            trim_next_text: false,
        };
        l.run();
        l.tokens
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn emit(&mut self, kind: Kind, start: usize) {
        let val = self.src[start..self.pos].to_string();
        let line = self.line;
        self.line += val.matches('\n').count();
        self.tokens.push(Token {
            kind,
            val,
            pos: start,
            line,
        });
    }

    fn emit_val(&mut self, kind: Kind, val: String, pos: usize) {
        self.tokens.push(Token {
            kind,
            val,
            pos,
            line: self.line,
        });
    }

    /// Records an error token; lexing stops.
    fn error(&mut self, msg: String) {
        let pos = self.pos;
        self.emit_val(Kind::Error, msg, pos);
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn at_right_delim(&self) -> Option<(bool, usize)> {
        let r = self.rest();
        if r.starts_with("}}") {
            return Some((false, 2));
        }
        let mut chars = r.chars();
        if let (Some(c), Some('-')) = (chars.next(), chars.next())
            && is_space(c)
            && r[c.len_utf8() + 1..].starts_with("}}")
        {
            return Some((true, c.len_utf8() + 3));
        }
        None
    }

    fn run(&mut self) {
        loop {
            // Text up to the next left delimiter.
            let start = self.pos;
            let next = self.rest().find("{{").map(|i| self.pos + i);
            let end = next.unwrap_or(self.src.len());
            let mut text = &self.src[start..end];
            let trim_left = next.is_some_and(|n| {
                let after = &self.src[n + 2..];
                let mut cs = after.chars();
                matches!((cs.next(), cs.next()), (Some('-'), Some(c)) if is_space(c))
            });
            if self.trim_next_text {
                text = text.trim_start_matches(is_space);
                self.trim_next_text = false;
            }
            if trim_left {
                text = text.trim_end_matches(is_space);
            }
            let skipped_lines = self.src[start..end].matches('\n').count();
            if !text.is_empty() {
                self.tokens.push(Token {
                    kind: Kind::Text,
                    val: text.to_string(),
                    pos: start,
                    line: self.line,
                });
            }
            self.line += skipped_lines;
            self.pos = end;
            let Some(n) = next else {
                let p = self.pos;
                self.emit_val(Kind::Eof, String::new(), p);
                return;
            };
            // The left delimiter, with its trim marker.
            self.pos = n + 2;
            if trim_left {
                self.pos += 2;
            }
            self.line += self.src[n..self.pos].matches('\n').count();
            // A comment is the whole action.
            let after_ws = self.rest();
            if after_ws.starts_with("/*") {
                let Some(close) = after_ws.find("*/") else {
                    self.error("unclosed comment".into());
                    return;
                };
                let comment_end = self.pos + close + 2;
                self.line += self.src[self.pos..comment_end].matches('\n').count();
                self.pos = comment_end;
                match self.at_right_delim() {
                    Some((trim, len)) => {
                        self.pos += len;
                        self.trim_next_text = trim;
                        continue;
                    }
                    None => {
                        self.error("comment ends before closing delimiter".into());
                        return;
                    }
                }
            }
            self.emit_val(Kind::LeftDelim, "{{".into(), n);
            if !self.lex_action() {
                return;
            }
        }
    }

    /// Lexes inside an action up to and including the right delimiter. False on error.
    fn lex_action(&mut self) -> bool {
        loop {
            if let Some((trim, len)) = self.at_right_delim() {
                if self.paren_depth > 0 {
                    self.error("unclosed left paren".into());
                    return false;
                }
                let start = self.pos + len - 2;
                self.line += self.src[self.pos..self.pos + len].matches('\n').count();
                self.pos += len;
                self.emit_val(Kind::RightDelim, "}}".into(), start);
                self.trim_next_text = trim;
                return true;
            }
            let start = self.pos;
            let Some(c) = self.peek() else {
                self.error("unclosed action".into());
                return false;
            };
            self.pos += c.len_utf8();
            match c {
                c if is_space(c) => {
                    while let Some(c) = self.peek() {
                        if !is_space(c) || self.at_right_delim().is_some() {
                            break;
                        }
                        self.pos += c.len_utf8();
                    }
                    self.emit(Kind::Space, start);
                }
                '=' => self.emit(Kind::Assign, start),
                ':' => {
                    if self.peek() != Some('=') {
                        self.error("expected :=".into());
                        return false;
                    }
                    self.pos += 1;
                    self.emit(Kind::Declare, start);
                }
                '|' => self.emit(Kind::Pipe, start),
                '"' | '\'' => {
                    let (kind, what) = if c == '"' {
                        (Kind::String, "unterminated quoted string")
                    } else {
                        (Kind::CharConstant, "unterminated character constant")
                    };
                    loop {
                        match self.peek() {
                            Some('\\') => {
                                self.pos += 1;
                                match self.peek() {
                                    Some(e) if e != '\n' => self.pos += e.len_utf8(),
                                    _ => {
                                        self.error(what.into());
                                        return false;
                                    }
                                }
                            }
                            Some('\n') | None => {
                                self.error(what.into());
                                return false;
                            }
                            Some(e) => {
                                self.pos += e.len_utf8();
                                if e == c {
                                    break;
                                }
                            }
                        }
                    }
                    self.emit(kind, start);
                }
                '`' => {
                    let Some(close) = self.rest().find('`') else {
                        self.error("unterminated raw quoted string".into());
                        return false;
                    };
                    self.pos += close + 1;
                    self.emit(Kind::RawString, start);
                }
                '$' | '.' => {
                    if c == '.' && self.peek().is_some_and(|d| d.is_ascii_digit()) {
                        self.pos = start;
                        if !self.lex_number() {
                            return false;
                        }
                        continue;
                    }
                    while let Some(a) = self.peek() {
                        if !is_alnum(a) {
                            break;
                        }
                        self.pos += a.len_utf8();
                    }
                    if !self.at_terminator() {
                        let bad = self.peek().unwrap_or(' ');
                        self.error(format!("bad character {}", char_desc(bad)));
                        return false;
                    }
                    let kind = match (c, self.pos - start) {
                        ('.', 1) => Kind::Dot,
                        ('.', _) => Kind::Field,
                        _ => Kind::Variable,
                    };
                    self.emit(kind, start);
                }
                '+' | '-' | '0'..='9' => {
                    self.pos = start;
                    if !self.lex_number() {
                        return false;
                    }
                }
                c if is_alnum(c) => {
                    while let Some(a) = self.peek() {
                        if !is_alnum(a) {
                            break;
                        }
                        self.pos += a.len_utf8();
                    }
                    if !self.at_terminator() {
                        let bad = self.peek().unwrap_or(' ');
                        self.error(format!("bad character {}", char_desc(bad)));
                        return false;
                    }
                    let word = &self.src[start..self.pos];
                    let kind = if KEYWORDS.contains(&word) {
                        Kind::Keyword
                    } else if word == "nil" {
                        Kind::Nil
                    } else if word == "true" || word == "false" {
                        Kind::Bool
                    } else {
                        Kind::Identifier
                    };
                    self.emit(kind, start);
                }
                '(' => {
                    self.paren_depth += 1;
                    self.emit(Kind::LeftParen, start);
                }
                ')' => {
                    if self.paren_depth == 0 {
                        self.error("unexpected right paren".into());
                        return false;
                    }
                    self.paren_depth -= 1;
                    self.emit(Kind::RightParen, start);
                }
                c if c.is_ascii() && !c.is_ascii_control() => self.emit(Kind::Char, start),
                c => {
                    self.error(format!(
                        "unrecognized character in action: {}",
                        char_desc(c)
                    ));
                    return false;
                }
            }
        }
    }

    fn at_terminator(&self) -> bool {
        match self.peek() {
            None => true,
            Some(c) if is_space(c) => true,
            Some('.' | ',' | '|' | ':' | ')' | '(') => true,
            _ => self.rest().starts_with("}}"),
        }
    }

    /// Go's `scanNumber`: sign, base prefix, digits with underscores, fraction, exponent.
    fn lex_number(&mut self) -> bool {
        let start = self.pos;
        let accept = |l: &mut Self, set: &str| -> bool {
            match l.peek() {
                Some(c) if set.contains(c) => {
                    l.pos += c.len_utf8();
                    true
                }
                _ => false,
            }
        };
        let accept_run = |l: &mut Self, set: &str| {
            while let Some(c) = l.peek() {
                if !set.contains(c) {
                    break;
                }
                l.pos += c.len_utf8();
            }
        };
        accept(self, "+-");
        let mut digits = "0123456789_";
        if accept(self, "0") {
            if accept(self, "xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if accept(self, "oO") {
                digits = "01234567_";
            } else if accept(self, "bB") {
                digits = "01_";
            }
        }
        accept_run(self, digits);
        if accept(self, ".") {
            accept_run(self, digits);
        }
        if digits.len() == 11 && accept(self, "eE") {
            accept(self, "+-");
            accept_run(self, "0123456789_");
        }
        if digits.len() == 23 && accept(self, "pP") {
            accept(self, "+-");
            accept_run(self, "0123456789_");
        }
        accept(self, "i");
        if self.peek().is_some_and(is_alnum) {
            if let Some(c) = self.peek() {
                self.pos += c.len_utf8();
            }
            let bad = self.src[start..self.pos].to_string();
            self.error(format!(
                "bad number syntax: {}",
                crate::gofmt::go_quote(&bad, false)
            ));
            return false;
        }
        self.emit(Kind::Number, start);
        true
    }
}

/// Go's `%#U`: `U+0041 'A'`, the character shown only when printable.
fn char_desc(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("U+{:04X} '{c}'", c as u32)
    }
}

/// A parsed template: its name, the name of the text it came from (for error locations)
/// and its body.
#[derive(Debug, Clone)]
pub(crate) struct Tree {
    pub(crate) name: String,
    pub(crate) parse_name: String,
    pub(crate) text: Arc<str>,
    pub(crate) root: Vec<Node>,
}

impl Tree {
    /// `name:line:col` of a byte offset, with Go's zero-based column.
    pub(crate) fn location(&self, pos: usize) -> String {
        let pos = pos.min(self.text.len());
        let before = &self.text[..pos];
        let line = 1 + before.matches('\n').count();
        let col = before.rfind('\n').map_or(pos, |nl| pos - nl - 1);
        format!("{}:{line}:{col}", self.parse_name)
    }

    pub(crate) fn line(&self, pos: usize) -> usize {
        1 + self.text[..pos.min(self.text.len())].matches('\n').count()
    }

    /// Whether the body is only whitespace text: Go does not let such a definition replace
    /// an existing one.
    pub(crate) fn is_empty(&self) -> bool {
        self.root
            .iter()
            .all(|n| matches!(n, Node::Text(t) if t.trim_matches(is_space).is_empty()))
    }
}

/// A node of a template body.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Control),
    Range(Control),
    With(Control),
    Template {
        pos: usize,
        name: String,
        pipe: Option<Pipe>,
    },
    Break,
    Continue,
}

/// The shared shape of `if`, `range` and `with`.
#[derive(Debug, Clone)]
pub(crate) struct Control {
    pub(crate) pipe: Pipe,
    pub(crate) list: Vec<Node>,
    pub(crate) else_list: Option<Vec<Node>>,
}

/// A pipeline, with the variables it declares (`:=`) or assigns (`=`).
#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    pub(crate) pos: usize,
    pub(crate) decl: Vec<String>,
    pub(crate) is_assign: bool,
    pub(crate) cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
pub(crate) struct Command {
    pub(crate) args: Vec<Operand>,
}

/// One word of a command.
#[derive(Debug, Clone)]
pub(crate) enum Operand {
    /// `.A.B`
    Field {
        pos: usize,
        idents: Vec<String>,
    },
    /// `$x.A.B`
    Variable {
        pos: usize,
        name: String,
        fields: Vec<String>,
    },
    /// `(pipe).A.B`, `fn.A` and the like.
    Chain {
        pos: usize,
        node: Box<Operand>,
        fields: Vec<String>,
    },
    Identifier {
        pos: usize,
        name: String,
    },
    Dot(usize),
    Nil(usize),
    Bool(usize, bool),
    /// A numeric or character constant, already typed as Go would (int or float).
    Number {
        pos: usize,
        text: String,
        value: Value,
    },
    String {
        pos: usize,
        text: String,
        value: String,
    },
    Pipe(Box<Pipe>),
}

impl Operand {
    pub(crate) fn pos(&self) -> usize {
        match self {
            Operand::Field { pos, .. }
            | Operand::Variable { pos, .. }
            | Operand::Chain { pos, .. }
            | Operand::Identifier { pos, .. }
            | Operand::Dot(pos)
            | Operand::Nil(pos)
            | Operand::Bool(pos, _)
            | Operand::Number { pos, .. }
            | Operand::String { pos, .. } => *pos,
            Operand::Pipe(p) => p.pos,
        }
    }
}

impl fmt::Display for Operand {
    /// Go's `Node.String()`: the source form, used as the `at <...>` error context.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Field { idents, .. } => {
                for i in idents {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Operand::Variable { name, fields, .. } => {
                f.write_str(name)?;
                for i in fields {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Operand::Chain { node, fields, .. } => {
                if matches!(**node, Operand::Pipe(_)) {
                    write!(f, "({node})")?;
                } else {
                    write!(f, "{node}")?;
                }
                for i in fields {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Operand::Identifier { name, .. } => f.write_str(name),
            Operand::Dot(_) => f.write_str("."),
            Operand::Nil(_) => f.write_str("nil"),
            Operand::Bool(_, b) => write!(f, "{b}"),
            Operand::Number { text, .. } | Operand::String { text, .. } => f.write_str(text),
            Operand::Pipe(p) => write!(f, "{p}"),
        }
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            f.write_str(&self.decl.join(", "))?;
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (j, a) in self.args.iter().enumerate() {
            if j > 0 {
                f.write_str(" ")?;
            }
            if matches!(a, Operand::Pipe(_)) {
                write!(f, "({a})")?;
            } else {
                write!(f, "{a}")?;
            }
        }
        Ok(())
    }
}

/// What a list ended with.
enum ListEnd {
    End,
    Else,
}

struct Parser {
    tokens: Vec<Token>,
    i: usize,
    parse_name: String,
    text: Arc<str>,
    vars: Vec<String>,
    range_depth: usize,
    depth: usize,
    defined: Vec<Tree>,
}

type PResult<T> = Result<T, Error>;

/// Parses `text` as the template `name`, returning it followed by every template it
/// defines with `define` or `block`.
pub(crate) fn parse(name: &str, text: &str) -> Result<Vec<Tree>, Error> {
    let text: Arc<str> = Arc::from(text);
    let mut p = Parser {
        tokens: Lexer::lex(&text),
        i: 0,
        parse_name: name.to_string(),
        text: text.clone(),
        vars: vec!["$".into()],
        range_depth: 0,
        depth: 0,
        defined: Vec::new(),
    };
    let mut root = Vec::new();
    loop {
        let tok = p.peek().clone();
        match tok.kind {
            Kind::Eof => break,
            Kind::LeftDelim => {
                let save = p.i;
                p.next();
                let t = p.next_non_space();
                if t.kind == Kind::Keyword && t.val == "define" {
                    p.parse_definition()?;
                    continue;
                }
                p.i = save;
            }
            _ => {}
        }
        match p.text_or_action()? {
            Item::Node(n) => root.push(n),
            Item::End(pos) => return Err(p.error_at(pos, "unexpected {{end}}")),
            Item::Else(pos) => return Err(p.error_at(pos, "unexpected {{else}}")),
        }
    }
    let mut out = vec![Tree {
        name: name.to_string(),
        parse_name: name.to_string(),
        text,
        root,
    }];
    out.append(&mut p.defined);
    Ok(out)
}

enum Item {
    Node(Node),
    End(usize),
    Else(usize),
}

impl Parser {
    fn peek(&self) -> &Token {
        let i = self.i.min(self.tokens.len().saturating_sub(1));
        &self.tokens[i]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.i < self.tokens.len() {
            self.i += 1;
        }
        t
    }

    fn next_non_space(&mut self) -> Token {
        loop {
            let t = self.next();
            if t.kind != Kind::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Token {
        let t = self.next_non_space();
        self.i -= 1;
        t
    }

    fn error_line(&self, line: usize, msg: impl fmt::Display) -> Error {
        Error::Parse(format!("template: {}:{line}: {msg}", self.parse_name))
    }

    fn error_at(&self, pos: usize, msg: impl fmt::Display) -> Error {
        let line = 1 + self.text[..pos.min(self.text.len())].matches('\n').count();
        self.error_line(line, msg)
    }

    /// An error at the most recently read token, as Go reports parse errors.
    fn error(&self, msg: impl fmt::Display) -> Error {
        let t = &self.tokens[self.i.saturating_sub(1).min(self.tokens.len() - 1)];
        self.error_line(t.line, msg)
    }

    fn unexpected(&self, tok: &Token, context: &str) -> Error {
        self.error_line(tok.line, format!("unexpected {tok} in {context}"))
    }

    fn expect(&mut self, kind: Kind, context: &str) -> PResult<Token> {
        let t = self.next_non_space();
        if t.kind != kind {
            return Err(self.unexpected(&t, context));
        }
        Ok(t)
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_PARSE_DEPTH {
            return Err(self.error(format!("nesting deeper than {MAX_PARSE_DEPTH}")));
        }
        Ok(())
    }

    /// `{{define "name"}} ... {{end}}`, already past `define`.
    fn parse_definition(&mut self) -> PResult<()> {
        let name_tok = self.next_non_space();
        let name = self.template_name(&name_tok, "define clause")?;
        self.expect(Kind::RightDelim, "define clause")?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let (list, end) = self.item_list()?;
        self.vars = saved_vars;
        if let ListEnd::Else = end {
            return Err(self.error("unexpected {{else}} in define clause"));
        }
        self.defined.push(Tree {
            name,
            parse_name: self.parse_name.clone(),
            text: self.text.clone(),
            root: list,
        });
        Ok(())
    }

    fn template_name(&self, tok: &Token, context: &str) -> PResult<String> {
        match tok.kind {
            Kind::String | Kind::RawString => unquote(&tok.val).map_err(|e| self.error(e)),
            _ => Err(self.unexpected(tok, context)),
        }
    }

    /// Nodes up to `{{end}}` or `{{else}}`.
    fn item_list(&mut self) -> PResult<(Vec<Node>, ListEnd)> {
        let mut list = Vec::new();
        while self.peek_non_space().kind != Kind::Eof {
            match self.text_or_action()? {
                Item::Node(n) => list.push(n),
                Item::End(_) => return Ok((list, ListEnd::End)),
                Item::Else(_) => return Ok((list, ListEnd::Else)),
            }
        }
        Err(self.error("unexpected EOF"))
    }

    fn text_or_action(&mut self) -> PResult<Item> {
        let t = self.next_non_space();
        match t.kind {
            Kind::Text => Ok(Item::Node(Node::Text(t.val))),
            Kind::LeftDelim => self.action(),
            _ => Err(self.unexpected(&t, "input")),
        }
    }

    fn action(&mut self) -> PResult<Item> {
        let t = self.next_non_space();
        if t.kind == Kind::Keyword {
            match t.val.as_str() {
                "block" => return self.block_control(t.pos).map(Item::Node),
                "break" | "continue" => {
                    self.expect(Kind::RightDelim, &t.val)?;
                    if self.range_depth == 0 {
                        return Err(self.error(format!("{{{{{}}}}} outside {{{{range}}}}", t.val)));
                    }
                    return Ok(Item::Node(if t.val == "break" {
                        Node::Break
                    } else {
                        Node::Continue
                    }));
                }
                "else" => {
                    let p = self.peek_non_space();
                    if p.kind == Kind::Keyword && (p.val == "if" || p.val == "with") {
                        return Ok(Item::Else(p.pos));
                    }
                    let t = self.expect(Kind::RightDelim, "else")?;
                    return Ok(Item::Else(t.pos));
                }
                "end" => {
                    let t = self.expect(Kind::RightDelim, "end")?;
                    return Ok(Item::End(t.pos));
                }
                "if" => return self.control("if").map(|c| Item::Node(Node::If(c))),
                "range" => return self.control("range").map(|c| Item::Node(Node::Range(c))),
                "with" => return self.control("with").map(|c| Item::Node(Node::With(c))),
                "template" => return self.template_control().map(Item::Node),
                _ => {}
            }
        }
        self.i -= 1;
        // Variables declared here persist until the enclosing control's end.
        let pipe = self.pipeline("command", Kind::RightDelim)?;
        Ok(Item::Node(Node::Action(pipe)))
    }

    fn control(&mut self, context: &str) -> PResult<Control> {
        self.enter()?;
        let vars_len = self.vars.len();
        let pipe = self.pipeline(context, Kind::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let (list, end) = self.item_list()?;
        if context == "range" {
            self.range_depth -= 1;
        }
        let mut else_list = None;
        if let ListEnd::Else = end {
            let p = self.peek_non_space();
            let chain = (context == "if" && p.kind == Kind::Keyword && p.val == "if")
                || (context == "with" && p.kind == Kind::Keyword && p.val == "with");
            if chain {
                // `{{else if x}}` is `{{else}}{{if x}}...{{end}}` sharing the outer end.
                self.next_non_space();
                let inner = self.control(context)?;
                else_list = Some(vec![if context == "if" {
                    Node::If(inner)
                } else {
                    Node::With(inner)
                }]);
            } else {
                let (l, end) = self.item_list()?;
                if let ListEnd::Else = end {
                    return Err(self.error("expected end; found {{else}}"));
                }
                else_list = Some(l);
            }
        }
        self.vars.truncate(vars_len);
        self.depth -= 1;
        Ok(Control {
            pipe,
            list,
            else_list,
        })
    }

    fn template_control(&mut self) -> PResult<Node> {
        let context = "template clause";
        let tok = self.next_non_space();
        let pos = tok.pos;
        let name = self.template_name(&tok, context)?;
        let pipe = if self.peek_non_space().kind != Kind::RightDelim {
            Some(self.pipeline(context, Kind::RightDelim)?)
        } else {
            self.next_non_space();
            None
        };
        Ok(Node::Template { pos, name, pipe })
    }

    /// `{{block "name" pipeline}} default {{end}}`: defines "name" and invokes it.
    fn block_control(&mut self, pos: usize) -> PResult<Node> {
        let context = "block clause";
        let tok = self.next_non_space();
        let name = self.template_name(&tok, context)?;
        let pipe = self.pipeline(context, Kind::RightDelim)?;
        self.enter()?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let saved_range = std::mem::replace(&mut self.range_depth, 0);
        let (list, end) = self.item_list()?;
        self.vars = saved_vars;
        self.range_depth = saved_range;
        self.depth -= 1;
        if let ListEnd::Else = end {
            return Err(self.error("unexpected {{else}} in block clause"));
        }
        self.defined.push(Tree {
            name: name.clone(),
            parse_name: self.parse_name.clone(),
            text: self.text.clone(),
            root: list,
        });
        Ok(Node::Template {
            pos,
            name,
            pipe: Some(pipe),
        })
    }

    fn pipeline(&mut self, context: &str, end: Kind) -> PResult<Pipe> {
        let start = self.peek_non_space();
        let mut pipe = Pipe {
            pos: start.pos,
            decl: Vec::new(),
            is_assign: false,
            cmds: Vec::new(),
        };
        // Declarations or assignments.
        loop {
            let v = self.peek_non_space();
            if v.kind != Kind::Variable {
                break;
            }
            let save = self.i;
            self.next_non_space();
            let next = self.peek_non_space();
            match next.kind {
                Kind::Assign | Kind::Declare => {
                    pipe.is_assign = next.kind == Kind::Assign;
                    self.next_non_space();
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val);
                    break;
                }
                Kind::Char if next.val == "," => {
                    self.next_non_space();
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val);
                    if context == "range" && pipe.decl.len() < 2 {
                        let after = self.peek_non_space();
                        if matches!(
                            after.kind,
                            Kind::Variable | Kind::RightDelim | Kind::RightParen
                        ) {
                            continue;
                        }
                        return Err(self.error("range can only initialize variables"));
                    }
                    return Err(self.error(format!("too many declarations in {context}")));
                }
                _ => {
                    self.i = save;
                    break;
                }
            }
        }
        loop {
            let t = self.next_non_space();
            if t.kind == end {
                if pipe.cmds.is_empty() {
                    return Err(self.error(format!("missing value for {context}")));
                }
                for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
                    if matches!(
                        c.args.first(),
                        Some(
                            Operand::Bool(..)
                                | Operand::Dot(_)
                                | Operand::Nil(_)
                                | Operand::Number { .. }
                                | Operand::String { .. }
                        )
                    ) {
                        return Err(self.error(format!(
                            "non executable command in pipeline stage {}",
                            i + 1
                        )));
                    }
                }
                return Ok(pipe);
            }
            match t.kind {
                Kind::Bool
                | Kind::CharConstant
                | Kind::Dot
                | Kind::Field
                | Kind::Identifier
                | Kind::Number
                | Kind::Nil
                | Kind::RawString
                | Kind::String
                | Kind::Variable
                | Kind::LeftParen => {
                    self.i -= 1;
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return Err(self.unexpected(&t, context)),
            }
        }
    }

    fn command(&mut self) -> PResult<Command> {
        let mut args = Vec::new();
        loop {
            self.peek_non_space();
            if let Some(op) = self.operand()? {
                args.push(op);
            }
            let t = self.next();
            match t.kind {
                Kind::Space => continue,
                Kind::RightDelim | Kind::RightParen => self.i -= 1,
                Kind::Pipe => {}
                _ => return Err(self.unexpected(&t, "operand")),
            }
            break;
        }
        if args.is_empty() {
            return Err(self.error("empty command"));
        }
        Ok(Command { args })
    }

    fn operand(&mut self) -> PResult<Option<Operand>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().kind != Kind::Field {
            return Ok(Some(node));
        }
        let chain_pos = self.peek().pos;
        let mut fields = Vec::new();
        while self.peek().kind == Kind::Field {
            fields.push(self.next().val[1..].to_string());
        }
        Ok(Some(match node {
            // Go rebuilds these from the chain, so they take its position: that of the
            // second field.
            Operand::Field { mut idents, .. } => {
                idents.extend(fields);
                Operand::Field {
                    pos: chain_pos,
                    idents,
                }
            }
            Operand::Variable {
                name,
                fields: mut f,
                ..
            } => {
                f.extend(fields);
                Operand::Variable {
                    pos: chain_pos,
                    name,
                    fields: f,
                }
            }
            Operand::Bool(..)
            | Operand::String { .. }
            | Operand::Number { .. }
            | Operand::Nil(_)
            | Operand::Dot(_) => {
                return Err(self.error(format!(
                    "unexpected . after term {}",
                    crate::gofmt::go_quote(&node.to_string(), false)
                )));
            }
            node => Operand::Chain {
                pos: chain_pos,
                node: Box::new(node),
                fields,
            },
        }))
    }

    fn term(&mut self) -> PResult<Option<Operand>> {
        let t = self.next_non_space();
        let pos = t.pos;
        Ok(Some(match t.kind {
            Kind::Identifier => Operand::Identifier { pos, name: t.val },
            Kind::Dot => Operand::Dot(pos),
            Kind::Nil => Operand::Nil(pos),
            Kind::Variable => {
                if !self.vars.contains(&t.val) {
                    return Err(self.error(format!(
                        "undefined variable {}",
                        crate::gofmt::go_quote(&t.val, false)
                    )));
                }
                Operand::Variable {
                    pos,
                    name: t.val,
                    fields: Vec::new(),
                }
            }
            Kind::Field => Operand::Field {
                pos,
                idents: vec![t.val[1..].to_string()],
            },
            Kind::Bool => Operand::Bool(pos, t.val == "true"),
            Kind::Number | Kind::CharConstant => {
                let value =
                    number(&t.val, t.kind == Kind::CharConstant).map_err(|e| self.error(e))?;
                Operand::Number {
                    pos,
                    text: t.val,
                    value,
                }
            }
            Kind::String | Kind::RawString => {
                let value = unquote(&t.val).map_err(|e| self.error(e))?;
                Operand::String {
                    pos,
                    text: t.val,
                    value,
                }
            }
            Kind::LeftParen => {
                self.enter()?;
                let p = self.pipeline("parenthesized pipeline", Kind::RightParen)?;
                self.depth -= 1;
                Operand::Pipe(Box::new(p))
            }
            _ => {
                self.i -= 1;
                return Ok(None);
            }
        }))
    }
}

/// A number token typed as Go's templates type untyped constants: a character constant or
/// anything that parses as an integer is an `int`; text with `.`, `e` or `p` is a float.
fn number(text: &str, is_char: bool) -> Result<Value, String> {
    let bad = || {
        format!(
            "illegal number syntax: {}",
            crate::gofmt::go_quote(text, false)
        )
    };
    if is_char {
        let s = unquote(text).map_err(|_| bad())?;
        let mut cs = s.chars();
        return match (cs.next(), cs.next()) {
            (Some(c), None) => Ok(Value::Int(i64::from(c as u32))),
            _ => Err(format!("malformed character constant: {text}")),
        };
    }
    if text.ends_with('i') {
        return Err("complex numbers are not supported".into());
    }
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1
        && lower.starts_with('0')
        && lower.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if !clean.is_empty() && clean.chars().all(|c| c.is_digit(radix)) {
        return match u64::from_str_radix(&clean, radix) {
            Ok(u) => {
                let i = i128::from(u) * if neg { -1 } else { 1 };
                i64::try_from(i)
                    .map(Value::Int)
                    .map_err(|_| format!("{text} overflows int"))
            }
            Err(_) => Err(format!(
                "integer overflow: {}",
                crate::gofmt::go_quote(text, false)
            )),
        };
    }
    if radix != 10 && radix != 8 {
        return Err(bad());
    }
    let clean: String = body.chars().filter(|&c| c != '_').collect();
    match clean.parse::<f64>() {
        Ok(f)
            if clean.contains(['.', 'e', 'E'])
                && !clean
                    .chars()
                    .any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E') =>
        {
            Ok(Value::Float(if neg { -f } else { f }))
        }
        _ => Err(bad()),
    }
}

/// Go's `strconv.Unquote` for the three quote forms.
pub(crate) fn unquote(s: &str) -> Result<String, String> {
    let bad = || "invalid syntax".to_string();
    if let Some(inner) = s.strip_prefix('`').and_then(|r| r.strip_suffix('`')) {
        return Ok(inner.replace('\r', ""));
    }
    let quote = s.chars().next().ok_or_else(bad)?;
    if quote != '"' && quote != '\'' || s.len() < 2 || !s.ends_with(quote) {
        return Err(bad());
    }
    let inner = &s[1..s.len() - 1];
    let mut out: Vec<u8> = Vec::with_capacity(inner.len());
    let mut cs = inner.chars().peekable();
    while let Some(c) = cs.next() {
        if c != '\\' {
            let mut b = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            continue;
        }
        let e = cs.next().ok_or_else(bad)?;
        let simple = match e {
            'a' => Some(7u8),
            'b' => Some(8),
            'f' => Some(12),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(11),
            '\\' => Some(b'\\'),
            '\'' if quote == '\'' => Some(b'\''),
            '"' if quote == '"' => Some(b'"'),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            continue;
        }
        let mut take = |n: usize, radix: u32| -> Result<u32, String> {
            let mut v = 0u32;
            for _ in 0..n {
                let d = cs.next().and_then(|c| c.to_digit(radix)).ok_or_else(bad)?;
                v = v * radix + d;
            }
            Ok(v)
        };
        match e {
            'x' => out.push(u8::try_from(take(2, 16)?).map_err(|_| bad())?),
            '0'..='7' => {
                let rest = take(2, 8)?;
                let v = (e as u32 - '0' as u32) * 64 + rest;
                out.push(u8::try_from(v).map_err(|_| bad())?);
            }
            'u' | 'U' => {
                let v = take(if e == 'u' { 4 } else { 8 }, 16)?;
                let c = char::from_u32(v).ok_or_else(bad)?;
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
            _ => return Err(bad()),
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}
