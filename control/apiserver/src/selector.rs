//! Label and field selectors with kube-apiserver's grammar, matching rules and
//! error texts.
//!
//! kubectl and client libraries send `labelSelector` / `fieldSelector` query
//! parameters and show the server's 400 message verbatim, so parsing follows
//! `k8s.io/apimachinery/pkg/labels.Parse` and `fields.ParseSelector` token for
//! token: the same accepted inputs, the same normalisation (requirements
//! sorted by key, terms sorted as strings) and the same error strings.  Field
//! selectors are further limited per kind by the field label conversion
//! functions kube registers, which [`supported_fields`] and
//! [`unsupported_field_message_for`] reproduce, and [`field_value`] extracts
//! the values the way the registries' `GetAttrs` functions do.

use std::fmt;

use serde_json::{Map, Value};

use crate::go_format::go_quote;

// ---------------------------------------------------------------------------
// Label selectors
// ---------------------------------------------------------------------------

/// A parsed label selector (kube's labels.Parse syntax).
///
/// The default value selects everything.  [`LabelSelector::from_json`] can also
/// produce a selector that selects nothing (a null `metav1.LabelSelector`).
/// `Display` renders it as kube's `Selector.String()` does, which is what the
/// SELECTOR columns of server-side tables show.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    // kube distinguishes a nil metav1.LabelSelector (labels.Nothing) from an
    // empty one (labels.Everything); only from_json can produce the former.
    nothing: bool,
}

#[derive(Clone, Debug, PartialEq)]
struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    In,
    NotIn,
    Equals,
    DoubleEquals,
    NotEquals,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

impl LabelSelector {
    /// Parses `text` with labels.Parse's grammar; `""` selects everything.
    ///
    /// Errors carry kube's wording, e.g.
    /// `unable to parse requirement: found '', expected: in, notin, =, ==, !=, gt, lt`.
    pub fn parse(text: &str) -> Result<LabelSelector, String> {
        // Go's lexer reads a NUL byte as end of input.
        let text = match text.find('\0') {
            Some(end) => &text[..end],
            None => text,
        };
        let tokens = lex(text);
        let mut parser = Parser { tokens, pos: 0 };
        let mut requirements = parser.parse()?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// Whether the selector places no restriction (it selects everything).
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// Whether an object with these `metadata.labels` is selected; absent
    /// labels behave as an empty set and non-string values as absent keys.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        if self.nothing {
            return false;
        }
        let lookup = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.requirements.iter().all(|r| r.matches(lookup(&r.key)))
    }

    /// Builds the selector of a `metav1.LabelSelector` JSON object
    /// (`{matchLabels, matchExpressions[{key,operator,values}]}`), as
    /// `metav1.LabelSelectorAsSelector` does: null selects nothing, `{}`
    /// selects everything, and a bad operator reads
    /// `"Foo" is not a valid label selector operator`.
    pub fn from_json(selector: &Value) -> Result<LabelSelector, String> {
        let object = match selector {
            Value::Null => {
                return Ok(LabelSelector {
                    requirements: Vec::new(),
                    nothing: true,
                });
            }
            Value::Object(object) => object,
            other => return Err(format!("label selector must be an object, not {other}")),
        };
        let mut requirements = Vec::new();
        match object.get("matchLabels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(labels)) => {
                for (key, value) in labels {
                    let value = value
                        .as_str()
                        .ok_or_else(|| format!("matchLabels[{key}] must be a string"))?;
                    requirements.push(new_requirement(key, Op::Equals, vec![value.to_string()])?);
                }
            }
            Some(_) => return Err("matchLabels must be an object".to_string()),
        }
        match object.get("matchExpressions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(expressions)) => {
                for expression in expressions {
                    requirements.push(expression_requirement(expression)?);
                }
            }
            Some(_) => return Err("matchExpressions must be an array".to_string()),
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }
}

fn expression_requirement(expression: &Value) -> Result<Requirement, String> {
    let key = expression.get("key").and_then(Value::as_str).unwrap_or("");
    let operator = expression
        .get("operator")
        .and_then(Value::as_str)
        .unwrap_or("");
    let op = match operator {
        "In" => Op::In,
        "NotIn" => Op::NotIn,
        "Exists" => Op::Exists,
        "DoesNotExist" => Op::DoesNotExist,
        other => {
            return Err(format!(
                "{} is not a valid label selector operator",
                go_quote(other)
            ));
        }
    };
    let values = match expression.get("values") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(values)) => values
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("values of {key} must be strings"))
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(format!("values of {key} must be an array")),
    };
    new_requirement(key, op, values)
}

impl Requirement {
    fn matches(&self, value: Option<&str>) -> bool {
        match self.op {
            Op::In | Op::Equals | Op::DoubleEquals => value.is_some_and(|v| self.has(v)),
            Op::NotIn | Op::NotEquals => value.is_none_or(|v| !self.has(v)),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
            Op::GreaterThan | Op::LessThan => {
                let Some(actual) = value.and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let [wanted] = self.values.as_slice() else {
                    return false;
                };
                let Ok(wanted) = wanted.parse::<i64>() else {
                    return false;
                };
                if self.op == Op::GreaterThan {
                    actual > wanted
                } else {
                    actual < wanted
                }
            }
        }
    }

