//! `GET|PUT /_logging/settings` and `GET /_cat/loggers`: log levels at runtime.

use serde_json::{json, Map, Value};

use super::settings::{audit_keys, Params};
use crate::cat::{self, CatParams, Cell, Column};
use crate::params::Query;
use crate::render::Rendered;
use crate::settings::keys::LoggerKeys;
use crate::settings::logging::{shape, Loggers};
use crate::settings::{StoreState, Tier, Update, OPERATOR};
use crate::{ApiError, Registry};

fn body(state: &StoreState, params: &Params) -> Result<Rendered, ApiError> {
    let loggers = &state.logging;
    let (defaults, directives) = loggers.installed()?;
    let mut out = Map::new();
    out.insert(
        Tier::Persistent.name().to_owned(),
        shape(&loggers.persistent, params.flat),
    );
    out.insert(
        Tier::Transient.name().to_owned(),
        shape(&loggers.transient, params.flat),
    );
    // Shown when an operator settings file is configured, even when it sets no level.
    if state.operator.is_some() {
        out.insert(OPERATOR.to_owned(), shape(&loggers.operator, params.flat));
    }
    if params.include_defaults {
        out.insert(
            "defaults".to_owned(),
            shape(&Loggers::defaults(defaults), params.flat),
        );
        // Not settings: the filter itself, as the app gave it and as it runs now.
        out.insert(
            "directives".to_owned(),
            json!({"default": defaults.as_str(), "effective": directives}),
        );
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
    // One change at a time, routes' included: validation, the file write, the reload and the
    // commit happen under this lock.
    let mut state = reg.settings().lock();
    // Without a filter, say how to install one, whatever the body.
    state.logging.installed()?;
    let update = Update::parse_with(payload, &LoggerKeys)?;
    let changed = state.apply_levels(&update)?;
    audit_keys(
        caller,
        &changed,
        "log level changed",
        "log levels PUT changed nothing",
    );
    body(&state, &params)
}

/// The columns of `_cat/loggers`, in `h=*` order.
const LOGGER_COLUMNS: &[Column] = &[
    Column::text(
        "target",
        &["t"],
        "tracing target (_root: the default level)",
    ),
    Column::text("level", &["l"], "effective level"),
    Column::text(
        "tier",
        &["ti"],
        "where the level comes from: operator, transient, persistent or default",
    ),
    Column::text("operator", &["op"], "operator settings file's level").hidden(),
    Column::text("transient", &["tr"], "transient setting").hidden(),
    Column::text("persistent", &["pe"], "persistent setting").hidden(),
    Column::text(
        "default",
        &["d"],
        "level of the default directives (the app's, e.g. RUST_LOG)",
    )
    .hidden(),
];

pub(crate) fn cat(reg: &Registry, query: Query, path: &str) -> Result<Rendered, ApiError> {
    let params = CatParams::take(query, path)?;
    let state = reg.settings().lock();
    let (defaults, _) = state.logging.installed()?;
    let opt = |l: Option<&str>| l.map_or(Cell::Null, |l| Cell::Str(l.to_owned()));
    let rows = state
        .logging
        .rows(defaults)
        .into_iter()
        .map(|r| {
            vec![
                Cell::Str(r.target),
                Cell::Str(r.level.to_owned()),
                Cell::Str(r.tier.to_owned()),
                opt(r.operator),
                opt(r.transient),
                opt(r.persistent),
                opt(r.default),
            ]
        })
        .collect();
    drop(state);
    cat::render(LOGGER_COLUMNS, rows, &params)
}
