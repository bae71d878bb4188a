//! Route settings, log levels and node settings, in these parts, each one building only on those above it:
//!
//! - [`keys`]: every key, its description and its validation (the grammar of route keys and
//!   of `logger.*` keys);
//! - [`tiers`]: the persistent and transient tiers with Elasticsearch's update semantics (dot
//!   notation, `null` resets, wildcard group resets), and how they merge;
//! - the stores: [`file`](mod@file), the settings file the persistent tier lives in;
//!   [`logging`], the `logger.*` settings (log levels) and the filter directives they give;
//!   `node`, the node-wide settings (`blocking.threshold`, `poll_timing.enabled`);
//!   [`operator`], the operator settings file, the fleet's settings, above transient;
//! - [`store`]: all of them under one lock, updated all or nothing;
//!
//! and [`slot`], the effective value of each route as the middleware reads it.
//!
//! # Adding a key
//!
//! Add a [`KeySpec`] to [`KEYS`] (name, description, parser), then read it where its effect
//! lives (for `preempt.*`, [`Preempt::from_settings`]; for `limits.*`, [`Limits::from_settings`]). Validation, both tiers, dot notation,
//! wildcard resets, `flat_settings`, `include_defaults` and the file format follow by themselves.

use std::collections::BTreeMap;

use serde_json::Value;

pub mod file;
pub mod keys;
pub mod logging;
pub(crate) mod node;
pub mod operator;
pub mod slot;
pub mod store;
pub mod tiers;

pub use file::SettingsError;
pub use keys::{defaults, parse_time, KeySpec, KEYS, MAX_IN_FLIGHT, MAX_REASON, NODE_KEYS};
pub use logging::{ApplyFilter, DefaultDirectives, InstallError};
pub use slot::{Flags, Limits, Preempt, SettingsSlot};
pub(crate) use store::StoreState;
pub use store::{OperatorStatus, SettingsStore};
pub use tiers::{nest, Tier, Update, OPERATOR};

/// Settings of one route in one tier: flat dotted key to validated value.
pub type Flat = BTreeMap<String, Value>;
