//! The template language compiled once.
//!
//! Every intent's templates, rules expanded and slots laid out, become one word graph: the
//! matcher's search graph. Everything else that needs the language the templates describe reads
//! that graph instead of walking the templates again: the matcher searches it
//! ([`crate::matcher`]), the Whisper word graph is rendered from it ([`crate::speech_grammar`]),
//! the language model's shortlist takes its words ([`crate::shortlist`]), and the load check
//! measures its real size ([`crate::schema`]). A new template construct is compiled here and
//! nowhere else.
//!
//! This is also the only place that expands rules, so the only place with a rule-depth limit. A
//! rule nested too deep, a rule that references itself (directly or through others), and an
//! expansion that grows past its bounds are errors the load reports, naming the file and the rule
//! or intent; never a panic, and never an expansion that silently stops.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::schema::{Slot, SlotKind};
use crate::template::{permutations, Expr};
use crate::text::{tokenize, VocabWord};

/// Rules expanded inside one another at most (the rule a template references is the first).
pub const MAX_RULE_DEPTH: usize = 16;

/// Matcher states one intent's templates may compile to: ten times what all 21 shipped intents
/// need together (5106, printed by `tests/hostile_domains.rs`). Nested permutations and
/// rules multiply, and a hostile or mistaken file could otherwise ask for billions (memory and
/// load time without bound, then a slow search of every transcript).
pub const MAX_INTENT_STATES: usize = 50_000;

/// Expressions one compilation may visit. Some make no state (a sequence, a rule reference, an
/// empty rule), so the state limit alone would let a fan-out of rules that expand to nothing run
/// for ever; no real template comes near this many visits per state.
pub const MAX_EXPANSION_STEPS: usize = 8 * MAX_INTENT_STATES;

/// Why templates (or a rule) could not be compiled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CompileError {
    /// The rules being expanded, outermost first; the last one is past the limit.
    #[error("rules nest {} levels deep from here ({}); at most {MAX_RULE_DEPTH}", .0.len(), chain(.0))]
    TooDeep(Vec<String>),
    /// The rules being expanded, outermost first; the last one was already being expanded.
    #[error("rule is in, or leads into, a reference cycle ({})", chain(.0))]
    Recursive(Vec<String>),
    #[error("expands to over {MAX_INTENT_STATES} matcher states: fewer nested permutations or rule references")]
    TooLarge,
    #[error("expands too far (over {MAX_EXPANSION_STEPS} expansion steps): fewer nested rule references")]
    TooLong,
    #[error("unknown rule <{0}>")]
    UnknownRule(String),
    #[error("unknown slot {{{0}}}")]
    UnknownSlot(String),
}

impl CompileError {
    /// Whether the problem lies in a rule rather than in the templates that use it: the rule
    /// check ([`check_rules`]) reports those at the rule itself.
    pub fn is_in_a_rule(&self) -> bool {
        matches!(self, CompileError::TooDeep(_) | CompileError::Recursive(_) | CompileError::UnknownRule(_))
    }
}