    fn has(&self, value: &str) -> bool {
        self.values.iter().any(|v| v == value)
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.op == Op::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let (operator, parenthesised) = match self.op {
            Op::Exists | Op::DoesNotExist => return Ok(()),
            Op::Equals => ("=", false),
            Op::DoubleEquals => ("==", false),
            Op::NotEquals => ("!=", false),
            Op::In => (" in ", true),
            Op::NotIn => (" notin ", true),
            Op::GreaterThan => (">", false),
            Op::LessThan => ("<", false),
        };
        f.write_str(operator)?;
        if parenthesised {
            f.write_str("(")?;
        }
        let mut values = self.values.clone();
        values.sort();
        f.write_str(&values.join(","))?;
        if parenthesised {
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl fmt::Display for LabelSelector {
    /// kube's `Selector.String()`: requirements joined by `,`, values of set
    /// requirements sorted; both the everything and nothing selectors print "".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, requirement) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

/// `labels.NewRequirement`: validates and collects every problem the way kube
/// aggregates them.  Both callers pass kube's nil field path, so a bad key is
/// reported under `key` (labels.Parse rejects bad keys earlier, under `<nil>`).
fn new_requirement(key: &str, op: Op, values: Vec<String>) -> Result<Requirement, String> {
    let mut errors = Vec::new();
    let key_errors = label_key_errors(key);
    if !key_errors.is_empty() {
        errors.push(invalid("key", &go_quote(key), &key_errors.join("; ")));
    }
    match op {
        Op::In | Op::NotIn => {
            if values.is_empty() {
                errors.push(invalid(
                    "values",
                    &go_string_slice(&values),
                    "for 'in', 'notin' operators, values set can't be empty",
                ));
            }
        }
        Op::Equals | Op::DoubleEquals | Op::NotEquals => {
            if values.len() != 1 {
                errors.push(invalid(
                    "values",
                    &go_string_slice(&values),
                    "exact-match compatibility requires one single value",
                ));
            }
        }
        Op::Exists | Op::DoesNotExist => {
            if !values.is_empty() {
                errors.push(invalid(
                    "values",
                    &go_string_slice(&values),
                    "values set must be empty for exists and does not exist",
                ));
            }
        }
        Op::GreaterThan | Op::LessThan => {
            if values.len() != 1 {
                errors.push(invalid(
                    "values",
                    &go_string_slice(&values),
                    "for 'Gt', 'Lt' operators, exactly one value is required",
                ));
            }
            for (i, value) in values.iter().enumerate() {
                if value.parse::<i64>().is_err() {
                    errors.push(invalid(
                        &format!("values[{i}]"),
                        &go_quote(value),
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    ));
                }
            }
        }
    }
    for (i, value) in values.iter().enumerate() {
        let value_errors = label_value_errors(value);
        if !value_errors.is_empty() {
            errors.push(invalid(
                &format!("values[{i}][{key}]"),
                &go_quote(value),
                &value_errors.join("; "),
            ));
        }
    }
    if errors.is_empty() {
        Ok(Requirement {
            key: key.to_string(),
            op,
            values,
        })
    } else {
        Err(aggregate(errors))
    }
}

/// `field.Invalid(path, value, detail).Error()`.
fn invalid(path: &str, quoted_value: &str, detail: &str) -> String {
    format!("{path}: Invalid value: {quoted_value}: {detail}")
}

/// `utilerrors.NewAggregate(...).Error()`: one message as is, several in
/// brackets, duplicates dropped.
fn aggregate(errors: Vec<String>) -> String {
    let mut unique: Vec<String> = Vec::new();
    for error in errors {
        if !unique.contains(&error) {
            unique.push(error);
        }
    }
    if unique.len() == 1 {
        unique.remove(0)
    } else {
        format!("[{}]", unique.join(", "))
    }
}

// --- lexer -----------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    Error,
    End,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn keyword(text: &str) -> Option<Tok> {
    Some(match text {
        ")" => Tok::ClosedPar,
        "," => Tok::Comma,
        "!" => Tok::DoesNotExist,
        "==" => Tok::DoubleEquals,
        "=" => Tok::Equals,
        ">" => Tok::GreaterThan,
        "in" => Tok::In,
        "<" => Tok::LessThan,
        "!=" => Tok::NotEquals,
        "notin" => Tok::NotIn,
        "(" => Tok::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(byte: u8) -> bool {
    matches!(byte, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Tokenises the whole input up to and including the end token.  Literals are
/// slices of `text`; they always split at ASCII bytes, so they stay UTF-8.
fn lex(text: &str) -> Vec<(Tok, String)> {
    let bytes = text.as_bytes();
    let mut pos = 0;
    let mut tokens = Vec::new();
    loop {
        while pos < bytes.len() && is_whitespace(bytes[pos]) {
            pos += 1;
        }
        if pos >= bytes.len() {
            tokens.push((Tok::End, String::new()));
            return tokens;
        }
        if is_special(bytes[pos]) {
            // Longest run of symbols that still forms an operator ("!=" but
            // "=!" is "=" followed by "!").
            let start = pos;
            let mut last: Option<(Tok, usize)> = None;
            let mut end = pos;
            while end < bytes.len() && is_special(bytes[end]) {
                end += 1;
                match keyword(&text[start..end]) {
                    Some(tok) => last = Some((tok, end)),
                    None if last.is_some() => break,
                    None => {}
                }
            }
            match last {
                Some((tok, stop)) => {
                    tokens.push((tok, text[start..stop].to_string()));
                    pos = stop;
                }
                None => {
                    tokens.push((
                        Tok::Error,
                        format!("error expected: keyword found '{}'", &text[start..end]),
                    ));
                    pos = end;
                }
            }
        } else {
            let start = pos;
            while pos < bytes.len() && !is_special(bytes[pos]) && !is_whitespace(bytes[pos]) {
                pos += 1;
            }
            let literal = &text[start..pos];
            tokens.push((
                keyword(literal).unwrap_or(Tok::Identifier),
                literal.to_string(),
            ));
        }
    }
}

// --- parser ----------------------------------------------------------------

struct Parser {
    tokens: Vec<(Tok, String)>,
    pos: usize,
}

/// Whether `in`/`notin` read as keywords (after a key) or as plain values.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

impl Parser {
    fn peek(&self, context: Context) -> (Tok, String) {
        let (tok, literal) = self
            .tokens
            .get(self.pos)
            .cloned()
            .unwrap_or((Tok::End, String::new()));
        (contextual(tok, context), literal)
    }

    fn next(&mut self, context: Context) -> (Tok, String) {
        let item = self.peek(context);
        self.pos += 1;
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            let (tok, literal) = self.peek(Context::Values);
            match tok {
                Tok::Identifier | Tok::DoesNotExist => {
                    let requirement = self
                        .requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(requirement);
                    let (tok, literal) = self.next(Context::Values);
                    match tok {
                        Tok::End => return Ok(requirements),
                        Tok::Comma => {
                            let (tok, literal) = self.peek(Context::Values);
                            if tok != Tok::Identifier && tok != Tok::DoesNotExist {
                                return Err(format!(
                                    "found '{literal}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => {
                            return Err(format!(
                                "found '{literal}', expected: ',' or 'end of string'"
                            ));
                        }
                    }
                }
                Tok::End => return Ok(requirements),
                _ => {
                    return Err(format!(
                        "found '{literal}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let (key, inferred) = self.key_and_inferred_operator()?;
        if let Some(op @ (Op::Exists | Op::DoesNotExist)) = inferred {
            return new_requirement(&key, op, Vec::new());
        }
        let op = self.operator()?;
        let values = match op {
            Op::In | Op::NotIn => self.value_set()?,
            _ => self.exact_value()?,
        };
        new_requirement(&key, op, values)
    }

    fn key_and_inferred_operator(&mut self) -> Result<(String, Option<Op>), String> {
        let mut op = None;
        let (mut tok, mut literal) = self.next(Context::Values);
        if tok == Tok::DoesNotExist {
            op = Some(Op::DoesNotExist);
            (tok, literal) = self.next(Context::Values);
        }
        if tok != Tok::Identifier {
            return Err(format!("found '{literal}', expected: identifier"));
        }
        let key_errors = label_key_errors(&literal);
        if !key_errors.is_empty() {
            // labels.Parse validates with a nil field path, printed "<nil>".
            return Err(invalid(
                "<nil>",
                &go_quote(&literal),
                &key_errors.join("; "),
            ));
        }
        let (next, _) = self.peek(Context::Values);
        if (next == Tok::End || next == Tok::Comma) && op.is_none() {
            op = Some(Op::Exists);
        }
        Ok((literal, op))
    }

    fn operator(&mut self) -> Result<Op, String> {
        let (tok, literal) = self.next(Context::KeyAndOperator);
        Ok(match tok {
            Tok::In => Op::In,
            Tok::Equals => Op::Equals,
            Tok::DoubleEquals => Op::DoubleEquals,
            Tok::GreaterThan => Op::GreaterThan,
            Tok::LessThan => Op::LessThan,
            Tok::NotIn => Op::NotIn,
            Tok::NotEquals => Op::NotEquals,
            _ => return Err(format!("found '{literal}', expected: {BINARY_OPERATORS}")),
        })
    }

    /// `(a,b,c)`; kube keeps the values as a sorted set, so duplicates merge
    /// and empty entries (`(,a)`, `()`) mean the empty value.
    fn value_set(&mut self) -> Result<Vec<String>, String> {
        let (tok, literal) = self.next(Context::Values);
        if tok != Tok::OpenPar {
            return Err(format!("found '{literal}' expected: '('"));
        }
        let (tok, literal) = self.peek(Context::Values);
        let mut set = match tok {
            Tok::Identifier | Tok::Comma => {
                let set = self.identifier_list()?;
                let (tok, _) = self.next(Context::Values);
                if tok != Tok::ClosedPar {
                    return Err(format!("found '{literal}', expected: ')'"));
                }
                set
            }
            Tok::ClosedPar => {
                self.next(Context::Values);
                vec![String::new()]
            }
            _ => {
                return Err(format!(
                    "found '{literal}', expected: ',', ')' or identifier"
                ));
            }
        };
        set.sort();
        set.dedup();
        Ok(set)
    }

    fn identifier_list(&mut self) -> Result<Vec<String>, String> {
        let mut set: Vec<String> = Vec::new();
        loop {
            let (tok, literal) = self.next(Context::Values);
            match tok {
                Tok::Identifier => {
                    set.push(literal);
                    let (tok, literal) = self.peek(Context::Values);
                    match tok {
                        Tok::Comma => continue,
                        Tok::ClosedPar => return Ok(set),
                        _ => return Err(format!("found '{literal}', expected: ',' or ')'")),
                    }
                }
                Tok::Comma => {
                    if set.is_empty() {
                        set.push(String::new());
                    }
                    let (tok, _) = self.peek(Context::Values);
                    if tok == Tok::ClosedPar {
                        set.push(String::new());
                        return Ok(set);
                    }
                    if tok == Tok::Comma {
                        set.push(String::new());
                    }
                }
                _ => return Err(format!("found '{literal}', expected: ',', or identifier")),
            }
        }
    }

    fn exact_value(&mut self) -> Result<Vec<String>, String> {
        let (tok, _) = self.peek(Context::Values);
        if tok == Tok::End || tok == Tok::Comma {
            return Ok(vec![String::new()]);
        }
        let (tok, literal) = self.next(Context::Values);
        if tok == Tok::Identifier {
            Ok(vec![literal])
        } else {
            Err(format!("found '{literal}', expected: identifier"))
        }
    }
}

fn contextual(tok: Tok, context: Context) -> Tok {
    match (tok, context) {
        (Tok::In | Tok::NotIn, Context::Values) => Tok::Identifier,
        _ => tok,
    }
}

// --- validation (k8s.io/apimachinery/pkg/util/validation) -------------------

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";

/// `validation.RegexError`, including its doubled space before "or".
fn regex_error(message: &str, format: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{message} (regex used for validation is '{format}')");
    }
    let mut text = format!("{message} (e.g. ");
    for (i, example) in examples.iter().enumerate() {
        if i > 0 {
            text.push_str(" or ");
        }
        text.push_str(&format!("'{example}', "));
    }
    text.push_str(&format!("regex used for validation is '{format}')"));
    text
}

fn is_qualified_name_part(name: &str) -> bool {
    let bytes = name.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

fn is_dns1123_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            is_lower_alnum(*first)
                && is_lower_alnum(*last)
                && bytes.iter().all(|b| is_lower_alnum(*b) || *b == b'-')
        }
        _ => false,
    }
}

fn is_lower_alnum(byte: u8) -> bool {
    byte.is_ascii_lowercase() || byte.is_ascii_digit()
}

fn dns1123_subdomain_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 253 {
        errors.push("must be no more than 253 characters".to_string());
    }
    if !value.split('.').all(is_dns1123_label) {
        errors.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errors
}

/// `validation.IsQualifiedName`: the rules for a label key.
fn label_key_errors(key: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_string());
            } else {
                errors.extend(
                    dns1123_subdomain_errors(prefix)
                        .into_iter()
                        .map(|e| format!("prefix part {e}")),
                );
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_ERR,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            )];
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errors.push("name part must be no more than 63 characters".to_string());
    }
    if !is_qualified_name_part(name) {
        errors.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errors
}

/// `validation.IsValidLabelValue`.
fn label_value_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push("must be no more than 63 characters".to_string());
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errors.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errors
}

/// Go's `%#v` of a `[]string`.
fn go_string_slice(values: &[String]) -> String {
    let items: Vec<String> = values.iter().map(|v| go_quote(v)).collect();
    format!("[]string{{{}}}", items.join(", "))
}

// ---------------------------------------------------------------------------
// Field selectors
// ---------------------------------------------------------------------------

/// A parsed field selector (fields.ParseSelector syntax: `a=b,c!=d`, `==` also allowed, values may escape `\,` `\=` `\\`).
///
/// Terms are kept in kube's order (sorted as raw strings), which decides
/// which unsupported field an error names first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

#[derive(Clone, Debug, PartialEq)]
struct FieldTerm {
    field: String,
    value: String,
    negated: bool,
}

impl FieldSelector {
    /// Parses `text`; `""` selects everything.  Errors read like kube's, e.g.
    /// `invalid selector: 'a'; can't understand 'a'` or
    /// `invalid field selector: invalid escape sequence: \x`.
    pub fn parse(text: &str) -> Result<FieldSelector, String> {
        let mut parts = split_terms(text);
        parts.sort();
        let mut terms = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let (field, operator, raw_value) = split_term(part)
                .ok_or_else(|| format!("invalid selector: '{text}'; can't understand '{part}'"))?;
            terms.push(FieldTerm {
                field: field.to_string(),
                value: unescape_value(raw_value)?,
                negated: operator == "!=",
            });
        }
        Ok(FieldSelector { terms })
    }

    /// Whether the selector places no restriction.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Every field named, to check them against the resource's supported fields before matching.
    ///
    /// In kube's evaluation order and without repeats, so the first
    /// unsupported one is the one kube-apiserver would report.
    pub fn fields(&self) -> Vec<&str> {
        let mut fields: Vec<&str> = Vec::new();
        for term in &self.terms {
            if !fields.contains(&term.field.as_str()) {
                fields.push(&term.field);
            }
        }
        fields
    }

    /// The value required by an `=`/`==` term on `field`, if any (for an index lookup such as spec.nodeName).
    pub fn exact(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| !t.negated && t.field == field)
            .map(|t| t.value.as_str())
    }

    /// Whether `object` satisfies every term; `value_of(field)` gives the object's value of a field.
    ///
    /// `None` from `value_of` counts as the empty string, as a missing key
    /// does in kube's `fields.Set`.
    pub fn matches(&self, value_of: impl Fn(&str) -> Option<String>) -> bool {
        self.terms.iter().all(|term| {
            let actual = value_of(&term.field).unwrap_or_default();
            (actual == term.value) != term.negated
        })
    }
}

impl fmt::Display for FieldSelector {
    /// kube's `Selector.String()`: terms joined by `,`, values unescaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, term) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let operator = if term.negated { "!=" } else { "=" };
            write!(f, "{}{operator}{}", term.field, term.value)?;
        }
        Ok(())
    }
}

/// Splits on commas not preceded by a backslash escape, keeping the escapes.
fn split_terms(text: &str) -> Vec<&str> {
    if text.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_escape = false;
    for (i, c) in text.char_indices() {
        if in_escape {
            in_escape = false;
        } else if c == '\\' {
            in_escape = true;
        } else if c == ',' {
            terms.push(&text[start..i]);
            start = i + 1;
        }
    }
    terms.push(&text[start..]);
    terms
}

/// The first operator occurrence splits the term; at each position `!=` wins
/// over `==`, which wins over `=`, so `a==b` never leaves `=b` as the value.
fn split_term(term: &str) -> Option<(&str, &str, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for operator in ["!=", "==", "="] {
            if let Some(value) = rest.strip_prefix(operator) {
                return Some((&term[..i], operator, value));
            }
        }
    }
    None
}

fn unescape_value(raw: &str) -> Result<String, String> {
    if !raw.contains(['\\', ',', '=']) {
        return Ok(raw.to_string());
    }
    let mut value = String::with_capacity(raw.len());
    let mut in_escape = false;
    for c in raw.chars() {
        if in_escape {
            match c {
                '\\' | ',' | '=' => value.push(c),
                other => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{other}"
                    ));
                }
            }
            in_escape = false;
            continue;
        }
        match c {
            '\\' => in_escape = true,
            // Go formats the rune with %v, i.e. as its code point number.
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                ));
            }
            other => value.push(other),
        }
    }
    if in_escape {
        return Err("invalid field selector: invalid escape sequence: \\".to_string());
    }
    Ok(value)
}

