//! `GET /_cat/middlewares` and `GET /_cat/transports`.

use std::sync::atomic::Ordering;

use crate::cat::{self, CatParams, Cell, Column, Rendered};
use crate::components::{middlewares, short_type_name, transports};
use crate::params::Query;
use crate::ApiError;

const MIDDLEWARE_COLUMNS: &[Column] = &[
    Column {
        name: "position",
        aliases: &["pos"],
        description: "0 is outermost: it sees a request first",
        default: true,
        numeric: true,
    },
    Column {
        name: "name",
        aliases: &["n"],
        description: "type name, without its path",
        default: true,
        numeric: false,
    },
    Column {
        name: "scope",
        aliases: &["s"],
        description: "where it applies: app, scope, resource",
        default: true,
        numeric: false,
    },
    Column {
        name: "source",
        aliases: &["src"],
        description: "underscore (ours), or declared by the app",
        default: true,
        numeric: false,
    },
    Column {
        name: "type",
        aliases: &["t"],
        description: "full type name",
        default: false,
        numeric: false,
    },
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
    Column {
        name: "owner",
        aliases: &["o"],
        description: "app or admin",
        default: true,
        numeric: false,
    },
    Column {
        name: "kind",
        aliases: &["k"],
        description: "tcp, tls, uds, or in-app",
        default: true,
        numeric: false,
    },
    Column {
        name: "address",
        aliases: &["a", "path"],
        description: "address, or socket path",
        default: true,
        numeric: false,
    },
    Column {
        name: "mode",
        aliases: &["m"],
        description: "socket file mode (UNIX sockets)",
        default: true,
        numeric: false,
    },
    Column {
        name: "connections",
        aliases: &["c", "conns"],
        description: "open connections, where counted",
        default: true,
        numeric: true,
    },
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
