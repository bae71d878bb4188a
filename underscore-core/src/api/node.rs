//! `GET|PUT /_node/settings`: the node-wide settings (`blocking.threshold`,
//! `poll_timing.enabled`), in the tiers of the other settings APIs.

use serde_json::{Map, Value};

use super::settings::{audit_keys, shape, Params};
use crate::params::Query;
use crate::render::Rendered;
use crate::settings::keys::NodeKeys;
use crate::settings::{Flat, StoreState, Tier, Update, OPERATOR};
use crate::{ApiError, Registry};

fn body(state: &StoreState, params: &Params) -> Result<Rendered, ApiError> {
    let shape = |flat: &Flat| shape(flat, params.flat);
    let node = &state.node;
    let mut out = Map::new();
    out.insert(Tier::Persistent.name().to_owned(), shape(&node.persistent));
    out.insert(Tier::Transient.name().to_owned(), shape(&node.transient));
    // Shown when an operator settings file is configured, even when it sets no node key.
    if state.operator.is_some() {
        out.insert(OPERATOR.to_owned(), shape(&node.operator));
    }
    if params.include_defaults {
        out.insert("defaults".to_owned(), shape(&node.defaults()));
    }
    params.doc.render(Value::Object(out))
}

pub(crate) fn get(reg: &Registry, query: Query, path: &str) -> Result<Rendered, ApiError> {
    let params = Params::take(query, path)?;
    body(&reg.settings().lock(), &params)
}

pub(crate) fn put(
    reg: &Registry,
    query: Query,
    path: &str,
    payload: &[u8],
    caller: &str,
) -> Result<Rendered, ApiError> {
    let params = Params::take(query, path)?;
    let update = Update::parse_with(payload, &NodeKeys)?;
    // One change at a time, routes' and levels' included: validation, the file write and the
    // commit happen under this lock, and the process takes the values before it is released.
    let mut state = reg.settings().lock();
    let changed = state.apply_node(&update)?;
    reg.apply_node_settings(&state);
    audit_keys(
        caller,
        &changed,
        "node setting changed",
        "node settings PUT changed nothing",
    );
    body(&state, &params)
}