// ---------------------------------------------------------------------------
// Per-kind field support
// ---------------------------------------------------------------------------

const META_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

/// The fields a field selector may name for `kind` (e.g. "Pod"), as kube-apiserver supports them:
/// every kind: metadata.name, metadata.namespace; plus the kinds with field label
/// conversion functions (Pod, Node, Event, Namespace, Secret, Service,
/// ReplicationController, Job, CertificateSigningRequest, ClusterTrustBundle,
/// ResourceSlice).
///
/// Node, Namespace, CertificateSigningRequest, ClusterTrustBundle and
/// ResourceSlice do not accept `metadata.namespace`, exactly as kube's
/// conversion functions reject it.  Kinds kube has no conversion function for
/// (Deployment, ReplicaSet, ConfigMap, custom resources, ...) accept only the
/// two metadata fields: kube's ReplicaSet registry knows `status.replicas`,
/// but apps/v1 never lets a selector reach it.
pub fn supported_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pod" => &[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
            "spec.host",
        ],
        "Node" => &["metadata.name", "spec.unschedulable"],
        "ReplicationController" => &["metadata.name", "metadata.namespace", "status.replicas"],
        "Event" => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
            "metadata.namespace",
            "metadata.name",
        ],
        "Namespace" => &["status.phase", "metadata.name"],
        "Secret" => &["type", "metadata.namespace", "metadata.name"],
        "Service" => &[
            "metadata.namespace",
            "metadata.name",
            "spec.clusterIP",
            "spec.type",
        ],
        "Job" => &["metadata.name", "metadata.namespace", "status.successful"],
        "CertificateSigningRequest" | "ClusterTrustBundle" => &["metadata.name", "spec.signerName"],
        "ResourceSlice" => &["metadata.name", "spec.nodeName", "spec.driver"],
        _ => META_FIELDS,
    }
}

