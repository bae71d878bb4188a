//! The persistent and transient tiers: Elasticsearch's update semantics (dot notation, `null`
//! resets, wildcard group resets), and how the tiers, the operator's above them, merge into the
//! effective settings.
//!
//! It builds on [`keys`](super::keys) only; the stores ([`file`](mod@super::file),
//! [`logging`](super::logging), [`store`](super::store)) build on it.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Debug;

use serde_json::{Map, Value};

use super::keys::{KeySet, RouteKeys};
use super::Flat;
use crate::{glob, ApiError};

/// A settings tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// Survives restarts: written to the settings file.
    Persistent,
    /// Lost on restart; wins over persistent.
    Transient,
}

impl Tier {
    /// `persistent` or `transient`.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Persistent => "persistent",
            Tier::Transient => "transient",
        }
    }
}

/// What a PUT asks for one key, or a wildcard group of keys. `K` is the validated key:
/// `&'static str` for a fixed set of keys (routes), `String` for an open one (loggers).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Change<K = &'static str> {
    Set(K, Value),
    Reset(String),
}

/// A validated PUT body.
#[derive(Debug)]
pub struct Update<K = &'static str> {
    persistent: Vec<Change<K>>,
    transient: Vec<Change<K>>,
}

impl<K> Default for Update<K> {
    fn default() -> Self {
        Self {
            persistent: Vec::new(),
            transient: Vec::new(),
        }
    }
}

impl Update {
    /// Parses and validates a PUT body: every key known, every value valid, or an error that
    /// names the key and the value.
    ///
    /// # Errors
    ///
    /// A 400 `parse_exception` for malformed JSON or an empty body, a 400
    /// `illegal_argument_exception` for anything else.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        Self::parse_with(body, &RouteKeys)
    }
}

impl<K: AsRef<str> + Clone + PartialEq + Debug> Update<K> {
    /// [`Update::parse`], for the keys of `keys`.
    pub(crate) fn parse_with<S: KeySet<Key = K>>(body: &[u8], keys: &S) -> Result<Self, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::parse("request body is required"));
        }
        // serde_json refuses nesting deeper than 128 levels: deep bodies are an error, not a
        // stack overflow.
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::parse(format!("request body is not valid JSON: {e}")))?;
        let Value::Object(top) = value else {
            return Err(ApiError::illegal_argument(
                "request body must be an object with [persistent] and/or [transient]",
            ));
        };
        let mut update = Update::default();
        for (tier_name, settings) in top {
            let tier = match tier_name.as_str() {
                "persistent" => Tier::Persistent,
                "transient" => Tier::Transient,
                other => {
                    return Err(ApiError::illegal_argument(format!(
                    "unknown field [{other}] in request body, expected [persistent] or [transient]"
                )))
                }
            };
            let Value::Object(settings) = settings else {
                return Err(ApiError::illegal_argument(format!(
                    "[{tier_name}] must be an object of settings"
                )));
            };
            let mut flat: Vec<(String, Value)> = Vec::new();
            flatten("", settings, &mut flat);
            let mut seen: HashSet<String> = HashSet::new();
            let changes = match tier {
                Tier::Persistent => &mut update.persistent,
                Tier::Transient => &mut update.transient,
            };
            for (key, value) in flat {
                if !seen.insert(key.clone()) {
                    return Err(ApiError::illegal_argument(format!(
                        "{tier_name} setting [{key}] is given more than once"
                    )));
                }
                changes.push(change(keys, tier, key, value)?);
            }
        }
        Ok(update)
    }

    /// Whether the update touches the persistent tier.
    pub fn touches_persistent(&self) -> bool {
        !self.persistent.is_empty()
    }

    pub(crate) fn changes(&self, tier: Tier) -> &[Change<K>] {
        match tier {
            Tier::Persistent => &self.persistent,
            Tier::Transient => &self.transient,
        }
    }
}

/// Flattens nested objects into dotted keys; an empty object contributes nothing.
pub(crate) fn flatten(prefix: &str, map: Map<String, Value>, out: &mut Vec<(String, Value)>) {
    for (k, v) in map {
        let key = if prefix.is_empty() {
            k
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Object(inner) => flatten(&key, inner, out),
            other => out.push((key, other)),
        }
    }
}

