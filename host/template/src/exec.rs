//! Executes parsed templates with Go's semantics: variable scopes that end with the
//! enclosing control structure, `range` over lists, maps (in key order) and integers with
//! `break`/`continue`, lazy `and`/`or`, the pipeline's value passed as the last argument,
//! and Go's error messages with the failing node's position.

use std::fmt;

use crate::parse::{Command, Control, Node, Operand, Pipe, Tree};
use crate::value::{Duration, Time, Value};
use crate::{Error, Funcs, MissingKey, Templates, builtins};

enum Flow {
    Normal,
    Break,
    Continue,
}

type R<T> = Result<T, Error>;

pub(crate) struct State<'a> {
    set: &'a Templates,
    funcs: &'a Funcs,
    tree: &'a Tree,
    vars: Vec<(String, Value)>,
    out: String,
    depth: usize,
    nest: usize,
    steps: u64,
}

/// Bound on nested bodies being executed at once (control structures and template calls
/// together): deep enough for any real template, shallow enough for a 2 MiB stack.
const MAX_NEST: usize = 300;

/// Runs template `tree` of `set` on `data`.
pub(crate) fn execute(set: &Templates, tree: &Tree, data: &Value, funcs: &Funcs) -> R<String> {
    let mut s = State {
        set,
        funcs,
        tree,
        vars: vec![("$".into(), data.clone())],
        out: String::new(),
        depth: 0,
        nest: 0,
        steps: 0,
    };
    s.walk(data, &tree.root)?;
    Ok(s.out)
}

/// Go's error context is the node's source text, shortened.
/// Whether an action's pipeline ends by escaping for HTML itself (`html`) or by
/// vouching for its HTML (`safeHtml`), so [`crate::Options::escape_html`] leaves it
/// alone, as `html/template` does not escape twice. A `safeHtml` value kept in a
/// variable and printed later is escaped: only the safe direction differs from Go.
fn ends_escaped(pipe: &Pipe) -> bool {
    matches!(
        pipe.cmds.last().and_then(|c| c.args.first()),
        Some(Operand::Identifier { name, .. }) if name == "html" || name == "safeHtml"
    )
}

fn context(node: &dyn fmt::Display) -> String {
    let s = node.to_string();
    if s.len() > 20 {
        let short: String = s.chars().take(20).collect();
        format!("{short}...")
    } else {
        s
    }
}

impl<'a> State<'a> {
    fn error(&self, pos: usize, node: &dyn fmt::Display, msg: impl fmt::Display) -> Error {
        Error::Exec(format!(
            "template: {}: executing {:?} at <{}>: {msg}",
            self.tree.location(pos),
            self.tree.name,
            context(node)
        ))
    }

    /// Counts work so that a template looping over a huge range stops.
    fn step(&mut self, pos: usize, node: &dyn fmt::Display) -> R<()> {
        self.steps += 1;
        if self.steps > self.set.options.max_steps {
            return Err(self.error(
                pos,
                node,
                format!("exceeded the limit of {} steps", self.set.options.max_steps),
            ));
        }
        Ok(())
    }

    fn write(&mut self, s: &str, pos: usize, node: &dyn fmt::Display) -> R<()> {
        if self.out.len() + s.len() > self.set.options.max_output_bytes {
            return Err(self.error(
                pos,
                node,
                format!(
                    "output exceeds the limit of {} bytes",
                    self.set.options.max_output_bytes
                ),
            ));
        }
        self.out.push_str(s);
        Ok(())
    }

    /// Walks a body. Nested bodies (control structures inside template calls inside
    /// control structures...) are counted together, so that the recursion stays within a
    /// thread's stack whatever the mix.
    fn walk(&mut self, dot: &Value, list: &'a [Node]) -> R<Flow> {
        self.nest += 1;
        if self.nest > MAX_NEST {
            self.nest -= 1;
            return Err(self.error(
                0,
                &"nesting",
                format!("exceeded maximum nesting of {MAX_NEST} blocks and template calls"),
            ));
        }
        let mut flow = Ok(Flow::Normal);
        for n in list {
            match self.walk_node(dot, n) {
                Ok(Flow::Normal) => {}
                f => {
                    flow = f;
                    break;
                }
            }
        }
        self.nest -= 1;
        flow
    }

