//! The barista benchmark's scoring (`shared/data/barista/README.md` beside the repository, or `$SOTTO_BARISTA`): a command counts only
//! when the intent and every slot (name and value, trimmed) are right; a missing or extra slot is
//! a miss. Also derives reference phrasings from the labels for a text-level check.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Resolution;

#[derive(Debug, Clone, Deserialize)]
pub struct Label {
    pub intent: String,
    pub slots: BTreeMap<String, String>,
}

/// The data set folder: `$SOTTO_BARISTA`, else `shared/data/barista` beside the repository.
pub fn data_dir() -> PathBuf {
    std::env::var_os("SOTTO_BARISTA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/barista"))
}

pub fn read_labels(dir: &Path) -> Result<BTreeMap<String, Label>, String> {
    let path = dir.join("labels.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("barista labels {}: {e} (set SOTTO_BARISTA to the data set folder)", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Benchmark scoring of one resolution against one label.
pub fn accepted(label: &Label, r: &Resolution) -> bool {
    if !r.accepted() || r.intent.as_deref() != Some(label.intent.as_str()) || r.slots.len() != label.slots.len() {
        return false;
    }
    label.slots.iter().all(|(k, v)| r.slots.get(k).is_some_and(|got| got.as_text().trim() == v.trim()))
}

const ORDERS: [&str; 9] =
    ["brew", "can I get", "can I have", "I want", "get me", "give me", "I'd like", "make me", "may I have"];

/// A reference sentence for a label in the benchmark grammar's shape; `variant` picks the order
/// phrase and the order of the slots, so the set covers the grammar's word orders.
pub fn reference_phrase(label: &Label, variant: usize) -> String {
    let get = |k: &str| label.slots.get(k).map(|v| v.trim().to_string());
    let mut pre: Vec<String> = ["size", "roast", "numberOfShots"].iter().filter_map(|k| get(k)).collect();
    // Rotate/reverse through the six orders of the three pre-drink slots.
    let n = pre.len().max(1);
    pre.rotate_left(variant % n);
    if (variant / 3) % 2 == 1 {
        pre.reverse();
    }
    let mut s = format!("{} a", ORDERS[variant % ORDERS.len()]);
    for p in pre {
        s.push(' ');
        s.push_str(&p);
    }
    s.push(' ');
    s.push_str(&get("coffeeDrink").unwrap_or_default());
    let mut extras: Vec<String> = ["milkAmount", "sugarAmount"].iter().filter_map(|k| get(k)).collect();
    if variant % 2 == 1 {
        extras.reverse();
    }
    if !extras.is_empty() {
        s.push_str(" with ");
        s.push_str(&extras.join(" and "));
    }
    s
}