/// The fields events.k8s.io/v1 accepts for Event, which kube maps onto the
/// core/v1 event field set.
const EVENTS_V1_FIELDS: &[&str] = &[
    "reason",
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reportingController",
    "type",
    "metadata.namespace",
    "metadata.name",
];

/// Like [`supported_fields`], but for a kind served under `api_version`
/// (e.g. "events.k8s.io/v1"): events.k8s.io names the event fields
/// `regarding.*` and `reportingController` instead of core/v1's names.
pub fn supported_fields_for(api_version: &str, kind: &str) -> &'static [&'static str] {
    if kind == "Event" && api_version.starts_with("events.k8s.io/") {
        EVENTS_V1_FIELDS
    } else {
        supported_fields(kind)
    }
}

/// The value of `field` on `object` as kube-apiserver compares it (strings; booleans as "true"/"false"; a missing value as "" — e.g. an unscheduled pod has spec.nodeName "" so `spec.nodeName=` matches it; `source` on events is source.component).
///
/// `None` means `kind` does not support `field`.  Events are read in either
/// shape (core/v1 `involvedObject`, or events.k8s.io/v1 `regarding` and the
/// `deprecated*` fields), under either API's field names, since both APIs
/// serve the same objects.
pub fn field_value(kind: &str, object: &Value, field: &str) -> Option<String> {
    let events_v1 = kind == "Event" && EVENTS_V1_FIELDS.contains(&field);
    if !supported_fields(kind).contains(&field) && !events_v1 {
        return None;
    }
    let text = |path: &[&str]| string_at(object, path).unwrap_or_default().to_string();
    let value = match (kind, field) {
        (_, "metadata.name") => text(&["metadata", "name"]),
        (_, "metadata.namespace") => text(&["metadata", "namespace"]),
        ("Pod", "spec.nodeName" | "spec.host") => text(&["spec", "nodeName"]),
        ("Pod", "spec.restartPolicy") => text(&["spec", "restartPolicy"]),
        ("Pod", "spec.schedulerName") => text(&["spec", "schedulerName"]),
        ("Pod", "spec.serviceAccountName") => text(&["spec", "serviceAccountName"]),
        ("Pod", "spec.hostNetwork") => bool_text(at(object, &["spec", "hostNetwork"])),
        ("Pod", "status.phase") => text(&["status", "phase"]),
        ("Pod", "status.podIP") => pod_ip(object),
        // Accepted by kube's conversion but absent from the pod's field set,
        // so it always compares as "".
        ("Pod", "status.podIPs") => String::new(),
        ("Pod", "status.nominatedNodeName") => text(&["status", "nominatedNodeName"]),
        ("Node", "spec.unschedulable") => bool_text(at(object, &["spec", "unschedulable"])),
        ("ReplicationController", "status.replicas") => {
            int_text(at(object, &["status", "replicas"]))
        }
        ("Event", _) => event_field(object, field),
        ("Namespace", "status.phase") => text(&["status", "phase"]),
        ("Secret", "type") => text(&["type"]),
        ("Service", "spec.clusterIP") => text(&["spec", "clusterIP"]),
        ("Service", "spec.type") => text(&["spec", "type"]),
        ("Job", "status.successful") => int_text(at(object, &["status", "succeeded"])),
        ("CertificateSigningRequest" | "ClusterTrustBundle", "spec.signerName") => {
            text(&["spec", "signerName"])
        }
        ("ResourceSlice", "spec.nodeName") => text(&["spec", "nodeName"]),
        ("ResourceSlice", "spec.driver") => text(&["spec", "driver"]),
        _ => String::new(),
    };
    Some(value)
}

