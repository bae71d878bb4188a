//! The one-shot commands: each sends its requests to every node, prints what they answered,
//! and reports each node's error in one line.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use hyper::Method;
use serde_json::{json, Map, Value};

use crate::cli::{
    CatArgs, CatTable, DrainArgs, PreemptArgs, ResumeArgs, RouteArg, SettingsArgs, SlowlogArgs,
    TableArgs, TaskArg,
};
use crate::client::{Client, Reply};
use crate::error::CliError;
use crate::nodes::Node;
use crate::table::{self, Row, SortKeys};

/// An error and the node it came from (none when it is not about one node).
#[derive(Debug)]
pub struct Failure {
    /// The node's name, when there are several nodes.
    pub node: Option<String>,
    /// What went wrong.
    pub error: CliError,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.node {
            Some(node) => write!(f, "{node}: {}", self.error),
            None => write!(f, "{}", self.error),
        }
    }
}

/// What the commands share: the nodes, the timeout, and the failures so far.
#[derive(Debug)]
pub struct Ctx {
    nodes: Vec<Node>,
    timeout: Duration,
    /// Every failure, in the order met; the first one decides the exit status.
    pub failures: Vec<Failure>,
}

impl Ctx {
    /// A context for `nodes`.
    pub fn new(nodes: Vec<Node>, timeout: Duration) -> Self {
        Self {
            nodes,
            timeout,
            failures: Vec::new(),
        }
    }

    fn several(&self) -> bool {
        self.nodes.len() > 1
    }

    fn fail(&mut self, node: Option<&Node>, error: CliError) {
        let node = node.filter(|_| self.several()).map(|n| n.name.clone());
        self.failures.push(Failure { node, error });
    }

