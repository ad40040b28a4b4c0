//! Warnings for the client, sent as kube-apiserver sends them: one `Warning: 299 - "<text>"`
//! response header each, which kubectl prints as `Warning: <text>` and client-go hands to its
//! warning handler.

use std::sync::Mutex;

/// The warnings one request collects while it is handled.
#[derive(Debug, Default)]
pub struct Warnings(Mutex<Vec<String>>);

/// More warnings than this on one response are dropped (kube-apiserver caps them too).
const MAX_WARNINGS: usize = 100;

impl Warnings {
    /// Records `text`, once however often it is added.
    pub fn add(&self, text: impl Into<String>) {
        let text = text.into();
        let mut list = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if list.len() < MAX_WARNINGS && !list.contains(&text) {
            list.push(text);
        }
    }

    /// The warnings recorded, in order.
    pub fn texts(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The value of a `Warning` header: code 299, no agent (`-`), and the text quoted with `"`
/// and `\` escaped. Control characters, which a header cannot hold, become spaces.
pub fn header_value(text: &str) -> String {
    let mut value = String::with_capacity(text.len() + 8);
    value.push_str("299 - \"");
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                value.push('\\');
                value.push(c);
            }
            c if c.is_control() => value.push(' '),
            c => value.push(c),
        }
    }
    value.push('"');
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_kept_once_and_quoted_as_kube_quotes_them() {
        let warnings = Warnings::default();
        warnings.add(r#"unknown field "spec.foo""#);
        warnings.add(r#"unknown field "spec.foo""#);
        warnings.add("second");
        assert_eq!(warnings.texts().len(), 2);
        assert_eq!(
            header_value(&warnings.texts()[0]),
            r#"299 - "unknown field \"spec.foo\"""#
        );
        assert_eq!(header_value("a\nb\\"), r#"299 - "a b\\""#);
    }
}