    fn walk_node(&mut self, dot: &Value, node: &'a Node) -> R<Flow> {
        match node {
            Node::Text(t) => {
                self.step(0, &"text")?;
                self.write(t, 0, &"text")?;
            }
            Node::Action(pipe) => {
                self.step(pipe.pos, pipe)?;
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    let mut s = match v {
                        Value::Nil => "<no value>".to_string(),
                        v => v.to_go_string(),
                    };
                    if self.set.options.escape_html && !ends_escaped(pipe) {
                        s = builtins::html_escape(&s);
                    }
                    self.write(&s, pipe.pos, pipe)?;
                }
            }
            Node::If(c) | Node::With(c) => {
                let is_with = matches!(node, Node::With(_));
                let mark = self.vars.len();
                let v = self.eval_pipeline(dot, &c.pipe)?;
                let flow = if v.is_true() {
                    self.walk(if is_with { &v } else { dot }, &c.list)?
                } else if let Some(e) = &c.else_list {
                    self.walk(dot, e)?
                } else {
                    Flow::Normal
                };
                self.vars.truncate(mark);
                return Ok(flow);
            }
            Node::Range(c) => self.walk_range(dot, c)?,
            Node::Template { pos, name, pipe } => {
                let shown = TemplateCall(name, pipe.as_ref());
                let Some(tree) = self.set.trees.get(name) else {
                    return Err(self.error(*pos, &shown, format!("template {name:?} not defined")));
                };
                let new_dot = match pipe {
                    Some(p) => self.eval_pipeline(dot, p)?,
                    None => Value::Nil,
                };
                if self.depth >= self.set.options.max_depth {
                    return Err(self.error(
                        *pos,
                        &shown,
                        format!(
                            "exceeded maximum template depth ({})",
                            self.set.options.max_depth
                        ),
                    ));
                }
                let tree: &'a Tree = tree;
                let saved_vars =
                    std::mem::replace(&mut self.vars, vec![("$".into(), new_dot.clone())]);
                let saved_tree = std::mem::replace(&mut self.tree, tree);
                self.depth += 1;
                let r = self.walk(&new_dot, &tree.root);
                self.depth -= 1;
                self.tree = saved_tree;
                self.vars = saved_vars;
                r?;
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn walk_range(&mut self, dot: &Value, c: &'a Control) -> R<()> {
        let mark = self.vars.len();
        let v = self.eval_pipeline(dot, &c.pipe)?;
        let items: Vec<(Value, Value)> = match v.underlying() {
            Value::List(l) => l
                .iter()
                .enumerate()
                .map(|(i, e)| (Value::from(i), e.clone()))
                .collect(),
            Value::Map(m) => m
                .iter()
                .map(|(k, e)| (Value::String(k.clone()), e.clone()))
                .collect(),
            Value::StrMap(m) => m
                .iter()
                .map(|(k, e)| (Value::String(k.clone()), Value::String(e.clone())))
                .collect(),
            Value::Int(n) => {
                if c.pipe.decl.len() > 1 {
                    return Err(self.error(
                        c.pipe.pos,
                        &c.pipe,
                        format!("can't use {n} to iterate over more than one variable"),
                    ));
                }
                let n = (*n).max(0);
                if u64::try_from(n).unwrap_or(0) > self.set.options.max_steps {
                    return Err(self.error(
                        c.pipe.pos,
                        &c.pipe,
                        format!("exceeded the limit of {} steps", self.set.options.max_steps),
                    ));
                }
                (0..n).map(|i| (Value::Int(i), Value::Int(i))).collect()
            }
            Value::Nil => Vec::new(),
            other => {
                return Err(self.error(
                    c.pipe.pos,
                    &c.pipe,
                    format!("range can't iterate over {other}"),
                ));
            }
        };
        if items.is_empty() {
            if let Some(e) = &c.else_list {
                self.walk(dot, e)?;
            }
            self.vars.truncate(mark);
            return Ok(());
        }
        for (key, elem) in items {
            self.step(c.pipe.pos, &c.pipe)?;
            match c.pipe.decl.as_slice() {
                [] => {}
                [v] => self.bind(&c.pipe, v, elem.clone(), 1)?,
                [k, v] => {
                    self.bind(&c.pipe, v, elem.clone(), 1)?;
                    self.bind(&c.pipe, k, key, 2)?;
                }
                _ => {}
            }
            let iter_mark = self.vars.len();
            let flow = self.walk(&elem, &c.list)?;
            self.vars.truncate(iter_mark);
            if let Flow::Break = flow {
                break;
            }
        }
        self.vars.truncate(mark);
        Ok(())
    }

    /// Sets a range variable: the `top`-th from the top of the stack for `:=`, the named
    /// variable for `=`.
    fn bind(&mut self, pipe: &Pipe, name: &str, v: Value, top: usize) -> R<()> {
        if pipe.is_assign {
            return self.set_var(pipe, name, v);
        }
        let n = self.vars.len();
        if let Some(slot) = n.checked_sub(top).and_then(|i| self.vars.get_mut(i)) {
            slot.1 = v;
        }
        Ok(())
    }

    fn set_var(&mut self, pipe: &Pipe, name: &str, v: Value) -> R<()> {
        match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            Some(slot) => {
                slot.1 = v;
                Ok(())
            }
            None => Err(self.error(pipe.pos, pipe, format!("undefined variable: {name}"))),
        }
    }

    fn var_value(&self, pos: usize, name: &str) -> R<Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| self.error(pos, &name, format!("undefined variable: {name}")))
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &'a Pipe) -> R<Value> {
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        let value = value.unwrap_or_default();
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(pipe, name, value.clone())?;
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, args: &[Operand], fin: &Option<Value>) -> R<()> {
        if args.len() > 1 || fin.is_some() {
            let first = &args[0];
            return Err(self.error(
                first.pos(),
                first,
                format!("can't give argument to non-function {first}"),
            ));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Value, cmd: &'a Command, fin: Option<Value>) -> R<Value> {
        let first = &cmd.args[0];
        self.step(first.pos(), first)?;
        match first {
            Operand::Field { idents, .. } => {
                self.eval_field_chain(dot, dot.clone(), first, idents, &cmd.args, fin)
            }
            Operand::Chain { node, fields, .. } => {
                if let Operand::Nil(_) = **node {
                    return Err(self.error(
                        first.pos(),
                        first,
                        format!("indirection through explicit nil in {first}"),
                    ));
                }
                let recv = self.eval_arg(dot, node)?;
                self.eval_field_chain(dot, recv, first, fields, &cmd.args, fin)
            }
            Operand::Identifier { name, .. } => {
                self.eval_function(dot, first, cmd, name, &cmd.args, fin)
            }
            Operand::Pipe(p) => {
                self.not_a_function(&cmd.args, &fin)?;
                self.eval_pipeline(dot, p)
            }
            Operand::Variable { pos, name, fields } => {
                let v = self.var_value(*pos, name)?;
                if fields.is_empty() {
                    self.not_a_function(&cmd.args, &fin)?;
                    return Ok(v);
                }
                self.eval_field_chain(dot, v, first, fields, &cmd.args, fin)
            }
            _ => {
                self.not_a_function(&cmd.args, &fin)?;
                match first {
                    Operand::Bool(_, b) => Ok(Value::Bool(*b)),
                    Operand::Dot(_) => Ok(dot.clone()),
                    Operand::Nil(pos) => Err(self.error(*pos, first, "nil is not a command")),
                    Operand::Number { value, .. } => Ok(value.clone()),
                    Operand::String { value, .. } => Ok(Value::String(value.clone())),
                    other => Err(self.error(
                        other.pos(),
                        other,
                        format!("can't evaluate command {other}"),
                    )),
                }
            }
        }
    }

    /// Evaluates an argument: constants as Go types them, identifiers as calls with no
    /// arguments.
    fn eval_arg(&mut self, dot: &Value, op: &'a Operand) -> R<Value> {
        match op {
            Operand::Dot(_) => Ok(dot.clone()),
            Operand::Nil(_) => Ok(Value::Nil),
            Operand::Bool(_, b) => Ok(Value::Bool(*b)),
            Operand::Number { value, .. } => Ok(value.clone()),
            Operand::String { value, .. } => Ok(Value::String(value.clone())),
            Operand::Field { idents, .. } => {
                self.eval_field_chain(dot, dot.clone(), op, idents, std::slice::from_ref(op), None)
            }
            Operand::Variable { pos, name, fields } => {
                let v = self.var_value(*pos, name)?;
                if fields.is_empty() {
                    return Ok(v);
                }
                self.eval_field_chain(dot, v, op, fields, std::slice::from_ref(op), None)
            }
            Operand::Chain { node, fields, .. } => {
                if let Operand::Nil(_) = **node {
                    return Err(self.error(
                        op.pos(),
                        op,
                        format!("indirection through explicit nil in {op}"),
                    ));
                }
                let recv = self.eval_arg(dot, node)?;
                self.eval_field_chain(dot, recv, op, fields, std::slice::from_ref(op), None)
            }
            Operand::Pipe(p) => self.eval_pipeline(dot, p),
            Operand::Identifier { name, .. } => {
                self.eval_function(dot, op, op, name, std::slice::from_ref(op), None)
            }
        }
    }

    fn eval_field_chain(
        &mut self,
        dot: &Value,
        mut recv: Value,
        node: &'a Operand,
        idents: &'a [String],
        args: &'a [Operand],
        fin: Option<Value>,
    ) -> R<Value> {
        let n = idents.len();
        for ident in &idents[..n - 1] {
            recv = self.eval_field(dot, ident, node, &[], None, recv)?;
        }
        self.eval_field(dot, &idents[n - 1], node, args, fin, recv)
    }

    fn eval_field(
        &mut self,
        dot: &Value,
        name: &str,
        node: &'a Operand,
        args: &'a [Operand],
        fin: Option<Value>,
        recv: Value,
    ) -> R<Value> {
        let has_args = args.len() > 1 || fin.is_some();
        let missing = self.set.options.missing_key;
        let pos = node.pos();
        let no_args = |s: &Self| -> R<()> {
            if has_args {
                return Err(s.error(
                    pos,
                    node,
                    format!("{name} has arguments but cannot be invoked as function"),
                ));
            }
            Ok(())
        };
        let missing_key = |s: &Self, zero: Value| -> R<Value> {
            match missing {
                MissingKey::NoValue => Ok(Value::Nil),
                MissingKey::Zero => Ok(zero),
                MissingKey::Error => {
                    Err(s.error(pos, node, format!("map has no entry for key {name:?}")))
                }
            }
        };
        match &recv {
            Value::Nil => {
                if missing == MissingKey::Error {
                    return Err(self.error(
                        pos,
                        node,
                        format!("nil data; no entry for key {name:?}"),
                    ));
                }
                Ok(Value::Nil)
            }
            Value::Struct(s) => match s.field(name) {
                Some(v) => {
                    no_args(self)?;
                    Ok(v.clone())
                }
                None => Err(self.error(
                    pos,
                    node,
                    format!("can't evaluate field {name} in type {}", s.type_name),
                )),
            },
            Value::Map(m) => {
                no_args(self)?;
                match m.get(name) {
                    Some(v) => Ok(v.clone()),
                    None => missing_key(self, Value::Nil),
                }
            }
            Value::StrMap(m) => {
                no_args(self)?;
                match m.get(name) {
                    Some(v) => Ok(Value::String(v.clone())),
                    None => missing_key(self, Value::String(String::new())),
                }
            }
            Value::Time(_) | Value::Duration(_) => {
                let mut argv = Vec::new();
                for a in args.iter().skip(1) {
                    argv.push(self.eval_arg(dot, a)?);
                }
                argv.extend(fin);
                match method(&recv, name, &argv) {
                    Some(Ok(v)) => Ok(v),
                    Some(Err(e)) => {
                        Err(self.error(pos, node, format!("error calling {name}: {e}")))
                    }
                    None => Err(self.error(
                        pos,
                        node,
                        format!("can't evaluate field {name} in type {}", recv.type_name()),
                    )),
                }
            }
            Value::Named(n) => {
                // Go looks for a method first, then treats the value as what it is.
                let mut argv = Vec::new();
                for a in args.iter().skip(1) {
                    argv.push(self.eval_arg(dot, a)?);
                }
                argv.extend(fin.clone());
                match (n.methods)(&n.value, name, &argv) {
                    Some(Ok(v)) => Ok(v),
                    Some(Err(e)) => {
                        Err(self.error(pos, node, format!("error calling {name}: {e}")))
                    }
                    None => self.eval_field(dot, name, node, args, fin, n.value.clone()),
                }
            }
            other => Err(self.error(
                pos,
                node,
                format!("can't evaluate field {name} in type {}", other.type_name()),
            )),
        }
    }

    /// Calls function `name`. Like Go, argument-count errors point at the identifier and
    /// the function's own error at the whole command (`cmd`).
    fn eval_function(
        &mut self,
        dot: &Value,
        node: &'a Operand,
        cmd: &dyn fmt::Display,
        name: &str,
        args: &'a [Operand],
        fin: Option<Value>,
    ) -> R<Value> {
        let pos = node.pos();
        let user = self.funcs.get(name).cloned();
        if user.is_none() && !builtins::is_builtin(name) {
            return Err(self.error(pos, node, format!("{name:?} is not a defined function")));
        }
        if user.is_none() && (name == "and" || name == "or") {
            // Evaluated lazily: the first value that decides the result is returned.
            let n = args.len() - 1 + usize::from(fin.is_some());
            if n == 0 {
                return Err(self.error(
                    pos,
                    node,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            let mut last = Value::Nil;
            for a in &args[1..] {
                last = self.eval_arg(dot, a)?;
                if last.is_true() == (name == "or") {
                    return Ok(last);
                }
            }
            if let Some(f) = fin {
                last = f;
            }
            return Ok(last);
        }
        let mut argv = Vec::with_capacity(args.len());
        for a in &args[1..] {
            argv.push(self.eval_arg(dot, a)?);
        }
        argv.extend(fin);
        let result = match user {
            Some(f) => {
                // Functions take plain values, as Go converts a named type to the
                // parameter's underlying type.
                let argv: Vec<Value> = argv.iter().map(|a| a.underlying().clone()).collect();
                f(&argv)
            }
            None => {
                if let Some(e) = builtins::arity_error(name, &argv) {
                    return Err(self.error(pos, node, e));
                }
                builtins::call(name, &argv)
            }
        };
        result.map_err(|e| self.error(pos, cmd, format!("error calling {name}: {e}")))
    }
}

/// `{{template "name" pipe}}` as Go shows it in an error.
struct TemplateCall<'a>(&'a str, Option<&'a Pipe>);

impl fmt::Display for TemplateCall<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(p) => write!(f, "{{{{template {:?} {p}}}}}", self.0),
            None => write!(f, "{{{{template {:?}}}}}", self.0),
        }
    }
}