fn change<S: KeySet>(
    keys: &S,
    tier: Tier,
    key: String,
    value: Value,
) -> Result<Change<S::Key>, ApiError> {
    let tier_name = tier.name();
    if glob::is_pattern(&key) {
        if !value.is_null() {
            return Err(ApiError::illegal_argument(format!(
                "{tier_name} setting [{key}] is a pattern: it can only be reset with null, got [{value}]"
            )));
        }
        if !keys.matches_some(&key) {
            return Err(ApiError::illegal_argument(format!(
                "{tier_name} setting [{key}], matches no setting"
            )));
        }
        return Ok(Change::Reset(key));
    }
    let (canonical, parse) = keys.check(&key).map_err(|why| {
        ApiError::illegal_argument(format!("{tier_name} setting [{key}], not recognized{why}"))
    })?;
    if value.is_null() {
        return Ok(Change::Reset(key));
    }
    let value = parse(&value).map_err(|why| {
        ApiError::illegal_argument(format!(
            "failed to parse {tier_name} setting [{key}] with value [{value}]: {why}"
        ))
    })?;
    Ok(Change::Set(canonical, value))
}

pub(crate) fn apply<K: AsRef<str>>(flat: &mut Flat, changes: &[Change<K>]) {
    for change in changes {
        match change {
            Change::Set(key, value) => {
                flat.insert(key.as_ref().to_owned(), value.clone());
            }
            Change::Reset(pattern) => flat.retain(|key, _| !glob::matches(pattern, key)),
        }
    }
}

/// Turns flat keys into nested objects: `preempt.status` into `{"preempt": {"status": ..}}`.
pub fn nest(flat: &Flat) -> Value {
    let mut root = Map::new();
    for (key, value) in flat {
        let mut parts: Vec<&str> = key.split('.').collect();
        let last = parts.pop().expect("split yields at least one part");
        let mut node = &mut root;
        for part in parts {
            let entry = node
                .entry(part.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            node = entry
                .as_object_mut()
                .expect("keys never prefix one another");
        }
        node.insert(last.to_owned(), value.clone());
    }
    Value::Object(root)
}

/// The name of the tier the operator settings file sets: above transient, refused to PUTs.
pub const OPERATOR: &str = "operator";

/// One entry of the operator tier: an `{ids}` expression (comma list, `*` wildcards, `_all`)
/// and the settings it gives the routes it matches, now or later.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RouteEntry {
    pub ids: String,
    pub settings: Flat,
}

impl RouteEntry {
    /// How closely the expression names `id`: 2 by name, 1 by a pattern, 0 by `_all` or `*`;
    /// `None` when it does not match it.
    fn rank(&self, id: &str) -> Option<u8> {
        self.ids
            .split(',')
            .map(str::trim)
            .filter_map(|item| match item {
                "_all" | "*" => Some(0),
                pattern if glob::is_pattern(pattern) => glob::matches(pattern, id).then_some(1),
                name => (name == id).then_some(2),
            })
            .max()
    }

    /// The route ids the expression names literally (no pattern, no `_all`).
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.ids
            .split(',')
            .map(str::trim)
            .filter(|item| *item != "_all" && !glob::is_pattern(item))
    }
}