    /// Sends the same request to every node at once; the answers in the nodes' order.
    async fn fan_out(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Vec<(Node, Result<Reply, CliError>)> {
        let requests: Vec<_> = self
            .nodes
            .iter()
            .map(|node| {
                let mut client = Client::new(&node.path).with_timeout(self.timeout);
                let (method, path, body) = (method.clone(), path.to_owned(), body.clone());
                tokio::spawn(async move {
                    let reply = client.request(method, &path, body.as_deref()).await;
                    reply.and_then(Reply::into_success)
                })
            })
            .collect();
        let mut answers = Vec::with_capacity(requests.len());
        for (node, request) in self.nodes.iter().zip(requests) {
            // A request task never panics (no unwrap in it); a join error would mean the
            // runtime is shutting down, and then there is no answer to report anyway.
            let reply = request.await.unwrap_or_else(|err| {
                Err(CliError::Http {
                    path: node.path.clone(),
                    message: format!("the request ended without an answer: {err}"),
                })
            });
            answers.push((node.clone(), reply));
        }
        answers
    }

    /// Keeps the successes of `answers` and records the failures, in the nodes' order.
    fn keep<T>(
        &mut self,
        answers: impl IntoIterator<Item = (Node, Result<T, CliError>)>,
    ) -> Vec<(Node, T)> {
        let mut ok = Vec::new();
        for (node, answer) in answers {
            match answer {
                Ok(v) => ok.push((node, v)),
                Err(err) => self.fail(Some(&node), err),
            }
        }
        ok
    }

    /// [`Ctx::fan_out`], keeping the successes and recording the failures.
    async fn ask(
        &mut self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Vec<(Node, Reply)> {
        let answers = self.fan_out(method, path, body).await;
        self.keep(answers)
    }

    /// The nodes' JSON answers, each parsed; an unreadable one is a failure.
    async fn ask_json(
        &mut self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Vec<(Node, Value)> {
        let answers = self.fan_out(method, path, body).await;
        self.keep(
            answers
                .into_iter()
                .map(|(node, reply)| (node, reply.and_then(|r| r.json()))),
        )
    }
}

/// The least time a stack capture is given: the first one in a process resolves the debug
/// info, which can take a while.
pub const STACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Writes to stdout; a closed pipe (`| head`) ends the output quietly.
///
/// # Errors
///
/// [`CliError::Output`] for any other write error.
pub fn print(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Output(err)),
        _ => Ok(()),
    }
}

/// Percent-encodes a query value or a path segment; `,`, `*`, `:` and `.` stay as they are
/// (they are the ids' and columns' own syntax).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~,*:".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The query string of a `_cat` request.
fn cat_query(args: &TableArgs, json: bool, columns: Option<&str>) -> String {
    let mut params: Vec<String> = Vec::new();
    if json {
        params.push("format=json".to_owned());
    } else if args.verbose {
        params.push("v".to_owned());
    }
    if args.help_columns {
        params.push("help".to_owned());
    }
    if let Some(h) = columns.or(args.columns.as_deref()) {
        params.push(format!("h={}", encode(h)));
    }
    if let Some(s) = &args.sort {
        params.push(format!("s={}", encode(s)));
    }
    if params.is_empty() {
        String::new()
    } else {
        format!("?{}", params.join("&"))
    }
}

fn cat_path(table: CatTable, ids: Option<&str>) -> Result<String, CliError> {
    let endpoint = table.endpoint();
    let mut path = format!("/_cat/{endpoint}");
    if let Some(ids) = ids {
        if !matches!(table, CatTable::Routes | CatTable::Tasks) {
            return Err(CliError::Usage(format!("_cat/{endpoint} takes no ids")));
        }
        path.push('/');
        path.push_str(&encode(ids));
    }
    Ok(path)
}

/// `cat TABLE`: one node prints the server's text exactly; several get a merged table.
///
/// # Errors
///
/// A usage error; node failures are recorded in `ctx`.
pub async fn cat(ctx: &mut Ctx, args: &CatArgs) -> Result<(), CliError> {
    let path = cat_path(args.table, args.ids.as_deref())?;
    table_command(ctx, &path, &args.table_args).await
}

/// `tasks`: the `_cat/tasks` table, with a header.
///
/// # Errors
///
/// A usage error; node failures are recorded in `ctx`.
pub async fn tasks(ctx: &mut Ctx, args: &TableArgs) -> Result<(), CliError> {
    let args = TableArgs {
        verbose: true,
        ..args.clone()
    };
    table_command(ctx, "/_cat/tasks", &args).await
}

/// `workers`: the `_cat/workers` table, with a header.
///
/// # Errors
///
/// A usage error; node failures are recorded in `ctx`.
pub async fn workers(ctx: &mut Ctx, args: &TableArgs) -> Result<(), CliError> {
    let args = TableArgs {
        verbose: true,
        ..args.clone()
    };
    table_command(ctx, "/_cat/workers", &args).await
}

/// `slowlog`: the `_cat/slowlog` table, with a header; with `--follow`, asked again every
/// second, printing only the entries each node had not shown yet (by their `seq`).
///
/// # Errors
///
/// A usage error or an output error; node failures are recorded in `ctx`.
pub async fn slowlog(ctx: &mut Ctx, args: &SlowlogArgs) -> Result<(), CliError> {
    let table_args = TableArgs {
        verbose: true,
        ..args.table_args.clone()
    };
    if !args.follow || table_args.help_columns {
        return table_command(ctx, "/_cat/slowlog", &table_args).await;
    }
    // The columns shown: those asked for, else the default ones (the header of an empty
    // table), then `seq` to know what was printed.
    // (An entry logged in the year 3000 at the earliest: none.)
    let mut empty = "/_cat/slowlog?v&since=32503680000000".to_owned();
    if let Some(h) = &table_args.columns {
        empty.push_str(&format!("&h={}", encode(h)));
    }
    let columns = header_columns(&ctx.ask(Method::GET, &empty, None).await);
    if columns.is_empty() {
        return Ok(());
    }
    let h = std::iter::once("seq")
        .chain(columns.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(",");
    let mut url = format!("/_cat/slowlog?format=json&h={}", encode(&h));
    if let Some(s) = &table_args.sort {
        url.push_str(&format!("&s={}", encode(s)));
    }
    let mut printed: HashMap<String, u64> = HashMap::new();
    let mut header = true;
    loop {
        let answers = ctx.ask_json(Method::GET, &url, None).await;
        // A node failing now is reported at the end; the others go on.
        ctx.failures.clear();
        let before = printed.clone();
        let mut rows: Vec<Row> = collect_rows(answers)
            .into_iter()
            .filter_map(|(node, mut row)| {
                let seq = row.remove("seq")?.as_u64()?;
                let last = printed.entry(node.clone()).or_default();
                *last = (*last).max(seq);
                (seq > before.get(&node).copied().unwrap_or(0)).then_some((node, row))
            })
            .collect();
        if !rows.is_empty() || header {
            if table_args.sort.is_none() {
                // Each node's rows are in their order; several nodes' by time.
                rows.sort_by_key(|row| cell_of(row, "timestamp"));
            }
            // Columns at least as wide as the header's, which is printed once.
            let numeric = ["took", "time", "took_ns", "time_ns", "seq", "n"];
            let text = table::render_typed(&columns, &rows, true, ctx.several(), &numeric);
            let text = if header {
                text.as_str()
            } else {
                text.split_once('\n').map_or("", |(_, rest)| rest)
            };
            print(text)?;
            header = false;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A row's cell as text, for ordering the rows of several nodes.
fn cell_of(row: &Row, column: &str) -> String {
    row.1.get(column).map(table::cell).unwrap_or_default()
}

/// The column names of the first `v` table among `answers` (its header line).
fn header_columns(answers: &[(Node, Reply)]) -> Vec<String> {
    answers
        .first()
        .and_then(|(_, r)| r.body.lines().next())
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

async fn table_command(ctx: &mut Ctx, path: &str, args: &TableArgs) -> Result<(), CliError> {
    if !ctx.several() || args.help_columns {
        // One node (or the column help, the same everywhere): the server's text as it is.
        let url = format!("{path}{}", cat_query(args, false, None));
        let answers = ctx.ask(Method::GET, &url, None).await;
        if let Some((_, reply)) = answers.first() {
            print(&reply.body)?;
        }
        return Ok(());
    }
    let sort = args
        .sort
        .as_deref()
        .map(SortKeys::parse)
        .unwrap_or_default();
    let url = format!("{path}{}", cat_query(args, true, None));
    let mut rows = collect_rows(ctx.ask_json(Method::GET, &url, None).await);
    let columns: Vec<String> = rows
        .first()
        .map(|(_, r)| r.keys().cloned().collect())
        .unwrap_or_default();
    // Each node sorted its own rows; the merged table is sorted again, which needs the sort
    // columns under the names the rows use: a sort key may be an alias of a displayed column
    // (`-s total` with `-h stats.req.total`), else it is asked for too, then hidden.
    let canonical = if sort.0.is_empty() {
        HashMap::new()
    } else {
        column_names(ctx, path).await
    };
    let canon = |name: &str| -> String {
        canonical
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_owned())
    };
    let mut hidden: Vec<&str> = Vec::new();
    let keys = SortKeys(
        sort.0
            .iter()
            .map(|(col, desc)| {
                let shown = columns.iter().find(|k| canon(k) == canon(col));
                let key = match shown {
                    Some(k) => k.clone(),
                    None => {
                        hidden.push(col);
                        col.clone()
                    }
                };
                (key, *desc)
            })
            .collect(),
    );
    if !hidden.is_empty() && !columns.is_empty() {
        let h = columns
            .iter()
            .map(String::as_str)
            .chain(hidden.iter().copied())
            .collect::<Vec<_>>()
            .join(",");
        let url = format!("{path}{}", cat_query(args, true, Some(&h)));
        // The same nodes are asked again: their failures are the new answers'.
        ctx.failures.clear();
        rows = collect_rows(ctx.ask_json(Method::GET, &url, None).await);
    }
    table::sort(&mut rows, &keys);
    print(&table::render(&columns, &rows, args.verbose, true))
}

/// Every column name and alias of a `_cat` endpoint, to its name, from the first node's
/// `help` (`name | aliases | description` lines). Empty when no node answers.
async fn column_names(ctx: &Ctx, path: &str) -> HashMap<String, String> {
    let answers = ctx
        .fan_out(Method::GET, &format!("{path}?help"), None)
        .await;
    let Some(help) = answers.into_iter().find_map(|(_, r)| r.ok()) else {
        return HashMap::new();
    };
    parse_help(&help.body)
}

fn parse_help(help: &str) -> HashMap<String, String> {
    let mut names = HashMap::new();
    for line in help.lines() {
        let mut parts = line.split('|').map(str::trim);
        let (Some(name), Some(aliases)) = (parts.next(), parts.next()) else {
            continue;
        };
        for alias in aliases.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            names.insert(alias.to_owned(), name.to_owned());
        }
        names.insert(name.to_owned(), name.to_owned());
    }
    names
}

fn collect_rows(answers: Vec<(Node, Value)>) -> Vec<Row> {
    let mut rows = Vec::new();
    for (node, value) in answers {
        if let Value::Array(items) = value {
            for item in items {
                if let Value::Object(map) = item {
                    rows.push((node.name.clone(), map));
                }
            }
        }
    }
    rows
}

/// The effective preempt of `route` on every node, as a table.
async fn print_effective(ctx: &mut Ctx, route: &str) -> Result<Vec<Row>, CliError> {
    let columns = [
        "id",
        "preempt",
        "preempt.percent",
        "preempt.reason",
        "preempt.retry_after",
    ]
    .map(str::to_owned);
    let url = format!(
        "/_cat/routes/{}?format=json&h={}&s=id",
        encode(route),
        columns.join(",")
    );
    let rows = collect_rows(ctx.ask_json(Method::GET, &url, None).await);
    let numeric = ["preempt", "preempt.percent", "preempt.retry_after"];
    print(&table::render_typed(
        &columns,
        &rows,
        true,
        ctx.several(),
        &numeric,
    ))?;
    Ok(rows)
}

/// `preempt ROUTE --status N`: sets the whole preempt group in one tier (a key not given is
/// reset, so no reason or percent of an earlier preempt lingers), then prints the effective
/// preempt.
///
/// # Errors
///
/// An output error; node failures are recorded in `ctx`.
pub async fn preempt(ctx: &mut Ctx, args: &PreemptArgs) -> Result<(), CliError> {
    let body = preempt_body(args);
    let url = format!("/_routes/{}/settings", encode(&args.route));
    let done = ctx.ask(Method::PUT, &url, Some(body.to_string())).await;
    if !done.is_empty() {
        print_effective(ctx, &args.route).await?;
    }
    Ok(())
}

/// The body of `preempt`'s PUT: every `preempt.*` key, `null` where no flag gives it.
fn preempt_body(args: &PreemptArgs) -> Value {
    let tier = if args.persistent {
        "persistent"
    } else {
        "transient"
    };
    json!({ tier: {
        "preempt.status": args.status,
        "preempt.reason": args.reason,
        "preempt.retry_after": args.retry_after,
        "preempt.text": args.text,
        // A whole share goes as an integer, as the server writes it back.
        "preempt.percent": args.percent.map(|p| if p.fract() == 0.0 {
            json!(p as u64)
        } else {
            json!(p)
        }),
    }})
}

/// `resume ROUTE [--persistent]`: resets the transient preempt (and the persistent one), then
/// prints the effective preempt, with a note where a persistent one still holds.
///
/// # Errors
///
/// An output error; node failures are recorded in `ctx`.
pub async fn resume(ctx: &mut Ctx, args: &ResumeArgs) -> Result<(), CliError> {
    let mut body = Map::new();
    body.insert("transient".into(), json!({ "preempt.*": null }));
    if args.persistent {
        body.insert("persistent".into(), json!({ "preempt.*": null }));
    }
    let url = format!("/_routes/{}/settings", encode(&args.route));
    let done = ctx
        .ask(Method::PUT, &url, Some(Value::Object(body).to_string()))
        .await;
    if done.is_empty() {
        return Ok(());
    }
    let rows = print_effective(ctx, &args.route).await?;
    for (node, row) in rows {
        if !row.get("preempt").is_none_or(Value::is_null) && !args.persistent {
            let id = row.get("id").map(table::cell).unwrap_or_default();
            let on = if ctx.several() {
                format!(" on {node}")
            } else {
                String::new()
            };
            eprintln!(
                "note: {id} is still preempted{on} by its persistent settings: `underscore resume {id} --persistent` resets them"
            );
        }
    }
    Ok(())
}

/// `settings [ROUTE]`: one row per key set in a tier, with the effective value.
///
/// # Errors
///
/// An output error; node failures are recorded in `ctx`.
pub async fn settings(ctx: &mut Ctx, args: &SettingsArgs) -> Result<(), CliError> {
    let base = match &args.route {
        Some(route) => format!("/_routes/{}/settings", encode(route)),
        None => "/_routes/settings".to_owned(),
    };
    if args.json {
        let answers = ctx
            .ask_json(Method::GET, &format!("{base}?pretty"), None)
            .await;
        let value = if ctx.several() {
            Value::Object(answers.into_iter().map(|(n, v)| (n.name, v)).collect())
        } else {
            answers
                .into_iter()
                .map(|(_, v)| v)
                .next()
                .unwrap_or(Value::Null)
        };
        if !value.is_null() {
            // `{:#}` is serde_json's pretty form, and a `Value` always serializes.
            print(&format!("{value:#}\n"))?;
        }
        return Ok(());
    }
    let answers = ctx
        .ask_json(Method::GET, &format!("{base}?flat_settings"), None)
        .await;
    // Apps with an operator settings file show that tier too (it wins over the others).
    let operator_tier = answers.iter().any(|(_, value)| {
        value
            .as_object()
            .is_some_and(|routes| routes.values().any(|tiers| tiers.get("operator").is_some()))
    });
    let mut rows: Vec<Row> = Vec::new();
    for (node, value) in answers {
        let Value::Object(routes) = value else {
            continue;
        };
        for (route, tiers) in routes {
            let tier = |name: &str| {
                tiers
                    .get(name)
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default()
            };
            let (transient, persistent) = (tier("transient"), tier("persistent"));
            let operator = tier("operator");
            let mut keys: Vec<&String> = transient
                .keys()
                .chain(persistent.keys())
                .chain(operator.keys())
                .collect();
            keys.sort();
            keys.dedup();
            if keys.is_empty() {
                let mut row = Map::new();
                row.insert("route".into(), Value::String(route.clone()));
                rows.push((node.name.clone(), row));
            }
            for key in keys {
                let (o, t, p) = (operator.get(key), transient.get(key), persistent.get(key));
                let mut row = Map::new();
                row.insert("route".into(), Value::String(route.clone()));
                row.insert("key".into(), Value::String(key.clone()));
                if operator_tier {
                    row.insert("operator".into(), o.cloned().unwrap_or(Value::Null));
                }
                row.insert("transient".into(), t.cloned().unwrap_or(Value::Null));
                row.insert("persistent".into(), p.cloned().unwrap_or(Value::Null));
                row.insert(
                    "effective".into(),
                    o.or(t).or(p).cloned().unwrap_or(Value::Null),
                );
                rows.push((node.name.clone(), row));
            }
        }
    }
    let columns: Vec<String> = [
        "route",
        "key",
        "operator",
        "transient",
        "persistent",
        "effective",
    ]
    .into_iter()
    .filter(|c| operator_tier || *c != "operator")
    .map(str::to_owned)
    .collect();
    // Settings values are of mixed types: every column reads as text here.
    for (_, row) in &mut rows {
        for v in row.values_mut() {
            if v.is_number() {
                *v = Value::String(v.to_string());
            }
        }
    }
    print(&table::render(&columns, &rows, true, ctx.several()))
}

/// `interrupt ROUTE`: how many requests each node ended.
///
/// # Errors
///
/// An output error; node failures are recorded in `ctx`.
pub async fn interrupt(ctx: &mut Ctx, args: &RouteArg) -> Result<(), CliError> {
    let url = format!("/_routes/{}/interrupt", encode(&args.route));
    let answers = ctx.ask_json(Method::POST, &url, None).await;
    let mut rows: Vec<Row> = Vec::new();
    for (node, value) in answers {
        if let Value::Object(routes) = value {
            for (route, v) in routes {
                let mut row = Map::new();
                row.insert("route".into(), Value::String(route));
                row.insert(
                    "interrupted".into(),
                    v.get("interrupted").cloned().unwrap_or(Value::Null),
                );
                rows.push((node.name.clone(), row));
            }
        }
    }
    let columns = ["route", "interrupted"].map(str::to_owned);
    if rows.is_empty() && ctx.failures.is_empty() {
        return Ok(());
    }
    print(&table::render(&columns, &rows, true, ctx.several()))
}

/// The node a task id names: `NODE/TASK`, the only node, or the one node that knows it.
async fn task_node(ctx: &mut Ctx, arg: &str) -> Result<(Node, String), CliError> {
    if let Some((name, task)) = arg.rsplit_once('/') {
        if let Some(node) = ctx.nodes.iter().find(|n| n.name == name) {
            return Ok((node.clone(), task.to_owned()));
        }
        let names: Vec<&str> = ctx.nodes.iter().map(|n| n.name.as_str()).collect();
        return Err(CliError::Usage(format!(
            "no node named [{name}] (the nodes are: {})",
            names.join(", ")
        )));
    }
    if !ctx.several() {
        // `resolve` always gives at least one node.
        let node = ctx
            .nodes
            .first()
            .cloned()
            .ok_or_else(|| CliError::Usage("no socket".into()))?;
        return Ok((node, arg.to_owned()));
    }
    // Replicas on one host share a host name, so their task ids can be the same: ask them all.
    let url = format!("/_tasks/{}", encode(arg));
    let mut holders = Vec::new();
    let mut first_err = None;
    for (node, reply) in ctx.fan_out(Method::GET, &url, None).await {
        match reply {
            Ok(_) => holders.push(node),
            Err(err) => {
                first_err.get_or_insert(err);
            }
        }
    }
    match holders.len() {
        1 => Ok((holders.remove(0), arg.to_owned())),
        0 => Err(first_err.unwrap_or_else(|| CliError::Usage("no node".into()))),
        _ => {
            let names = holders.iter().map(|n| n.name.as_str()).collect::<Vec<_>>();
            Err(CliError::Usage(format!(
                "task [{arg}] runs on several nodes ({}): name one, as in {}/{arg}",
                names.join(", "),
                names[0]
            )))
        }
    }
}

/// `cancel TASK`.
///
/// # Errors
///
/// A usage error (an unknown node), a server or connection error.
pub async fn cancel(ctx: &mut Ctx, args: &TaskArg) -> Result<(), CliError> {
    let (node, task) = task_node(ctx, &args.task).await?;
    let mut client = Client::new(&node.path).with_timeout(ctx.timeout);
    let reply = client
        .request(
            Method::POST,
            &format!("/_tasks/{}/_cancel", encode(&task)),
            None,
        )
        .await?
        .into_success()?;
    let value = reply.json()?;
    let mut lines = String::new();
    let nodes = value.get("nodes").and_then(Value::as_object);
    for server_node in nodes.into_iter().flat_map(|n| n.values()) {
        let tasks = server_node.get("tasks").and_then(Value::as_object);
        for (id, t) in tasks.into_iter().flatten() {
            let s = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or("-").to_owned();
            lines.push_str(&format!(
                "cancelled task {id} ({}, {} {})\n",
                s("action"),
                s("method"),
                s("path")
            ));
        }
    }
    print(&lines)
}

/// `stack TASK`: the server's text as it is.
///
/// # Errors
///
/// A usage error (an unknown node), a server or connection error (501 without task tracing).
pub async fn stack(ctx: &mut Ctx, args: &TaskArg) -> Result<(), CliError> {
    let (node, task) = task_node(ctx, &args.task).await?;
    let mut client = Client::new(&node.path).with_timeout(ctx.timeout.max(STACK_TIMEOUT));
    let reply = client
        .get(&format!("/_tasks/{}/print_stack", encode(&task)))
        .await?
        .into_success()?;
    print(&reply.body)
}

/// One row of the health summary of a node, from its `GET /_health`.
fn health_row(node: &Node, health: &Value) -> Row {
    let mut row = Map::new();
    for key in ["status", "ready", "draining", "failed_by_hand"] {
        row.insert(key.into(), health.get(key).cloned().unwrap_or(Value::Null));
    }
    let drain = health.get("drain");
    let field = |k: &str| drain.and_then(|d| d.get(k)).cloned().unwrap_or(Value::Null);
    row.insert("phase".into(), field("phase"));
    row.insert("in_flight".into(), field("in_flight"));
    (node.name.clone(), row)
}

/// Prints the health summary of `answers`, one row per node.
fn print_health(ctx: &Ctx, answers: &[(Node, Value)]) -> Result<(), CliError> {
    let columns = [
        "status",
        "ready",
        "draining",
        "failed_by_hand",
        "phase",
        "in_flight",
    ]
    .map(str::to_owned);
    let rows: Vec<Row> = answers.iter().map(|(n, v)| health_row(n, v)).collect();
    print(&table::render_typed(
        &columns,
        &rows,
        true,
        ctx.several(),
        &["in_flight"],
    ))
}

/// `health`: each node's status, readiness and drain, then its checks (`_cat/health`).
///
/// # Errors
///
/// An output error; node failures are recorded in `ctx`.
pub async fn health(ctx: &mut Ctx, args: &TableArgs) -> Result<(), CliError> {
    if !args.help_columns {
        let answers = ctx.ask_json(Method::GET, "/_health", None).await;
        if answers.is_empty() {
            return Ok(());
        }
        print_health(ctx, &answers)?;
        print("\n")?;
    }
    let args = TableArgs {
        verbose: true,
        ..args.clone()
    };
    table_command(ctx, "/_cat/health", &args).await
}

/// `fail` and `ok`: takes each node out of rotation or puts it back, then prints its health.
///
/// # Errors
///
/// An output error; node failures are recorded in `ctx`.
pub async fn fail_or_ok(ctx: &mut Ctx, fail: bool) -> Result<(), CliError> {
    let path = if fail {
        "/_health/_fail"
    } else {
        "/_health/_ok"
    };
    let answers = ctx.ask_json(Method::POST, path, None).await;
    if answers.is_empty() {
        return Ok(());
    }
    print_health(ctx, &answers)
}

/// `drain`: starts a drain on each node (or names the one running), and with `--wait`
/// prints its progress until every node has stopped.
///
/// # Errors
///
/// An output error; node failures are recorded in `ctx`.
pub async fn drain(ctx: &mut Ctx, args: &DrainArgs) -> Result<(), CliError> {
    use underscore_core::time_value::format;
    let mut params = Vec::new();
    if let Some(delay) = args.delay {
        params.push(format!("delay={}", format(delay)));
    }
    if let Some(timeout) = args.timeout {
        params.push(format!("timeout={}", format(timeout)));
    }
    let path = if params.is_empty() {
        "/_drain".to_owned()
    } else {
        format!("/_drain?{}", params.join("&"))
    };
    let answers = ctx.ask_json(Method::POST, &path, None).await;
    let prefix = |node: &Node| {
        if ctx.several() {
            format!("{}: ", node.name)
        } else {
            String::new()
        }
    };
    for (node, answer) in &answers {
        let text = |k: &str| answer["drain"][k].as_str().unwrap_or("?").to_owned();
        let task = answer["task"].as_str().unwrap_or("?");
        let what = if answer["already_running"] == true {
            "a drain runs already"
        } else {
            "drain started"
        };
        print(&format!(
            "{}{what}: task {task}, delay {}, timeout {}\n",
            prefix(node),
            text("delay"),
            text("timeout")
        ))?;
    }
    if !args.wait {
        return Ok(());
    }
    // Until each node stops answering (the socket goes with the server).
    let mut running: Vec<(Node, String)> = answers
        .into_iter()
        .map(|(node, _)| (node, String::new()))
        .collect();
    while !running.is_empty() {
        let mut next = Vec::new();
        for (node, last) in running {
            let mut client = Client::new(&node.path).with_timeout(ctx.timeout);
            let health = client
                .request(Method::GET, "/_health", None)
                .await
                .and_then(Reply::into_success)
                .and_then(|r| r.json());
            let line = match health {
                Ok(h) => format!(
                    "{}phase {}, {} in flight, {} interrupted",
                    prefix(&node),
                    h["drain"]["phase"].as_str().unwrap_or("?"),
                    h["drain"]["in_flight"],
                    h["drain"]["interrupted"],
                ),
                Err(_) => {
                    print(&format!("{}stopped\n", prefix(&node)))?;
                    continue;
                }
            };
            if line != last {
                print(&format!("{line}\n"))?;
            }
            next.push((node, line));
        }
        running = next;
        if !running.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_keeps_the_ids_syntax_and_escapes_the_rest() {
        assert_eq!(encode("id,stats.*:desc"), "id,stats.*:desc");
        assert_eq!(encode("a b&c=d%/"), "a%20b%26c%3Dd%25%2F");
    }

    #[test]
    fn preempt_sets_every_preempt_key_of_the_server() {
        let args = PreemptArgs {
            route: "hello".into(),
            status: 503,
            reason: None,
            retry_after: Some(30),
            text: None,
            percent: Some(12.5),
            persistent: false,
        };
        let body = preempt_body(&args);
        let mut sent: Vec<&str> = body["transient"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        // A key the server adds to the group must be reset here too, or an earlier value
        // lingers under the new preempt.
        let mut group: Vec<&str> = underscore_core::settings::KEYS
            .iter()
            .map(|k| k.key)
            .filter(|k| k.starts_with("preempt."))
            .collect();
        sent.sort_unstable();
        group.sort_unstable();
        assert_eq!(sent, group);
        assert_eq!(body["transient"]["preempt.percent"], json!(12.5));
        assert_eq!(body["transient"]["preempt.reason"], Value::Null);
    }

    #[test]
    fn help_lines_map_every_alias_to_its_column() {
        let names = parse_help(
            "id               | i         | route id\n\
             stats.req.total  | total     | requests received\n\
             preempt          | pre,preempt.status | effective preempt\n",
        );
        assert_eq!(names["total"], "stats.req.total");
        assert_eq!(names["stats.req.total"], "stats.req.total");
        assert_eq!(names["preempt.status"], "preempt");
        assert_eq!(names["i"], "id");
    }

    #[test]
    fn cat_parameters_pass_through() {
        let args = TableArgs {
            verbose: true,
            columns: Some("id,total".into()),
            sort: Some("total:desc".into()),
            help_columns: false,
            help: None,
        };
        assert_eq!(cat_query(&args, false, None), "?v&h=id,total&s=total:desc");
        assert_eq!(
            cat_query(&args, true, Some("id,total,p99")),
            "?format=json&h=id,total,p99&s=total:desc"
        );
        assert!(cat_path(CatTable::Middlewares, Some("x")).is_err());
        assert_eq!(
            cat_path(CatTable::Routes, Some("hel*")).unwrap(),
            "/_cat/routes/hel*"
        );
    }
}