/// The methods of Go's `time.Time` and `time.Duration` that templates commonly call.
fn method(recv: &Value, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
    let no_args = |v: Value| -> Result<Value, String> {
        if args.is_empty() {
            Ok(v)
        } else {
            Err(format!(
                "wrong number of args for {name}: want 0 got {}",
                args.len()
            ))
        }
    };
    Some(match (recv, name) {
        (Value::Time(t), "Unix") => no_args(Value::Int(t.secs)),
        (Value::Time(t), "UnixMilli") => no_args(Value::Int(
            t.secs
                .saturating_mul(1000)
                .saturating_add(i64::from(t.nanos / 1_000_000)),
        )),
        (Value::Time(t), "UnixNano") => no_args(Value::Int(
            t.secs
                .saturating_mul(1_000_000_000)
                .saturating_add(i64::from(t.nanos)),
        )),
        (Value::Time(t), "UTC" | "Local") => no_args(Value::Time(*t)),
        (Value::Time(t), "String") => no_args(Value::String(t.to_string())),
        (Value::Time(t), "IsZero") => no_args(Value::Bool(*t == ZERO_TIME)),
        (Value::Time(t), "Format") => match args {
            [Value::String(layout)] => Ok(Value::String(crate::timefmt::format(t, layout))),
            _ => Err("Format wants one string argument".into()),
        },
        (Value::Duration(d), "Seconds") => no_args(Value::Float(d.0 as f64 / 1e9)),
        (Value::Duration(d), "Minutes") => no_args(Value::Float(d.0 as f64 / 6e10)),
        (Value::Duration(d), "Hours") => no_args(Value::Float(d.0 as f64 / 3.6e12)),
        (Value::Duration(d), "Milliseconds") => no_args(Value::Int(d.0 / 1_000_000)),
        (Value::Duration(d), "Nanoseconds") => no_args(Value::Int(d.0)),
        (Value::Duration(d), "String") => no_args(Value::String(Duration(d.0).to_string())),
        _ => return None,
    })
}

