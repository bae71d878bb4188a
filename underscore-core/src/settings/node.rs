//! Node-wide settings: one value for the whole process
//! ([`NODE_KEYS`](super::keys::NODE_KEYS): `blocking.threshold`,
//! `poll_timing.enabled`), in the tiers and with the update semantics of the other settings
//! ([`tiers`](super::tiers)), the operator's tier above them. Unlike route keys, their defaults
//! are not constants but the app's configuration (`Underscore::builder().poll_timing(..)` and
//! `.blocking_threshold(..)`), so that `include_defaults` shows what the app was built with.
//!
//! It builds on [`keys`](super::keys) and [`tiers`](super::tiers); the [`store`](super::store)
//! keeps it under its lock, and the registry applies its `NodeValues` to the process
//! ([`crate::workers`]).

use std::time::Duration;

use serde_json::Value;

use super::tiers::{effective, next_tiers, KeyChanged, Update};
use super::Flat;
use crate::{time_value, workers};

/// The key of the blocking threshold.
pub(crate) const BLOCKING_THRESHOLD: &str = "blocking.threshold";
/// The key that turns poll timing on.
pub(crate) const POLL_TIMING: &str = "poll_timing.enabled";

/// What the node settings set in the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NodeValues {
    /// Whether each poll of a tracked request is timed.
    pub poll_timing: bool,
    /// A timed poll longer than this is a blocking poll.
    pub blocking_threshold: Duration,
}

impl Default for NodeValues {
    fn default() -> Self {
        Self {
            poll_timing: false,
            blocking_threshold: workers::DEFAULT_BLOCKING_THRESHOLD,
        }
    }
}

impl NodeValues {
    /// The values as settings: every node key.
    fn to_flat(self) -> Flat {
        [
            (
                BLOCKING_THRESHOLD.to_owned(),
                Value::from(time_value::format(self.blocking_threshold)),
            ),
            (POLL_TIMING.to_owned(), Value::from(self.poll_timing)),
        ]
        .into()
    }

    /// The values of `flat` (validated settings), the key it lacks from `self`.
    fn overlaid(self, flat: &Flat) -> Self {
        let threshold = flat
            .get(BLOCKING_THRESHOLD)
            .and_then(Value::as_str)
            .and_then(|t| time_value::parse(t).ok());
        Self {
            poll_timing: flat
                .get(POLL_TIMING)
                .and_then(Value::as_bool)
                .unwrap_or(self.poll_timing),
            blocking_threshold: threshold.unwrap_or(self.blocking_threshold),
        }
    }
}

/// Every tier of the node settings, and the app's configuration under them.
#[derive(Debug, Default)]
pub(crate) struct NodeSettings {
    pub persistent: Flat,
    pub transient: Flat,
    /// The operator settings file's node settings (empty without the file).
    pub operator: Flat,
    /// The app's configuration: what applies where no tier sets a key.
    pub defaults: NodeValues,
}

/// The node settings an update gives, and what changes: see [`NodeSettings::next`].
#[derive(Debug)]
pub(crate) struct NextNode {
    pub persistent: Flat,
    pub transient: Flat,
    pub changed: Vec<KeyChanged>,
}

impl NodeSettings {
    /// The defaults as settings (`include_defaults`).
    pub(crate) fn defaults(&self) -> Flat {
        self.defaults.to_flat()
    }

    /// Operator, else transient, else persistent, else the default: every key.
    pub(crate) fn values(&self) -> NodeValues {
        self.defaults.overlaid(&effective(
            &self.persistent,
            &self.transient,
            &self.operator,
        ))
    }

    /// What `update` would make of both tiers, without changing anything.
    pub(crate) fn next(&self, update: &Update) -> NextNode {
        let (persistent, transient, changed) =
            next_tiers(&self.persistent, &self.transient, update);
        NextNode {
            persistent,
            transient,
            changed,
        }
    }

    /// Makes `next` the settings in effect.
    pub(crate) fn commit(&mut self, next: NextNode) -> Vec<KeyChanged> {
        self.persistent = next.persistent;
        self.transient = next.transient;
        next.changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::keys::{NodeKeys, NODE_KEYS};
    use serde_json::json;

    fn update(body: Value) -> Update {
        Update::parse_with(body.to_string().as_bytes(), &NodeKeys).unwrap()
    }

    #[test]
    fn every_key_has_a_default_and_the_highest_tier_wins() {
        let mut node = NodeSettings::default();
        assert_eq!(
            node.defaults()
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            NODE_KEYS.iter().map(|k| k.key).collect::<Vec<_>>()
        );
        assert_eq!(node.defaults()[BLOCKING_THRESHOLD], json!("10ms"));
        assert_eq!(node.values(), NodeValues::default());
        node.defaults = NodeValues {
            poll_timing: true,
            blocking_threshold: Duration::from_millis(50),
        };
        assert_eq!(node.defaults()[BLOCKING_THRESHOLD], json!("50ms"));

        let next = node.next(&update(json!({
            "persistent": {"blocking.threshold": "20ms"},
            "transient": {"blocking": {"threshold": "30ms"}, "poll_timing.enabled": false},
        })));
        assert_eq!(next.changed.len(), 3);
        assert_eq!(
            node.values().blocking_threshold,
            Duration::from_millis(50),
            "not committed"
        );
        node.commit(next);
        assert_eq!(
            node.values(),
            NodeValues {
                poll_timing: false,
                blocking_threshold: Duration::from_millis(30),
            }
        );
        node.operator = [(BLOCKING_THRESHOLD.to_owned(), json!("5ms"))].into();
        assert_eq!(node.values().blocking_threshold, Duration::from_millis(5));

        // A wildcard reset of the transient tier: the persistent value shows through.
        node.operator.clear();
        let next = node.next(&update(json!({"transient": {"blocking.*": null}})));
        node.commit(next);
        assert_eq!(node.values().blocking_threshold, Duration::from_millis(20));
        assert!(!node.values().poll_timing, "poll_timing.enabled stays set");
    }
}