fn event_field(object: &Value, field: &str) -> String {
    let first = |paths: &[&[&str]]| {
        paths
            .iter()
            .find_map(|path| string_at(object, path).filter(|s| !s.is_empty()))
            .unwrap_or_default()
            .to_string()
    };
    if let Some(reference_field) = field
        .strip_prefix("involvedObject.")
        .or_else(|| field.strip_prefix("regarding."))
    {
        return first(&[
            &["involvedObject", reference_field],
            &["regarding", reference_field],
        ]);
    }
    match field {
        "reason" => first(&[&["reason"]]),
        "type" => first(&[&["type"]]),
        "reportingComponent" | "reportingController" => {
            first(&[&["reportingComponent"], &["reportingController"]])
        }
        // kube falls back to the reporting controller for events written
        // through events.k8s.io, which have no source.
        "source" => first(&[
            &["source", "component"],
            &["deprecatedSource", "component"],
            &["reportingComponent"],
            &["reportingController"],
        ]),
        _ => String::new(),
    }
}

fn pod_ip(object: &Value) -> String {
    at(object, &["status", "podIPs"])
        .and_then(Value::as_array)
        .and_then(|ips| ips.first())
        .and_then(|ip| ip.get("ip"))
        .and_then(Value::as_str)
        .or_else(|| string_at(object, &["status", "podIP"]))
        .unwrap_or_default()
        .to_string()
}

