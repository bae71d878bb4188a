//! `GET /_cat/middlewares` and `GET /_cat/transports`.

use std::sync::atomic::Ordering;

use crate::cat::{self, CatParams, Cell, Column};
use crate::components::{middlewares, short_type_name, transports};
use crate::params::Query;
use crate::render::Rendered;
use crate::ApiError;

const MIDDLEWARE_COLUMNS: &[Column] = &[
    Column::number(
        "position",
        &["pos"],
        "0 is outermost: it sees a request first",
    ),
    Column::text("name", &["n"], "type name, without its path"),
    Column::text("scope", &["s"], "where it applies: app, scope, resource"),
    Column::text(
        "source",
        &["src"],
        "underscore (ours), or declared by the app",
    ),
    Column::text("type", &["t"], "full type name").hidden(),
];

pub(crate) fn middlewares_cat(query: Query, path: &str) -> Result<Rendered, ApiError> {
    let params = CatParams::take(query, path)?;
    let rows = middlewares()
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            vec![
                Cell::Int(i as i64),
                Cell::Str(short_type_name(&m.type_name).to_owned()),
                Cell::Str(m.scope),
                Cell::Str(m.source.to_owned()),
                Cell::Str(m.type_name),
            ]
        })
        .collect();
    cat::render(MIDDLEWARE_COLUMNS, rows, &params)
}

const TRANSPORT_COLUMNS: &[Column] = &[
    Column::text("owner", &["o"], "app or admin"),
    Column::text("kind", &["k"], "tcp, tls, uds, or in-app"),
    Column::text("address", &["a", "path"], "address, or socket path"),
    Column::text("mode", &["m"], "socket file mode (UNIX sockets)"),
    Column::number(
        "connections",
        &["c", "conns"],
        "open connections, where counted",
    ),
];

pub(crate) fn transports_cat(query: Query, path: &str) -> Result<Rendered, ApiError> {
    let params = CatParams::take(query, path)?;
    let rows = transports()
        .into_iter()
        .map(|t| {
            vec![
                Cell::Str(t.owner.to_owned()),
                Cell::Str(t.kind.to_owned()),
                Cell::Str(t.address),
                t.mode.map_or(Cell::Null, Cell::Str),
                t.connections
                    .map_or(Cell::Null, |c| Cell::Int(c.load(Ordering::Relaxed) as i64)),
            ]
        })
        .collect();
    cat::render(TRANSPORT_COLUMNS, rows, &params)
}
