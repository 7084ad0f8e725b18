//! One shape for every load-time problem in Sotto — the daemon's configuration, domain files, the
//! model manifest, audio settings: the key path a problem is about and what is wrong with it.
//!
//! Loaders collect all their problems before failing, so a user fixes a file in one round; callers
//! merge, filter and print them without parsing text back. This crate sits below every other one.

use std::collections::HashSet;
use std::fmt;

use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;

/// One problem, located by its key path (`mqtt.port`, `wake.models[1].name`,
/// `vehicle.toml:intent[2].templates[0]`); an empty key means the whole file or value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem { key: key.into(), message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// Every problem found in one load, in the order found; displayed one per line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn new() -> Problems {
        Problems::default()
    }

    /// Records a problem at `key`.
    pub fn add(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem::new(key, message));
    }

    /// `Ok(value)` when nothing was found, else these problems.
    pub fn into_result<T>(self, value: T) -> Result<T, Problems> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }

    /// Whether a problem was already found at `key`, inside it (`key.x`, `key[0]`) or at a key
    /// that contains it: a later, coarser check (loading the files a value names) then has
    /// nothing to add about that key that the user has not been told.
    pub fn touches(&self, key: &str) -> bool {
        let within = |inner: &str, outer: &str| {
            inner.strip_prefix(outer).is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        };
        self.0.iter().any(|p| within(&p.key, key) || within(key, &p.key))
    }
}

impl std::ops::Deref for Problems {
    type Target = Vec<Problem>;
    fn deref(&self) -> &Vec<Problem> {
        &self.0
    }
}

impl std::ops::DerefMut for Problems {
    fn deref_mut(&mut self) -> &mut Vec<Problem> {
        &mut self.0
    }
}

impl From<Vec<Problem>> for Problems {
    fn from(problems: Vec<Problem>) -> Problems {
        Problems(problems)
    }
}

impl FromIterator<Problem> for Problems {
    fn from_iter<I: IntoIterator<Item = Problem>>(iter: I) -> Problems {
        Problems(iter.into_iter().collect())
    }
}

impl Extend<Problem> for Problems {
    fn extend<I: IntoIterator<Item = Problem>>(&mut self, iter: I) {
        self.0.extend(iter)
    }
}

impl IntoIterator for Problems {
    type Item = Problem;
    type IntoIter = std::vec::IntoIter<Problem>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Problems {
    type Item = &'a Problem;
    type IntoIter = std::slice::Iter<'a, Problem>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// A TOML syntax error located by key path, found from the error's byte span: the nearest table
/// header above it plus the key on its line (`(line N)` when the line has none). The message
/// keeps the line number.
pub fn toml_syntax(text: &str, err: &toml::de::Error) -> Problem {
    let message = err.message().trim().to_string();
    let Some(span) = err.span() else {
        return Problem::new("", message);
    };
    let before = &text[..span.start.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[line_start..].find('\n').map_or(text.len(), |i| line_start + i);
    let line = text[line_start..line_end].trim();
    let header = |l: &str| l.trim_matches(|c| c == '[' || c == ']').trim().to_string();
    let table = before[..line_start].lines().rev().map(str::trim).find(|l| l.starts_with('[')).map(header);
    let key = if line.starts_with('[') {
        header(line)
    } else {
        let own = line.split('=').next().unwrap_or("").trim();
        match table {
            Some(table) if !own.is_empty() => format!("{table}.{own}"),
            Some(table) => table,
            None => own.to_string(),
        }
    };
    let line_number = before.matches('\n').count() + 1;
    let key = if key.is_empty() { format!("(line {line_number})") } else { key };
    Problem::new(key, format!("{message} (line {line_number})"))
}

/// Parses `text` as TOML into `T`, reporting every wrong type, bad value and unknown key with its
/// key path instead of stopping at the first: each offending key is dropped and parsing resumes,
/// so `T`'s defaults (`#[serde(default)]`) stand in for it and later checks still run. `None`
/// only for a syntax error or when dropping keys cannot make the rest fit (a required key).
pub fn from_toml_lenient<T: DeserializeOwned>(text: &str, problems: &mut Problems) -> Option<T> {
    let mut value: toml::Value = match toml::from_str(text) {
        Ok(value) => value,
        Err(err) => {
            problems.push(toml_syntax(text, &err));
            return None;
        }
    };
    let mut dropped: HashSet<String> = HashSet::new();
    loop {
        let err = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(parsed) => return Some(parsed),
            Err(err) => err,
        };
        let segments: Vec<Segment> = err.path().iter().cloned().collect();
        // serde_path_to_error names an unknown key by its own path, and the root as ".".
        let key = err.path().to_string();
        let key = if key == "." { String::new() } else { key };
        let message = err.into_inner().message().trim().to_string();
        // An array element is first replaced by an empty table, which may fail again at the same
        // key: that is the placeholder, not a new problem. Any other key failing twice means
        // dropping it did not help (a required field).
        let placeholder = lookup(&mut value, &segments).is_some_and(|v| v.as_table().is_some_and(|t| t.is_empty()));
        let is_element = matches!(segments.last(), Some(Segment::Seq { .. }));
        if !dropped.insert(key.clone()) && !is_element {
            return None;
        }
        if !(is_element && placeholder) {
            problems.add(key, message);
        }
        remove(&mut value, &segments)?;
    }
}

fn lookup<'v>(value: &'v mut toml::Value, path: &[Segment]) -> Option<&'v mut toml::Value> {
    path.iter().try_fold(value, |v, segment| match segment {
        Segment::Map { key } => v.get_mut(key.as_str()),
        Segment::Seq { index } => v.get_mut(*index),
        _ => None,
    })
}

