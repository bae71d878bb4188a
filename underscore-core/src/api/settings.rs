//! `GET /_routes/settings`, `GET /_routes/{ids}/settings` and `PUT /_routes/{ids}/settings`.

use serde_json::{Map, Value};

use crate::params::Query;
use crate::render::DocParams;
use crate::render::Rendered;
use crate::settings::tiers::KeyChanged;
use crate::settings::{defaults, nest, Flat, StoreState, Tier, Update, OPERATOR};
use crate::{ApiError, Registry};

/// The parameters of the settings APIs (route settings and log levels).
pub(super) struct Params {
    pub doc: DocParams,
    pub flat: bool,
    pub include_defaults: bool,
}

impl Params {
    pub(super) fn take(mut query: Query, path: &str) -> Result<Self, ApiError> {
        let params = Self {
            doc: DocParams::take_from(&mut query)?,
            flat: query.take_bool("flat_settings")?,
            include_defaults: query.take_bool("include_defaults")?,
        };
        query.finish(path)?;
        Ok(params)
    }
}

/// Every id settings can be addressed by: the routes, then ids that only have stored settings
/// (a route that is gone, or a plain actix-web route not seen yet since the restart).
fn known_ids(reg: &Registry, state: &StoreState) -> Vec<String> {
    let mut ids = reg.ids();
    let stored: Vec<String> = state
        .tiers
        .ids()
        .into_iter()
        .filter(|id| !ids.iter().any(|known| known == id))
        .map(str::to_owned)
        .collect();
    ids.extend(stored);
    ids
}

fn select(reg: &Registry, state: &StoreState, expr: Option<&str>) -> Result<Vec<String>, ApiError> {
    super::select(known_ids(reg, state), expr, "route", Clone::clone)
}

/// Settings as a document: nested objects, or flat dotted keys (`flat_settings`).
pub(super) fn shape(flat: &Flat, flat_keys: bool) -> Value {
    if flat_keys {
        Value::Object(flat.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    } else {
        nest(flat)
    }
}

fn body(state: &StoreState, ids: &[String], params: &Params) -> Result<Rendered, ApiError> {
    let shape = |flat: &Flat| shape(flat, params.flat);
    let empty = Flat::new();
    let out: Map<String, Value> = ids
        .iter()
        .map(|id| {
            let mut entry = Map::new();
            for tier in [Tier::Persistent, Tier::Transient] {
                let flat = state.tiers.tier(tier).get(id).unwrap_or(&empty);
                entry.insert(tier.name().to_owned(), shape(flat));
            }
            // Shown when an operator settings file is configured, even when it sets nothing.
            if state.operator.is_some() {
                entry.insert(OPERATOR.to_owned(), shape(&state.tiers.operator(id)));
            }
            if params.include_defaults {
                entry.insert("defaults".to_owned(), shape(&defaults()));
            }
            (id.clone(), Value::Object(entry))
        })
        .collect();
    params.doc.render(Value::Object(out))
}

pub(crate) fn get(
    reg: &Registry,
    query: Query,
    path: &str,
    ids: Option<&str>,
) -> Result<Rendered, ApiError> {
    let params = Params::take(query, path)?;
    let state = reg.settings().lock();
    let ids = select(reg, &state, ids)?;
    body(&state, &ids, &params)
}

pub(crate) fn put(
    reg: &Registry,
    query: Query,
    path: &str,
    ids: &str,
    payload: &[u8],
    caller: &str,
) -> Result<Rendered, ApiError> {
    let params = Params::take(query, path)?;
    let update = Update::parse(payload)?;
    // One PUT at a time: validation, the file write and the commit happen under this lock.
    let mut state = reg.settings().lock();
    let ids = select(reg, &state, Some(ids))?;
    let changed = state.apply(&ids, &update)?;
    reg.refresh(&state, ids.iter().map(String::as_str));
    for c in &changed {
        tracing::info!(
            target: "underscore::audit",
            caller,
            route = %c.id,
            tier = c.tier.name(),
            setting = %c.key,
            old = %audit_value(&c.old),
            new = %audit_value(&c.new),
            "route setting changed"
        );
    }
    if changed.is_empty() {
        tracing::info!(target: "underscore::audit", caller, routes = ?ids, "route settings PUT changed nothing");
    }
    body(&state, &ids, &params)
}

/// Audits each change of a node-wide set of keys (log levels, node settings) a PUT by `caller`
/// made, as `what` (`"log level changed"`), or that it changed nothing, as `nothing`.
pub(super) fn audit_keys(caller: &str, changed: &[KeyChanged], what: &str, nothing: &str) {
    for c in changed {
        tracing::info!(
            target: "underscore::audit",
            caller,
            tier = c.tier.name(),
            setting = %c.key,
            old = %audit_value(&c.old),
            new = %audit_value(&c.new),
            "{what}"
        );
    }
    if changed.is_empty() {
        tracing::info!(target: "underscore::audit", caller, "{nothing}");
    }
}

/// A setting's value as the audit log shows it: its JSON, `null` when unset.
pub(super) fn audit_value(value: &Option<Value>) -> String {
    value
        .as_ref()
        .map_or_else(|| "null".to_owned(), Value::to_string)
}
