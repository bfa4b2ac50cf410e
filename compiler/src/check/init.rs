//! Checking an initialiser written as a layer option (`init = normal(stddev = 0.02)`) against the schema
//! (`schema::INITIALISERS`): its name, its options (E0201), their values and ranges (E0202), and that it is an
//! initialiser at all (E0411 for `init = adam()`). The result is the canonical text the runtime draws from
//! (`runtime/src/train/init.rs`): the name and the options given, by name (`normal(stddev=0.02)`).

use nnc_syntax::ast::{Expr, ExprKind};
use nnc_syntax::{Code, Diagnostic, Span};

use super::{Body, Checker};
use crate::layers;
use crate::schema::{self, FnKind, TrainFn, ValueKind};
use crate::types::{Origin, Value};

impl<'p> Checker<'p> {
    /// Evaluates the value of the initialiser option `option`; `Value::Str` of the canonical text, or
    /// `Value::Unknown` after reporting.
    pub(crate) fn eval_init(&mut self, body: &mut Body, option: &str, e: &'p Expr) -> Value {
        let (name, span, args) = match &e.kind {
            ExprKind::Name(n) => (n.name.as_str(), n.span, &[][..]),
            ExprKind::Call(c) => (c.callee.name.as_str(), c.callee.span, c.args.as_slice()),
            ExprKind::Str(s) => (s.as_str(), e.span, &[][..]),
            _ => ("", e.span, &[][..]),
        };
        let Some(f) = schema::lookup_initialiser(name) else {
            match schema::lookup_fn(name) {
                // `init = adam()`: a callable of another kind.
                Some(got) => self.wrong_kind(got, FnKind::Initialiser, option, span, body.file),
                None => self.unknown_initialiser(name, span, body),
            }
            for a in args {
                self.eval_in(body, &a.value, true);
            }
            return Value::Unknown;
        };
        let mut given: Vec<(&'static str, Value, Origin)> = Vec::new();
        let mut ok = true;
        let mut positional = 0;
        for a in args {
            let at = body.origin(a.value.span);
            let v = self.eval_in(body, &a.value, true);
            let opt = match &a.name {
                Some(n) => match f.option(&n.name) {
                    Some(o) => o,
                    None => {
                        self.unknown_init_option(f, &n.name, n.span, body);
                        ok = false;
                        continue;
                    }
                },
                None if positional < f.positional => {
                    positional += 1;
                    &f.options[positional - 1]
                }
                None => {
                    let msg = format!("`{}` takes {} positional argument(s)", f.name, f.positional);
                    self.report(
                        Diagnostic::new(Code::TooManyArguments, at.file, at.span, msg).with_label("extra argument"),
                    );
                    ok = false;
                    continue;
                }
            };
            if given.iter().any(|(n, ..)| *n == opt.name) {
                let msg = format!("`{}` is given twice", opt.name);
                self.report(Diagnostic::new(Code::DuplicateArgument, at.file, at.span, msg).with_label("again here"));
                ok = false;
                continue;
            }
            ok &= self.check_init_value(f, opt, &v, at);
            given.push((opt.name, v, at));
        }
        if ok && !self.init_bounds_agree(f, &given, span, body) {
            ok = false;
        }
        if !ok {
            return Value::Unknown;
        }
        Value::Str(canonical(f, &given))
    }

    fn unknown_initialiser(&mut self, name: &str, span: Span, body: &Body) {
        let names: Vec<&str> = schema::initialiser_names().collect();
        let mut d = Diagnostic::new(Code::WrongArgumentType, body.file, span, format!("unknown initialiser `{name}`"))
            .with_label("not an initialiser")
            .with_note(format!("initialisers: {}", names.join(", ")));
        if let Some(s) = layers::suggest(name, names.iter().copied()) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        self.report(d);
    }

    fn unknown_init_option(&mut self, f: &TrainFn, name: &str, span: Span, body: &Body) {
        let mut d =
            Diagnostic::new(Code::UnknownOption, body.file, span, format!("`{}` has no option `{name}`", f.name))
                .with_label("unknown option");
        d = if f.options.is_empty() {
            d.with_note(format!("`{}` takes no options", f.name))
        } else {
            d.with_note(format!("`{}` takes: {}", f.name, f.option_names().collect::<Vec<_>>().join(", ")))
        };
        if let Some(help) = crate::aliases::help(name, f.option_names()) {
            d = d.with_help(help);
        }
        self.report(d);
    }

    /// A number of the option's kind within its range, or one of its words (E0202, E0203 for another kind).
    fn check_init_value(&mut self, f: &TrainFn, opt: &schema::Opt, v: &Value, at: Origin) -> bool {
        if v.is_unknown() {
            return false;
        }
        let out_of_range = |allowed: String| {
            Diagnostic::new(
                Code::OptionOutOfRange,
                at.file,
                at.span,
                format!("`{}` of `{}` must be {allowed}, found {v}", opt.name, f.name),
            )
            .with_label(format!("must be {allowed}"))
        };
        match opt.value {
            ValueKind::Choice(words) => {
                let word = word_of(v).unwrap_or("");
                if !words.contains(&word) {
                    let allowed = format!("one of {}", words.join(", "));
                    self.report(out_of_range(allowed));
                    return false;
                }
            }
            _ => {
                let Some(x) = v.as_f64() else {
                    let msg = format!("`{}` of `{}` must be a number, found {}", opt.name, f.name, v.kind_name());
                    self.report(
                        Diagnostic::new(Code::WrongArgumentType, at.file, at.span, msg).with_label("expected a number"),
                    );
                    return false;
                };
                let fits = match opt.range {
                    Some(r) => r.contains(x),
                    None => x.is_finite(),
                };
                if !fits {
                    self.report(out_of_range(opt.range.map_or("a finite number", |r| r.describe()).to_string()));
                    return false;
                }
            }
        }
        true
    }

    /// `uniform`: `limit` stands for both bounds, so it goes alone; `minval` must lie below `maxval`.
    fn init_bounds_agree(
        &mut self,
        f: &TrainFn,
        given: &[(&'static str, Value, Origin)],
        span: Span,
        body: &Body,
    ) -> bool {
        let get = |n: &str| given.iter().find(|(g, ..)| *g == n);
        if let (Some((_, _, at)), Some(_)) = (get("limit"), get("minval").or_else(|| get("maxval"))) {
            let msg =
                format!("`limit` of `{}` stands for `minval = -limit, maxval = limit`: give one or the other", f.name);
            self.report(Diagnostic::new(Code::OptionOutOfRange, at.file, at.span, msg).with_label("limit and bounds"));
            return false;
        }
        if f.option("minval").is_some() && f.option("maxval").is_some() {
            let bound = |n: &str| {
                get(n).and_then(|(_, v, _)| v.as_f64()).or_else(|| schema::default_f64(f.name, n)).unwrap_or(0.0)
            };
            let (lo, hi) = (bound("minval"), bound("maxval"));
            if lo >= hi {
                let at = get("maxval").or_else(|| get("minval")).map_or(body.origin(span), |(_, _, o)| *o);
                let msg = format!("`{}` needs minval < maxval, found minval = {lo}, maxval = {hi}", f.name);
                self.report(
                    Diagnostic::new(Code::OptionOutOfRange, at.file, at.span, msg).with_label("must exceed minval"),
                );
                return false;
            }
        }
        true
    }
}

/// `name` or `name(option=value, …)` with the options as given: numbers exactly (`{:?}` of an f64 reads back to
/// the same value), words as written. The runtime fills the rest from the schema's defaults.
fn canonical(f: &TrainFn, given: &[(&'static str, Value, Origin)]) -> String {
    if given.is_empty() {
        return f.name.to_string();
    }
    let args: Vec<String> = given
        .iter()
        .map(|(n, v, _)| match (v.as_f64(), word_of(v)) {
            (Some(x), _) => format!("{n}={x:?}"),
            (None, Some(w)) => format!("{n}={w}"),
            (None, None) => format!("{n}={v}"),
        })
        .collect();
    format!("{}({})", f.name, args.join(", "))
}

/// A bare word as written: `fan_in` is a mode, but `normal` and `uniform` also name tensor functions, which
/// evaluate to layer values without arguments.
fn word_of(v: &Value) -> Option<&str> {
    match v {
        Value::Mode(w) | Value::Str(w) => Some(w),
        Value::Layer(l) if l.args.is_empty() => Some(l.layer.name),
        _ => None,
    }
}