/// Go's zero `time.Time` (year 1), which `IsZero` tests for.
const ZERO_TIME: Time = Time {
    secs: -62_135_596_800,
    nanos: 0,
};

/// Walks every node so that [`Templates::check_functions`] can report a call to an
/// undefined function at load time, as Go's parser does.
pub(crate) fn check_functions(tree: &Tree, funcs: &Funcs) -> Result<(), Error> {
    fn op(tree: &Tree, funcs: &Funcs, o: &Operand) -> Result<(), Error> {
        match o {
            Operand::Identifier { pos, name } => {
                if funcs.get(name).is_none() && !builtins::is_builtin(name) {
                    return Err(Error::Parse(format!(
                        "template: {}:{}: function {name:?} not defined",
                        tree.parse_name,
                        tree.line(*pos)
                    )));
                }
                Ok(())
            }
            Operand::Chain { node, .. } => op(tree, funcs, node),
            Operand::Pipe(p) => pipe(tree, funcs, p),
            _ => Ok(()),
        }
    }
    fn pipe(tree: &Tree, funcs: &Funcs, p: &Pipe) -> Result<(), Error> {
        for c in &p.cmds {
            for a in &c.args {
                op(tree, funcs, a)?;
            }
        }
        Ok(())
    }
    fn list(tree: &Tree, funcs: &Funcs, l: &[Node]) -> Result<(), Error> {
        for n in l {
            match n {
                Node::Action(p) => pipe(tree, funcs, p)?,
                Node::If(c) | Node::With(c) | Node::Range(c) => {
                    pipe(tree, funcs, &c.pipe)?;
                    list(tree, funcs, &c.list)?;
                    if let Some(e) = &c.else_list {
                        list(tree, funcs, e)?;
                    }
                }
                Node::Template { pipe: Some(p), .. } => pipe(tree, funcs, p)?,
                _ => {}
            }
        }
        Ok(())
    }
    list(tree, funcs, &tree.root)
}