fn chain(rules: &[String]) -> String {
    rules.iter().map(|r| format!("<{r}>")).collect::<Vec<_>>().join(" → ")
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum EdgeKind {
    /// No word.
    Eps,
    /// A template word, by its index in the [`Vocabulary`].
    Word(u32),
    /// A number or integer slot's value, by the slot's index in the intent.
    Number(u16),
    Duration(u16),
    /// One word of a free-text slot. The slot is an `Any` edge into a node that loops on `Any`.
    Any(u16),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Tag {
    None,
    /// This ε edge leaves an enum slot's synonym trie: (slot index, value index).
    EnumValue(u16, u16),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Edge {
    pub to: u32,
    pub kind: EdgeKind,
    pub tag: Tag,
}

/// One intent's templates as a graph. Node 0 is the start and the last node the end; node
/// indices are a topological order (every edge but a free-text slot's loop leads to a later
/// node), which the matcher's search relies on.
pub(crate) struct Graph {
    /// The intent's index in load order.
    pub intent: usize,
    pub nodes: Vec<Vec<Edge>>,
}

impl Graph {
    /// Every edge on a way on from `node` to the end: what the templates allow after it.
    pub fn ahead(&self, node: u32) -> impl Iterator<Item = &Edge> + '_ {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack = vec![node];
        seen[node as usize] = true;
        while let Some(n) = stack.pop() {
            for e in &self.nodes[n as usize] {
                if !std::mem::replace(&mut seen[e.to as usize], true) {
                    stack.push(e.to);
                }
            }
        }
        seen.into_iter().enumerate().filter(|(_, s)| *s).flat_map(move |(n, _)| &self.nodes[n])
    }

    /// The template words on the graph (slot synonyms included), with repeats.
    pub fn words<'g>(&'g self, vocab: &'g Vocabulary) -> impl Iterator<Item = &'g str> + 'g {
        self.nodes.iter().flatten().filter_map(|e| match e.kind {
            EdgeKind::Word(w) => Some(vocab.words[w as usize].text.as_str()),
            _ => None,
        })
    }
}

/// Every word of the compiled templates; edges name them by index.
#[derive(Default)]
pub(crate) struct Vocabulary {
    pub words: Vec<VocabWord>,
    pub index: HashMap<String, u32>,
}

impl Vocabulary {
    fn intern(&mut self, w: &str) -> u32 {
        if let Some(&i) = self.index.get(w) {
            return i;
        }
        self.words.push(VocabWord::new(w));
        let i = (self.words.len() - 1) as u32;
        self.index.insert(w.to_string(), i);
        i
    }
}

/// The loaded intents' graphs, in load order, over one vocabulary.
#[derive(Default)]
pub struct Grammar {
    pub(crate) vocab: Vocabulary,
    pub(crate) graphs: Vec<Graph>,
}

impl Grammar {
    /// Compiles the next intent's templates; `rules` are its domain's, `slots` its own. On an
    /// error the grammar is unusable (the load fails).
    pub(crate) fn add_intent(
        &mut self,
        templates: &[Expr],
        rules: &BTreeMap<String, Expr>,
        slots: &[Slot],
    ) -> Result<(), CompileError> {
        let intent = self.graphs.len();
        let mut c = Compiler::new(&mut self.vocab, rules, slots, intent);
        let start = c.node()?;
        let ends = templates.iter().map(|t| c.expr(t, start)).collect::<Result<Vec<_>, _>>()?;
        c.join(&ends)?;
        self.graphs.push(c.graph);
        Ok(())
    }
}

/// Checks that every rule of a domain expands (alone, as in any template) within the limits: the
/// rule-level problems, each under the name of the rule it starts from. Rules that reference an
/// unknown rule or a slot are left to the caller's own checks. A rule already expanded in full
/// while checking another is within the limits on its own too, and is not expanded again.
pub(crate) fn check_rules(rules: &BTreeMap<String, Expr>) -> Vec<(String, CompileError)> {
    let mut fine: BTreeSet<&str> = BTreeSet::new();
    let mut problems = Vec::new();
    for name in rules.keys() {
        if fine.contains(name.as_str()) {
            continue;
        }
        // Words of a rule alone belong to no intent: they must not enter the real vocabulary.
        let mut scratch = Vocabulary::default();
        let mut c = Compiler::new(&mut scratch, rules, &[], usize::MAX);
        let result = c.node().and_then(|start| c.expr(&Expr::Rule(name.clone()), start));
        fine.extend(c.expanded);
        match result {
            Ok(_) | Err(CompileError::UnknownRule(_) | CompileError::UnknownSlot(_)) => {}
            Err(e) => problems.push((name.clone(), e)),
        }
    }
    problems
}

/// The one expansion of the template language (see the module doc).
struct Compiler<'v, 'a> {
    vocab: &'v mut Vocabulary,
    rules: &'a BTreeMap<String, Expr>,
    slots: &'a [Slot],
    graph: Graph,
    /// The rules being expanded, outermost first.
    stack: Vec<&'a str>,
    /// Rules expanded in full so far.
    expanded: Vec<&'a str>,
    steps: usize,
}

impl<'v, 'a> Compiler<'v, 'a> {
    fn new(vocab: &'v mut Vocabulary, rules: &'a BTreeMap<String, Expr>, slots: &'a [Slot], intent: usize) -> Self {
        let graph = Graph { intent, nodes: Vec::new() };
        Compiler { vocab, rules, slots, graph, stack: Vec::new(), expanded: Vec::new(), steps: 0 }
    }

    fn node(&mut self) -> Result<u32, CompileError> {
        if self.graph.nodes.len() >= MAX_INTENT_STATES {
            return Err(CompileError::TooLarge);
        }
        self.graph.nodes.push(Vec::new());
        Ok((self.graph.nodes.len() - 1) as u32)
    }

    fn edge(&mut self, from: u32, to: u32, kind: EdgeKind, tag: Tag) {
        self.graph.nodes[from as usize].push(Edge { to, kind, tag });
    }

    /// A new node that each of `ends` reaches by an ε edge.
    fn join(&mut self, ends: &[u32]) -> Result<u32, CompileError> {
        let end = self.node()?;
        for &x in ends {
            self.edge(x, end, EdgeKind::Eps, Tag::None);
        }
        Ok(end)
    }

    /// Lays `e` out from node `from`; returns the node where it ends.
    fn expr(&mut self, e: &Expr, from: u32) -> Result<u32, CompileError> {
        self.steps += 1;
        if self.steps > MAX_EXPANSION_STEPS {
            return Err(CompileError::TooLong);
        }
        match e {
            Expr::Word(w) => {
                let id = self.vocab.intern(w);
                let to = self.node()?;
                self.edge(from, to, EdgeKind::Word(id), Tag::None);
                Ok(to)
            }
            Expr::Seq(items) => items.iter().try_fold(from, |at, item| self.expr(item, at)),
            Expr::Alt(branches) => {
                let ends = branches.iter().map(|b| self.expr(b, from)).collect::<Result<Vec<_>, _>>()?;
                self.join(&ends)
            }
            Expr::Opt(inner) => {
                let x = self.expr(inner, from)?;
                self.join(&[x, from])
            }
            Expr::Perm(items) => {
                // Every order written out: the search needs no memory of what it has seen.
                let mut ends = Vec::new();
                for order in permutations(items.len()) {
                    ends.push(order.into_iter().try_fold(from, |at, i| self.expr(&items[i], at))?);
                }
                self.join(&ends)
            }
            Expr::Rule(name) => self.rule(name, from),
            Expr::Slot(name) => self.slot(name, from),
        }
    }

    fn rule(&mut self, name: &str, from: u32) -> Result<u32, CompileError> {
        let rules = self.rules;
        let Some((name, rule)) = rules.get_key_value(name) else {
            return Err(CompileError::UnknownRule(name.to_string()));
        };
        let chain = || self.stack.iter().map(|r| r.to_string()).chain([name.clone()]).collect();
        if self.stack.contains(&name.as_str()) {
            return Err(CompileError::Recursive(chain()));
        }
        if self.stack.len() >= MAX_RULE_DEPTH {
            return Err(CompileError::TooDeep(chain()));
        }
        self.stack.push(name);
        let end = self.expr(rule, from)?;
        self.stack.pop();
        self.expanded.push(name);
        Ok(end)
    }

    fn slot(&mut self, name: &str, from: u32) -> Result<u32, CompileError> {
        let slots = self.slots;
        let Some(index) = slots.iter().position(|s| s.name == name) else {
            return Err(CompileError::UnknownSlot(name.to_string()));
        };
        let idx = index as u16;
        match &slots[index].kind {
            SlotKind::Enum(values) => {
                // Synonyms share their prefixes (a trie): "a bit of milk", "a bit of soy milk"…
                // The value is tagged on the ε edge out of the trie, where it is known.
                let mut children: HashMap<(u32, u32), u32> = HashMap::new();
                let mut finals = Vec::new();
                let trie_root = self.node()?;
                self.edge(from, trie_root, EdgeKind::Eps, Tag::None);
                for (vi, v) in values.iter().enumerate() {
                    for syn in &v.synonyms {
                        let mut at = trie_root;
                        for w in tokenize(syn) {
                            let id = self.vocab.intern(&w);
                            at = match children.get(&(at, id)) {
                                Some(&to) => to,
                                None => {
                                    let to = self.node()?;
                                    self.edge(at, to, EdgeKind::Word(id), Tag::None);
                                    children.insert((at, id), to);
                                    to
                                }
                            };
                        }
                        finals.push((at, vi as u16));
                    }
                }
                let end = self.node()?;
                finals.sort_unstable();
                finals.dedup();
                for (x, vi) in finals {
                    self.edge(x, end, EdgeKind::Eps, Tag::EnumValue(idx, vi));
                }
                Ok(end)
            }
            SlotKind::Integer { .. } | SlotKind::Number { .. } => {
                let end = self.node()?;
                self.edge(from, end, EdgeKind::Number(idx), Tag::None);
                Ok(end)
            }
            SlotKind::Duration { .. } => {
                let end = self.node()?;
                self.edge(from, end, EdgeKind::Duration(idx), Tag::None);
                Ok(end)
            }
            SlotKind::Text { .. } => {
                let inner = self.node()?;
                self.edge(from, inner, EdgeKind::Any(idx), Tag::None);
                self.edge(inner, inner, EdgeKind::Any(idx), Tag::None);
                let end = self.node()?;
                self.edge(inner, end, EdgeKind::Eps, Tag::None);
                Ok(end)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::parse;

    fn rules(defs: &[(&str, &str)]) -> BTreeMap<String, Expr> {
        defs.iter().map(|(n, t)| (n.to_string(), parse(t).unwrap())).collect()
    }

    fn compile(templates: &[&str], rules: &BTreeMap<String, Expr>) -> Result<Grammar, CompileError> {
        let mut g = Grammar::default();
        let templates: Vec<Expr> = templates.iter().map(|t| parse(t).unwrap()).collect();
        g.add_intent(&templates, rules, &[])?;
        Ok(g)
    }

    /// r0 → r1 → … → r{n-1}, the last one a word.
    fn chain_of(n: usize) -> BTreeMap<String, Expr> {
        let mut defs: Vec<(String, String)> =
            (0..n - 1).map(|i| (format!("r{i}"), format!("w{i} <r{}>", i + 1))).collect();
        defs.push((format!("r{}", n - 1), "end".into()));
        defs.iter().map(|(n, t)| (n.clone(), parse(t).unwrap())).collect()
    }

    #[test]
    fn rules_nested_up_to_the_limit_compile_and_one_more_is_an_error_naming_the_chain() {
        let ok = chain_of(MAX_RULE_DEPTH);
        let g = compile(&["go <r0>"], &ok).unwrap();
        assert_eq!(g.graphs[0].words(&g.vocab).filter(|w| w.starts_with('w')).count(), MAX_RULE_DEPTH - 1);
        assert!(check_rules(&ok).is_empty());

        let deep = chain_of(MAX_RULE_DEPTH + 1);
        let Err(CompileError::TooDeep(chain)) = compile(&["go <r0>"], &deep) else { panic!("not refused") };
        assert_eq!(chain.len(), MAX_RULE_DEPTH + 1);
        assert_eq!((chain[0].as_str(), chain[MAX_RULE_DEPTH].as_str()), ("r0", "r16"));
        // Reported once, at the rule the too deep chain starts from.
        let problems = check_rules(&deep);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0, "r0");
        let message = problems[0].1.to_string();
        assert!(message.contains("17 levels deep") && message.contains("<r0> → <r1>"), "{message}");
    }

    #[test]
    fn a_recursive_rule_is_an_error_naming_the_cycle() {
        let r = rules(&[("a", "x [<b>]"), ("b", "y <a>"), ("c", "<a>"), ("d", "z")]);
        let Err(CompileError::Recursive(chain)) = compile(&["<c>"], &r) else { panic!("not refused") };
        assert_eq!(chain, ["c", "a", "b", "a"]);
        let problems: Vec<String> = check_rules(&r).into_iter().map(|(rule, _)| rule).collect();
        assert_eq!(problems, ["a", "b", "c"], "every rule in or leading into the cycle, not d");
        let direct = rules(&[("self", "again [<self>]")]);
        assert_eq!(compile(&["<self>"], &direct).err(), Some(CompileError::Recursive(vec!["self".into(); 2])));
    }

    #[test]
    fn a_fan_out_of_empty_rules_stops_at_the_step_limit() {
        // Eight references per rule, twelve levels: 8^12 visits that make no state.
        let mut defs: Vec<(String, String)> =
            (0..12).map(|i| (format!("r{i}"), vec![format!("<r{}>", i + 1); 8].join(" "))).collect();
        defs.push(("r12".into(), "()".into()));
        let r: BTreeMap<String, Expr> = defs.iter().map(|(n, t)| (n.clone(), parse(t).unwrap())).collect();
        assert_eq!(compile(&["x <r0>"], &r).err(), Some(CompileError::TooLong));
        let (rule, error) = &check_rules(&r)[0];
        assert_eq!((rule.as_str(), error), ("r0", &CompileError::TooLong));
    }

    #[test]
    fn the_state_count_is_the_compiled_graph() {
        let g = compile(&["(a | b) [c] {x}"], &BTreeMap::new());
        assert_eq!(g.err(), Some(CompileError::UnknownSlot("x".into())));
        let g = compile(&["(a | b) [c]", "(d; e)"], &BTreeMap::new()).unwrap();
        // start; a, b, join; c, join; d e, e d (4), join; end.
        assert_eq!(g.graphs[0].nodes.len(), 1 + 3 + 2 + 5 + 1);
        let words: BTreeSet<&str> = g.graphs[0].words(&g.vocab).collect();
        assert_eq!(words, BTreeSet::from(["a", "b", "c", "d", "e"]));
    }
}