/// The operator tier of `id`: the settings of every entry that matches it, the closest match
/// winning a key (a name over a pattern over `_all`), then the later entry in the file.
pub(crate) fn operator_for(entries: &[RouteEntry], id: &str) -> Flat {
    let mut hits: Vec<(u8, usize)> = entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| Some((e.rank(id)?, i)))
        .collect();
    hits.sort_unstable();
    let mut out = Flat::new();
    for (_, i) in hits {
        out.extend(
            entries[i]
                .settings
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
    }
    out
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Tiers {
    pub persistent: BTreeMap<String, Flat>,
    pub transient: BTreeMap<String, Flat>,
    /// The operator settings file's routes, in file order (empty without the file).
    pub operator: Vec<RouteEntry>,
}

impl Tiers {
    pub(crate) fn tier(&self, tier: Tier) -> &BTreeMap<String, Flat> {
        match tier {
            Tier::Persistent => &self.persistent,
            Tier::Transient => &self.transient,
        }
    }

    pub(crate) fn tier_mut(&mut self, tier: Tier) -> &mut BTreeMap<String, Flat> {
        match tier {
            Tier::Persistent => &mut self.persistent,
            Tier::Transient => &mut self.transient,
        }
    }

    /// The operator tier of `id`.
    pub(crate) fn operator(&self, id: &str) -> Flat {
        operator_for(&self.operator, id)
    }

    /// Operator, else transient, else persistent, else default (unset).
    pub(crate) fn effective(&self, id: &str) -> Flat {
        effective(
            self.persistent.get(id).unwrap_or(&Flat::new()),
            self.transient.get(id).unwrap_or(&Flat::new()),
            &self.operator(id),
        )
    }

    /// Where each key of `id`'s effective settings comes from: `operator`, `transient` or
    /// `persistent`.
    pub(crate) fn sources(&self, id: &str) -> BTreeMap<String, &'static str> {
        let mut out = BTreeMap::new();
        let layers = [
            (Tier::Persistent.name(), self.persistent.get(id)),
            (Tier::Transient.name(), self.transient.get(id)),
        ];
        for (name, flat) in layers {
            for key in flat.into_iter().flat_map(Flat::keys) {
                out.insert(key.clone(), name);
            }
        }
        for key in self.operator(id).into_keys() {
            out.insert(key, OPERATOR);
        }
        out
    }

    /// Every id that has settings in either tier, or that the operator tier names, sorted.
    pub(crate) fn ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self
            .persistent
            .keys()
            .chain(self.transient.keys())
            .map(String::as_str)
            .chain(self.operator.iter().flat_map(RouteEntry::names))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// Operator, else transient, else persistent: the keys of every tier, the highest tier's value
/// where several have one.
pub(crate) fn effective(persistent: &Flat, transient: &Flat, operator: &Flat) -> Flat {
    let mut out = persistent.clone();
    for tier in [transient, operator] {
        out.extend(tier.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    out
}

/// Every key whose value differs between `old` and `new`, with both values (`None`: unset),
/// for the audit log.
pub(crate) fn diff<'a>(
    old: &'a Flat,
    new: &'a Flat,
) -> impl Iterator<Item = (&'a String, Option<&'a Value>, Option<&'a Value>)> {
    old.keys()
        .chain(new.keys().filter(|k| !old.contains_key(*k)))
        .map(|key| (key, old.get(key), new.get(key)))
        .filter(|(_, o, n)| o != n)
}

/// One key's change in one tier of a node-wide set of keys (log levels, node settings), for
/// the audit log.
#[derive(Debug, PartialEq)]
pub(crate) struct KeyChanged {
    pub tier: Tier,
    pub key: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// Both tiers of a node-wide set of keys after `update`, and what it changes; nothing is
/// committed.
pub(crate) fn next_tiers<K: AsRef<str> + Clone + PartialEq + Debug>(
    persistent: &Flat,
    transient: &Flat,
    update: &Update<K>,
) -> (Flat, Flat, Vec<KeyChanged>) {
    let (mut next_p, mut next_t) = (persistent.clone(), transient.clone());
    apply(&mut next_p, update.changes(Tier::Persistent));
    apply(&mut next_t, update.changes(Tier::Transient));
    let changed = [
        (Tier::Persistent, persistent, &next_p),
        (Tier::Transient, transient, &next_t),
    ]
    .into_iter()
    .flat_map(|(tier, old, new)| {
        diff(old, new).map(move |(key, o, n)| KeyChanged {
            tier,
            key: key.clone(),
            old: o.cloned(),
            new: n.cloned(),
        })
    })
    .collect();
    (next_p, next_t, changed)
}

/// One route key's change, for the audit log.
#[derive(Debug)]
pub(crate) struct Changed {
    pub id: String,
    pub tier: Tier,
    pub key: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn update(body: Value) -> Result<Update, ApiError> {
        Update::parse(body.to_string().as_bytes())
    }

    fn reason(body: Value) -> String {
        update(body).unwrap_err().reason
    }

    #[test]
    fn nested_and_dotted_keys_are_equivalent() {
        let a =
            update(json!({"transient": {"preempt": {"status": 503, "reason": "Busy"}}})).unwrap();
        let b =
            update(json!({"transient": {"preempt.status": 503, "preempt": {"reason": "Busy"}}}))
                .unwrap();
        assert_eq!(a.transient, b.transient);
        assert!(!a.touches_persistent());
    }

    #[test]
    fn values_are_validated_and_named() {
        assert_eq!(
            reason(json!({"transient": {"preempt.status": 42}})),
            "failed to parse transient setting [preempt.status] with value [42]: must be an integer from 200 to 599"
        );
        assert!(reason(json!({"persistent": {"preempt": {"status": true}}}))
            .contains("[preempt.status] with value [true]"));
        assert!(
            reason(json!({"transient": {"preempt.reason": "a\r\nInjected: 1"}}))
                .contains("printable ASCII")
        );
        assert!(reason(json!({"transient": {"preempt.reason": ""}})).contains("1 to 128"));
        assert!(reason(json!({"transient": {"preempt.retry_after": -1}}))
            .contains("[preempt.retry_after]"));
        assert!(reason(json!({"transient": {"preempt.text": 5}})).contains("must be a string"));
        // Numbers written as strings are accepted, as in Elasticsearch.
        let u = update(json!({"transient": {"preempt.status": "503"}})).unwrap();
        assert_eq!(u.transient, [Change::Set("preempt.status", json!(503))]);
    }

    #[test]
    fn unknown_keys_and_shapes_are_rejected() {
        assert_eq!(
            reason(json!({"transient": {"preempt.stat": 1}})),
            "transient setting [preempt.stat], not recognized"
        );
        assert_eq!(
            reason(json!({"transient": {"preempt": null}})),
            "transient setting [preempt], not recognized; to reset the group, use [preempt.*]"
        );
        assert!(reason(json!({"sometimes": {}})).contains("unknown field [sometimes]"));
        assert!(reason(json!({"transient": null})).contains("[transient] must be an object"));
        assert!(reason(json!([1])).contains("must be an object"));
        assert!(reason(json!({"transient": {"preempt.*": 503}}))
            .contains("can only be reset with null"));
        assert!(reason(json!({"transient": {"nothing.*": null}})).contains("matches no setting"));
        assert!(
            reason(json!({"transient": {"preempt": {"status": 500}, "preempt.status": 503}}))
                .contains("more than once")
        );
    }

    #[test]
    fn malformed_and_deep_bodies_are_parse_errors() {
        assert_eq!(Update::parse(b"{nope").unwrap_err().kind, "parse_exception");
        assert_eq!(
            Update::parse(b"  ").unwrap_err().reason,
            "request body is required"
        );
        let deep = "[".repeat(100_000);
        assert_eq!(
            Update::parse(deep.as_bytes()).unwrap_err().kind,
            "parse_exception"
        );
        let deep_obj = format!("{{\"transient\":{}{}", "{\"a\":".repeat(5000), "1");
        assert_eq!(Update::parse(deep_obj.as_bytes()).unwrap_err().status, 400);
    }

    #[test]
    fn set_reset_and_group_reset() {
        let mut flat = Flat::new();
        apply(
            &mut flat,
            &update(
                json!({"transient": {"preempt": {"status": 503, "reason": "Busy", "text": "t"}}}),
            )
            .unwrap()
            .transient,
        );
        assert_eq!(flat.len(), 3);
        // Absent keys are untouched; null resets one key.
        apply(
            &mut flat,
            &update(json!({"transient": {"preempt.status": 500, "preempt.text": null}}))
                .unwrap()
                .transient,
        );
        assert_eq!(
            nest(&flat),
            json!({"preempt": {"reason": "Busy", "status": 500}})
        );
        apply(
            &mut flat,
            &update(json!({"transient": {"preempt.*": null}}))
                .unwrap()
                .transient,
        );
        assert!(flat.is_empty());
    }
}