fn at<'a>(object: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(object, |value, key| value.get(key))
}

fn string_at<'a>(object: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(object, path).and_then(Value::as_str)
}

fn bool_text(value: Option<&Value>) -> String {
    value.and_then(Value::as_bool).unwrap_or(false).to_string()
}

fn int_text(value: Option<&Value>) -> String {
    value.and_then(Value::as_i64).unwrap_or(0).to_string()
}

/// kube-apiserver's 400 message for an unsupported field: find the exact text (it is `field label not supported: <field>`), return it.
///
/// That is the text of the core kinds (Pod, Node, Event, ...) and of custom
/// resources; [`unsupported_field_message_for`] gives the text of the other
/// kinds, which differs.
pub fn unsupported_field_message(field: &str) -> String {
    format!("field label not supported: {field}")
}

/// kube-apiserver's 400 message when `field` is not supported for `kind`,
/// which varies by the kind's field label conversion function: Job says
/// `field label "x" not supported for Job`, built-in kinds without a
/// conversion function say `"x" is not a known field selector: only
/// "metadata.name", "metadata.namespace"`, and the core kinds and custom
/// resources say `field label not supported: x`.
pub fn unsupported_field_message_for(kind: &str, field: &str) -> String {
    match kind {
        "Pod"
        | "Node"
        | "ReplicationController"
        | "Event"
        | "Namespace"
        | "Secret"
        | "Service"
        | "CertificateSigningRequest"
        | "ClusterTrustBundle" => unsupported_field_message(field),
        "Job" => format!("field label {} not supported for Job", go_quote(field)),
        "ResourceSlice" => format!(
            "field label not supported for resource.k8s.io/v1beta1, Kind=ResourceSlice: {field}"
        ),
        kind if BUILTIN_KINDS_WITHOUT_FIELD_CONVERSION.contains(&kind) => format!(
            "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
            go_quote(field)
        ),
        // Custom resources go through the apiextensions server's converter.
        _ => unsupported_field_message(field),
    }
}

