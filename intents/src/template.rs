//! Sentence templates in the spirit of Home Assistant's hassil and Picovoice Rhino expressions:
//! `(a | b)` alternatives, `[a | b]` optional, `(a; b; c)` any order, `{slot}` a slot,
//! `<rule>` a domain-wide expansion rule. [`crate::grammar`] compiles them.

use crate::error::TemplateError;
use crate::text::tokenize;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Word(String),
    Slot(String),
    Rule(String),
    Seq(Vec<Expr>),
    Alt(Vec<Expr>),
    Opt(Box<Expr>),
    Perm(Vec<Expr>),
}

impl Expr {
    /// The words, slot references and rule references, in written order; rules are not expanded
    /// (that is the compiler's job, [`crate::grammar`]).
    pub fn for_each_leaf(&self, f: &mut impl FnMut(&Expr)) {
        match self {
            Expr::Word(_) | Expr::Slot(_) | Expr::Rule(_) => f(self),
            Expr::Seq(v) | Expr::Alt(v) | Expr::Perm(v) => v.iter().for_each(|e| e.for_each_leaf(f)),
            Expr::Opt(e) => e.for_each_leaf(f),
        }
    }

    /// Slot names referenced.
    pub fn slots(&self, out: &mut Vec<String>) {
        self.for_each_leaf(&mut |e| {
            if let Expr::Slot(s) = e {
                out.push(s.clone())
            }
        });
    }

    /// Literal words, rules not expanded and slots left out.
    pub fn words(&self, out: &mut Vec<String>) {
        self.for_each_leaf(&mut |e| {
            if let Expr::Word(w) = e {
                out.push(w.clone())
            }
        });
    }

    /// Rule names referenced.
    pub fn rules(&self, out: &mut Vec<String>) {
        self.for_each_leaf(&mut |e| {
            if let Expr::Rule(r) = e {
                out.push(r.clone())
            }
        });
    }
}

pub fn parse(template: &str) -> Result<Expr, TemplateError> {
    let chars: Vec<char> = template.chars().collect();
    let mut pos = 0;
    let expr = parse_alternatives(&chars, &mut pos, None)?;
    if pos < chars.len() {
        return Err(TemplateError::Unexpected(chars[pos], pos));
    }
    Ok(expr)
}

/// Parses until `close` (or the end when `None`), splitting on `|` and `;`.
fn parse_alternatives(chars: &[char], pos: &mut usize, close: Option<char>) -> Result<Expr, TemplateError> {
    let start = *pos;
    let mut branches: Vec<Vec<Expr>> = vec![Vec::new()];
    let mut separator: Option<char> = None;
    let mut word = String::new();
    let flush = |word: &mut String, seq: &mut Vec<Expr>| {
        for w in tokenize(word) {
            seq.push(Expr::Word(w));
        }
        word.clear();
    };
    while *pos < chars.len() {
        let c = chars[*pos];
        match c {
            '(' | '[' => {
                flush(&mut word, branches.last_mut().unwrap());
                *pos += 1;
                let inner = parse_alternatives(chars, pos, Some(if c == '(' { ')' } else { ']' }))?;
                let inner = if c == '[' { Expr::Opt(Box::new(inner)) } else { inner };
                branches.last_mut().unwrap().push(inner);
                continue;
            }
            ')' | ']' => {
                if Some(c) != close {
                    return Err(TemplateError::Unexpected(c, *pos));
                }
                flush(&mut word, branches.last_mut().unwrap());
                *pos += 1;
                return finish(branches, separator, start);
            }
            '|' | ';' => {
                if close.is_none() && c == ';' {
                    return Err(TemplateError::Unexpected(c, *pos));
                }
                if separator.is_some_and(|s| s != c) {
                    return Err(TemplateError::Unexpected(c, *pos));
                }
                separator = Some(c);
                flush(&mut word, branches.last_mut().unwrap());
                branches.push(Vec::new());
            }
            '{' | '<' => {
                flush(&mut word, branches.last_mut().unwrap());
                let end = if c == '{' { '}' } else { '>' };
                let name_start = *pos + 1;
                let Some(len) = chars[name_start..].iter().position(|&x| x == end) else {
                    return Err(TemplateError::Unbalanced(c, *pos));
                };
                let name: String = chars[name_start..name_start + len].iter().collect::<String>().trim().to_string();
                if name.is_empty() {
                    return Err(TemplateError::EmptyReference(*pos));
                }
                branches.last_mut().unwrap().push(if c == '{' { Expr::Slot(name) } else { Expr::Rule(name) });
                *pos = name_start + len;
            }
            '}' | '>' => return Err(TemplateError::Unexpected(c, *pos)),
            _ => word.push(c),
        }
        *pos += 1;
    }
    if let Some(close) = close {
        return Err(TemplateError::Unbalanced(if close == ')' { '(' } else { '[' }, start.saturating_sub(1)));
    }
    flush(&mut word, branches.last_mut().unwrap());
    finish(branches, separator, start)
}

fn finish(branches: Vec<Vec<Expr>>, separator: Option<char>, start: usize) -> Result<Expr, TemplateError> {
    let seqs: Vec<Expr> =
        branches.into_iter().map(|mut b| if b.len() == 1 { b.pop().unwrap() } else { Expr::Seq(b) }).collect();
    if seqs.len() > 1 && seqs.iter().any(|e| matches!(e, Expr::Seq(v) if v.is_empty())) {
        return Err(TemplateError::EmptyAlternative(start));
    }
    match separator {
        _ if seqs.len() == 1 => Ok(seqs.into_iter().next().unwrap()),
        Some(';') if seqs.len() > 5 => Err(TemplateError::PermutationTooLarge(seqs.len())),
        Some(';') => Ok(Expr::Perm(seqs)),
        _ => Ok(Expr::Alt(seqs)),
    }
}

/// Every order of `n` items (for a permutation expression), as index lists.
pub(crate) fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for pos in 0..=p.len() {
            let mut q = p.clone();
            q.insert(pos, n - 1);
            out.push(q);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Expr {
        Expr::Word(s.into())
    }

    #[test]
    fn parses_alternatives_optionals_slots_and_rules() {
        let e = parse("<order> (turn | switch) [the] {room} (light | lights)").unwrap();
        assert_eq!(
            e,
            Expr::Seq(vec![
                Expr::Rule("order".into()),
                Expr::Alt(vec![w("turn"), w("switch")]),
                Expr::Opt(Box::new(w("the"))),
                Expr::Slot("room".into()),
                Expr::Alt(vec![w("light"), w("lights")]),
            ])
        );
    }

    #[test]
    fn parses_permutations() {
        let e = parse("([{a}]; [{b}]) x").unwrap();
        let Expr::Seq(v) = e else { panic!() };
        assert!(matches!(&v[0], Expr::Perm(items) if items.len() == 2));
    }

    #[test]
    fn reports_syntax_errors() {
        assert!(matches!(parse("turn (on | off"), Err(TemplateError::Unbalanced('(', _))));
        assert!(matches!(parse("turn on]"), Err(TemplateError::Unexpected(']', _))));
        assert!(matches!(parse("set {} now"), Err(TemplateError::EmptyReference(_))));
        assert!(matches!(parse("set {room now"), Err(TemplateError::Unbalanced('{', _))));
        assert!(matches!(parse("(a | | b)"), Err(TemplateError::EmptyAlternative(_))));
    }
}