/// Drops the value at `path`. An array element is replaced by an empty table, so the indices of
/// the elements after it, and their problems' keys, stay right; only an element that cannot be a
/// table (a list of strings) is removed, and later problems in that array then count without it.
fn remove(value: &mut toml::Value, path: &[Segment]) -> Option<toml::Value> {
    let (last, parent) = path.split_last()?;
    let parent = lookup(value, parent)?;
    match last {
        Segment::Map { key } => parent.as_table_mut()?.remove(key),
        Segment::Seq { index } => {
            let items = parent.as_array_mut()?;
            let item = items.get_mut(*index)?;
            if item.as_table().is_some_and(|t| t.is_empty()) {
                Some(items.remove(*index))
            } else {
                Some(std::mem::replace(item, toml::Value::Table(Default::default())))
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, Default, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Root {
        net: Net,
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Net {
        port: u16,
        host: String,
    }

    impl Default for Net {
        fn default() -> Self {
            Net { port: 1883, host: "localhost".into() }
        }
    }

    #[derive(Debug, Deserialize, Default, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Item {
        name: String,
        size: u32,
    }

    fn keys(problems: &Problems) -> Vec<&str> {
        problems.iter().map(|p| p.key.as_str()).collect()
    }

    #[test]
    fn every_wrong_type_and_unknown_key_is_reported_and_the_rest_parsed() {
        let text = "colour = 1\n[net]\nport = 99999\nhots = \"x\"\nhost = \"broker\"\n\
                    [[items]]\nname = \"a\"\nsize = \"big\"\n[[items]]\nname = \"b\"\nsize = 2\n";
        let mut problems = Problems::new();
        let root: Option<Root> = from_toml_lenient(text, &mut problems);
        let root = root.unwrap_or_else(|| panic!("{problems:?}"));
        let mut found = keys(&problems);
        found.sort();
        assert_eq!(found, ["colour", "items[0].size", "net.hots", "net.port"], "{problems}");
        assert!(problems.iter().any(|p| p.message.contains("99999")), "{problems}");
        assert_eq!(root.net, Net { port: 1883, host: "broker".into() });
        assert_eq!(root.items, [Item { name: "a".into(), size: 0 }, Item { name: "b".into(), size: 2 }]);
    }

    #[test]
    fn a_wrong_array_element_keeps_the_indices_of_the_others() {
        let mut problems = Problems::new();
        let root: Root = from_toml_lenient("items = [5, { size = \"x\" }]\n", &mut problems).unwrap();
        assert_eq!(keys(&problems), ["items[0]", "items[1].size"], "{problems}");
        assert_eq!(root.items.len(), 2);
    }

    #[test]
    fn a_syntax_error_is_located_and_stops_parsing() {
        let mut problems = Problems::new();
        assert_eq!(from_toml_lenient::<Root>("[net]\nport = = 3\n", &mut problems), None);
        assert_eq!(keys(&problems), ["net.port"], "{problems}");
        assert!(problems[0].message.contains("line 2"), "{problems}");
    }

    #[test]
    fn a_missing_required_key_gives_up_after_reporting_it() {
        #[derive(Debug, Deserialize)]
        struct Strict {
            #[allow(dead_code)]
            name: String,
        }
        let mut problems = Problems::new();
        assert!(from_toml_lenient::<Strict>("", &mut problems).is_none());
        assert_eq!(problems.len(), 1, "{problems}");
        assert!(problems[0].message.contains("missing field `name`"), "{problems}");
    }

    #[test]
    fn problems_print_one_per_line_with_their_keys() {
        let mut problems = Problems::new();
        problems.add("a.b", "is wrong");
        problems.add("", "the file is empty");
        assert_eq!(problems.to_string(), "a.b: is wrong\nthe file is empty");
        assert!(problems.touches("a.b") && problems.touches("a") && problems.touches("a.b[2]"));
        assert!(!problems.touches("a.bc") && !problems.touches("b"));
        assert_eq!(Problems::new().into_result(3), Ok(3));
    }
}