/// Built-in kinds served by kube-apiserver that register no field label
/// conversion, so runtime.DefaultMetaV1FieldSelectorConversion answers.
const BUILTIN_KINDS_WITHOUT_FIELD_CONVERSION: &[&str] = &[
    "APIService",
    "Binding",
    "ClusterRole",
    "ClusterRoleBinding",
    "ComponentStatus",
    "ConfigMap",
    "ControllerRevision",
    "CronJob",
    "CSIDriver",
    "CSINode",
    "CSIStorageCapacity",
    "CustomResourceDefinition",
    "DaemonSet",
    "Deployment",
    "DeviceClass",
    "EndpointSlice",
    "Endpoints",
    "FlowSchema",
    "HorizontalPodAutoscaler",
    "Ingress",
    "IngressClass",
    "IPAddress",
    "Lease",
    "LeaseCandidate",
    "LimitRange",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "MutatingWebhookConfiguration",
    "NetworkPolicy",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "PodDisruptionBudget",
    "PodTemplate",
    "PriorityClass",
    "PriorityLevelConfiguration",
    "ReplicaSet",
    "ResourceClaim",
    "ResourceClaimTemplate",
    "ResourceQuota",
    "Role",
    "RoleBinding",
    "RuntimeClass",
    "ServiceAccount",
    "ServiceCIDR",
    "StatefulSet",
    "StorageClass",
    "StorageVersion",
    "StorageVersionMigration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
    "VolumeAttachment",
    "VolumeAttributesClass",
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    fn selects(selector: &str, object_labels: Value) -> bool {
        LabelSelector::parse(selector)
            .expect("selector parses")
            .matches(Some(&labels(object_labels)))
    }

    #[test]
    fn empty_label_selector_selects_everything() {
        let selector = LabelSelector::parse("").expect("empty parses");
        assert!(selector.is_empty());
        assert!(selector.matches(None));
        assert!(selector.matches(Some(&labels(json!({"a": "b"})))));
        assert!(LabelSelector::parse("  \t ")
            .expect("blank parses")
            .is_empty());
    }

    #[test]
    fn equality_operators() {
        assert!(selects("app=web", json!({"app": "web"})));
        assert!(selects("app==web", json!({"app": "web"})));
        assert!(!selects("app=web", json!({"app": "db"})));
        assert!(!selects("app=web", json!({})));
        assert!(selects("app!=web", json!({"app": "db"})));
        assert!(
            selects("app!=web", json!({})),
            "!= matches objects lacking the label"
        );
        assert!(!selects("app!=web", json!({"app": "web"})));
        assert!(selects("app=", json!({"app": ""})));
        assert!(!selects("app=", json!({})));
    }

    #[test]
    fn set_operators() {
        assert!(selects("env in (prod,dev)", json!({"env": "dev"})));
        assert!(!selects("env in (prod,dev)", json!({"env": "qa"})));
        assert!(!selects("env in (prod)", json!({})));
        assert!(selects("env notin (prod)", json!({"env": "qa"})));
        assert!(
            selects("env notin (prod)", json!({})),
            "notin matches objects lacking the label"
        );
        assert!(!selects("env notin (prod, dev)", json!({"env": "dev"})));
        // "in" and "notin" are ordinary words in value position.
        assert!(selects("x in (in,notin)", json!({"x": "notin"})));
        assert!(selects("x in ()", json!({"x": ""})));
        assert!(selects("x in (a,,b)", json!({"x": ""})));
    }

    #[test]
    fn existence_and_comparisons() {
        assert!(selects("tier", json!({"tier": ""})));
        assert!(!selects("tier", json!({})));
        assert!(selects("!tier", json!({})));
        assert!(!selects("!tier", json!({"tier": "x"})));
        assert!(selects("n>1", json!({"n": "2"})));
        assert!(!selects("n>1", json!({"n": "1"})));
        assert!(selects("n<1", json!({"n": "-3"})));
        assert!(
            !selects("n<1", json!({"n": "x"})),
            "non-integer label values never compare"
        );
        assert!(!selects("n>1", json!({})));
        assert!(selects(
            " a = b ,  c , !d , e notin ( x ) ",
            json!({"a": "b", "c": "1"})
        ));
        assert!(!selects("a=b,c", json!({"a": "b"})));
    }

    #[test]
    fn absent_labels_behave_as_empty() {
        let selector = LabelSelector::parse("a!=b,!c").expect("parses");
        assert!(selector.matches(None));
        let selector = LabelSelector::parse("a").expect("parses");
        assert!(!selector.matches(None));
    }

    #[test]
    fn display_is_kube_string_form() {
        let selector =
            LabelSelector::parse("z=1, a in (y,x), !m, k, n>3, b notin (c)").expect("parses");
        assert_eq!(selector.to_string(), "a in (x,y),b notin (c),k,!m,n>3,z=1");
        assert_eq!(
            LabelSelector::parse("a==b").expect("parses").to_string(),
            "a==b"
        );
    }

    #[test]
    fn parse_errors_use_kube_wording() {
        assert_eq!(
            LabelSelector::parse("a b").unwrap_err(),
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(
            LabelSelector::parse("a=b,").unwrap_err(),
            "found '', expected: identifier after ','"
        );
        assert_eq!(
            LabelSelector::parse("=b").unwrap_err(),
            "found '=', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            LabelSelector::parse("a in b").unwrap_err(),
            "unable to parse requirement: found 'b' expected: '('"
        );
        assert_eq!(
            LabelSelector::parse("a in (b").unwrap_err(),
            "unable to parse requirement: found '', expected: ',' or ')'"
        );
        assert_eq!(
            LabelSelector::parse("!a=b").unwrap_err(),
            "found '=', expected: ',' or 'end of string'"
        );
        assert_eq!(
            LabelSelector::parse("a=(").unwrap_err(),
            "unable to parse requirement: found '(', expected: identifier"
        );
    }

    #[test]
    fn invalid_keys_and_values_are_rejected() {
        assert_eq!(
            LabelSelector::parse("-a=b").unwrap_err(),
            "unable to parse requirement: <nil>: Invalid value: \"-a\": name part must consist of alphanumeric \
             characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  \
             or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        );
        assert_eq!(
            LabelSelector::parse("a=b_").unwrap_err(),
            "unable to parse requirement: values[0][a]: Invalid value: \"b_\": a valid label must be an empty \
             string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an \
             alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is \
             '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        );
        let long = "x".repeat(64);
        assert_eq!(
            LabelSelector::parse(&format!("a={long}")).unwrap_err(),
            format!(
                "unable to parse requirement: values[0][a]: Invalid value: \"{long}\": must be no more than 63 characters"
            )
        );
        let err = LabelSelector::parse("Example.com/a=b").unwrap_err();
        assert!(
            err.contains("prefix part a lowercase RFC 1123 subdomain"),
            "{err}"
        );
        let err = LabelSelector::parse("a/b/c").unwrap_err();
        assert!(err.contains("a qualified name must consist of"), "{err}");
        assert!(LabelSelector::parse("example.com/app.name_1=v-1.x_y").is_ok());
        assert_eq!(
            LabelSelector::parse("n>x").unwrap_err(),
            "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
    }

    #[test]
    fn label_selector_from_json() {
        let selector = LabelSelector::from_json(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "legacy", "operator": "DoesNotExist"}
            ]
        }))
        .expect("valid selector");
        assert!(selector.matches(Some(&labels(json!({"app": "web", "tier": "b"})))));
        assert!(!selector.matches(Some(&labels(json!({"app": "web", "tier": "c"})))));
        assert!(!selector.matches(Some(&labels(
            json!({"app": "web", "tier": "a", "legacy": "1"})
        ))));
        assert_eq!(selector.to_string(), "app=web,!legacy,tier in (a,b)");

        let everything = LabelSelector::from_json(&json!({})).expect("empty selector");
        assert!(everything.is_empty());
        assert!(everything.matches(None));

        let nothing = LabelSelector::from_json(&Value::Null).expect("null selector");
        assert!(!nothing.is_empty());
        assert!(!nothing.matches(Some(&labels(json!({"a": "b"})))));

        assert_eq!(
            LabelSelector::from_json(
                &json!({"matchExpressions": [{"key": "a", "operator": "Foo"}]})
            )
            .unwrap_err(),
            "\"Foo\" is not a valid label selector operator"
        );
        assert_eq!(
            LabelSelector::from_json(
                &json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})
            )
            .unwrap_err(),
            "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"
        );
        assert_eq!(
            LabelSelector::from_json(
                &json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]})
            )
            .unwrap_err(),
            "values: Invalid value: []string{\"x\"}: values set must be empty for exists and does not exist"
        );
        let err = LabelSelector::from_json(&json!({"matchLabels": {"bad key": "v"}})).unwrap_err();
        assert!(
            err.starts_with("key: Invalid value: \"bad key\": name part must consist"),
            "{err}"
        );
    }

    #[test]
    fn field_selector_parsing_and_matching() {
        let selector =
            FieldSelector::parse("spec.nodeName=node-1,status.phase!=Failed").expect("parses");
        assert!(!selector.is_empty());
        assert_eq!(selector.fields(), vec!["spec.nodeName", "status.phase"]);
        assert_eq!(selector.exact("spec.nodeName"), Some("node-1"));
        assert_eq!(selector.exact("status.phase"), None);
        let pod = |node: &str, phase: &str| {
            let (node, phase) = (node.to_string(), phase.to_string());
            move |field: &str| match field {
                "spec.nodeName" => Some(node.clone()),
                "status.phase" => Some(phase.clone()),
                _ => None,
            }
        };
        assert!(selector.matches(pod("node-1", "Running")));
        assert!(!selector.matches(pod("node-1", "Failed")));
        assert!(!selector.matches(pod("node-2", "Running")));

        let double = FieldSelector::parse("metadata.name==a").expect("parses");
        assert_eq!(double.exact("metadata.name"), Some("a"));
        assert!(FieldSelector::parse("").expect("empty parses").is_empty());
        assert!(FieldSelector::parse(",a=b,")
            .expect("stray commas are skipped")
            .matches(|_| Some("b".into())));

        let unscheduled = FieldSelector::parse("spec.nodeName=").expect("parses");
        assert!(
            unscheduled.matches(|_| None),
            "a missing value compares as empty"
        );
    }

    #[test]
    fn field_selector_escapes() {
        let selector = FieldSelector::parse(r"metadata.name=a\,b\=c\\d,type=x").expect("parses");
        assert_eq!(selector.exact("metadata.name"), Some(r"a,b=c\d"));
        assert_eq!(selector.fields(), vec!["metadata.name", "type"]);
        assert_eq!(
            FieldSelector::parse(r"a=b\x").unwrap_err(),
            r"invalid field selector: invalid escape sequence: \x"
        );
        assert_eq!(
            FieldSelector::parse(r"a=b\").unwrap_err(),
            r"invalid field selector: invalid escape sequence: \"
        );
        assert_eq!(
            FieldSelector::parse("a=b=c").unwrap_err(),
            "invalid field selector: unescaped character in value: 61"
        );
        assert_eq!(
            FieldSelector::parse("a=b,c").unwrap_err(),
            "invalid selector: 'a=b,c'; can't understand 'c'"
        );
    }

    #[test]
    fn field_selector_terms_are_sorted_like_kube() {
        let selector = FieldSelector::parse("z=1,b=2,a!=3").expect("parses");
        assert_eq!(selector.fields(), vec!["a", "b", "z"]);
        assert_eq!(selector.to_string(), "a!=3,b=2,z=1");
    }

    #[test]
    fn supported_fields_per_kind() {
        assert!(supported_fields("Pod").contains(&"spec.nodeName"));
        assert!(supported_fields("Pod").contains(&"status.podIP"));
        assert!(supported_fields("Event").contains(&"involvedObject.uid"));
        assert_eq!(
            supported_fields("Node"),
            &["metadata.name", "spec.unschedulable"]
        );
        assert_eq!(supported_fields("ConfigMap"), META_FIELDS);
        assert_eq!(supported_fields("ReplicaSet"), META_FIELDS);
        assert!(supported_fields("Job").contains(&"status.successful"));
        assert!(supported_fields("Secret").contains(&"type"));
    }

    #[test]
    fn field_values_follow_kube_getattrs() {
        let pod = json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"restartPolicy": "Always"},
            "status": {"phase": "Pending", "podIPs": [{"ip": "169.254.0.5"}], "podIP": "169.254.0.9"}
        });
        assert_eq!(
            field_value("Pod", &pod, "spec.nodeName").as_deref(),
            Some("")
        );
        assert_eq!(
            field_value("Pod", &pod, "spec.hostNetwork").as_deref(),
            Some("false")
        );
        assert_eq!(
            field_value("Pod", &pod, "status.podIP").as_deref(),
            Some("169.254.0.5")
        );
        assert_eq!(
            field_value("Pod", &pod, "metadata.namespace").as_deref(),
            Some("ns")
        );
        assert_eq!(field_value("Pod", &pod, "spec.containers"), None);
        let selector = FieldSelector::parse("spec.nodeName=,status.phase=Pending").expect("parses");
        assert!(selector.matches(|f| field_value("Pod", &pod, f)));

        let node = json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}});
        assert_eq!(
            field_value("Node", &node, "spec.unschedulable").as_deref(),
            Some("true")
        );

        let event = json!({"involvedObject": {"kind": "Pod", "name": "p"}, "source": {"component": "kubelet"}, "type": "Normal"});
        assert_eq!(
            field_value("Event", &event, "involvedObject.kind").as_deref(),
            Some("Pod")
        );
        assert_eq!(
            field_value("Event", &event, "source").as_deref(),
            Some("kubelet")
        );
        let new_event = json!({"regarding": {"kind": "Node"}, "reportingController": "ctl"});
        assert_eq!(
            field_value("Event", &new_event, "involvedObject.kind").as_deref(),
            Some("Node")
        );
        assert_eq!(
            field_value("Event", &new_event, "source").as_deref(),
            Some("ctl")
        );
        assert_eq!(
            field_value("Event", &new_event, "reportingComponent").as_deref(),
            Some("ctl")
        );

        assert_eq!(
            field_value("Event", &event, "regarding.name").as_deref(),
            Some("p")
        );
        assert!(supported_fields_for("events.k8s.io/v1", "Event").contains(&"regarding.kind"));
        assert!(!supported_fields_for("v1", "Event").contains(&"regarding.kind"));
        assert_eq!(supported_fields_for("v1", "Pod"), supported_fields("Pod"));

        let job = json!({"status": {"succeeded": 3}});
        assert_eq!(
            field_value("Job", &job, "status.successful").as_deref(),
            Some("3")
        );
        let secret = json!({"type": "Opaque"});
        assert_eq!(
            field_value("Secret", &secret, "type").as_deref(),
            Some("Opaque")
        );
    }

    #[test]
    fn unsupported_field_messages() {
        assert_eq!(
            unsupported_field_message("spec.foo"),
            "field label not supported: spec.foo"
        );
        assert_eq!(
            unsupported_field_message_for("Pod", "spec.foo"),
            "field label not supported: spec.foo"
        );
        assert_eq!(
            unsupported_field_message_for("Job", "spec.foo"),
            "field label \"spec.foo\" not supported for Job"
        );
        assert_eq!(
            unsupported_field_message_for("ConfigMap", "data.x"),
            "\"data.x\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
        assert_eq!(
            unsupported_field_message_for("Widget", "spec.size"),
            "field label not supported: spec.size"
        );
    }
}
