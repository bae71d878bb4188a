//! The `top` program: polls the nodes, reads the keys, owns the terminal.
//!
//! Every interval, each node is asked `GET /_cat/routes?format=json&h=...`,
//! `GET /_tasks?detailed&group_by=none&sort=running_time:desc&size=N` (the N longest-running
//! tasks, N the terminal's height: never the whole list, which a storm makes 100,000 long)
//! and `GET /_tasks?group_by=routes` (how many per route), and `GET /_health` (shown in the
//! header; a node without it shows none), `GET /_cat/workers` and `GET /_slowlog?since=1m`
//! (the warnings line; a node without them shows none), on a kept-alive connection. The
//! first answer of a
//! node is asked with `h=*`, to learn which of the columns `top` reads this server has (a
//! column it lacks would be a 400); later polls ask only those, so the server renders no
//! column nobody looks at. A node that fails is shown disconnected and asked again, with
//! `h=*`, at the next interval.
//!
//! Keys are read on their own thread (crossterm's `read` blocks) and sent to the loop with
//! the polls' answers and the actions' outcomes; the terminal is restored on exit and, through
//! ratatui's panic hook, on a panic.

use std::future::Future;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hyper::Method;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::Terminal;
use serde_json::Value;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

use super::model::{
    task_routes, tasks_total, Action, Key, Model, NodeData, NodeHealth, NodeWarnings, RouteStats,
    Snapshot, TaskInfo, ROUTE_COLUMNS,
};
use super::view;
use crate::cli::TopArgs;
use crate::client::{Client, Reply};
use crate::commands::{encode, STACK_TIMEOUT};
use crate::error::CliError;
use crate::nodes::Node;

/// One node's connection and what it has learned about the node's columns.
struct Source {
    node: Node,
    client: Client,
    /// The `h` to ask for; `None` until the node has answered `h=*`.
    columns: Option<String>,
    /// The node is an older build that lists every task and has no summary: it refused
    /// `size` with a 400. Asked again with `size` after it was disconnected.
    lists_all_tasks: bool,
}

impl Source {
    /// Polls the node, asking for its `task_rows` longest-running tasks.
    async fn poll(mut self, task_rows: u16) -> (Self, Snapshot) {
        let data = self.fetch(task_rows).await;
        if data.is_err() {
            // The node may come back as another build, with other columns.
            self.columns = None;
            self.lists_all_tasks = false;
        }
        let snapshot = Snapshot {
            node: self.node.name.clone(),
            at: Instant::now(),
            data: data.map_err(|err| err.to_string()),
        };
        (self, snapshot)
    }

    /// Asks the endpoints. An endpoint that answers an error (or something unreadable)
    /// is one line of `failed`, and the others' answers are kept; only a socket that cannot
    /// be reached fails the whole poll.
    async fn fetch(&mut self, task_rows: u16) -> Result<NodeData, CliError> {
        let mut data = NodeData::default();
        let h = self.columns.as_deref().unwrap_or("*");
        let url = format!("/_cat/routes?format=json&h={h}");
        match self.routes(&url).await {
            Ok(routes) => data.routes = routes,
            Err(err) if err.is_unreachable() => return Err(err),
            Err(err) => {
                // A 400 for a column the server no longer has: learn its columns again.
                self.columns = None;
                data.failed.push(failure(&url, &err));
            }
        }
        match self.json("/_health").await {
            Ok(health) => data.health = NodeHealth::from_value(&health),
            Err(err) if err.is_unreachable() => return Err(err),
            // An older build has no `/_health` (a 404, or a 400 from a fake of one): no health.
            Err(CliError::Server(e)) if matches!(e.status, 400 | 404) => {}
            Err(err) => data.failed.push(failure("/_health", &err)),
        }
        // Older builds have neither: no warnings.
        let workers = self
            .json("/_cat/workers?format=json&h=worker,polling,task,polling_for,blocked")
            .await;
        if let Err(err) = &workers {
            if err.is_unreachable() {
                return Err(workers.unwrap_err());
            }
        }
        let slowlog = self.json("/_slowlog?since=1m").await;
        if let (Ok(workers), Ok(slowlog)) = (&workers, &slowlog) {
            data.warnings = Some(NodeWarnings::from_values(workers, slowlog));
        }
        let url = if self.lists_all_tasks {
            "/_tasks?detailed&group_by=none".to_owned()
        } else {
            format!("/_tasks?detailed&group_by=none&sort=running_time:desc&size={task_rows}")
        };
        let mut answer = self.json(&url).await;
        if matches!(&answer, Err(CliError::Server(e)) if e.status == 400) && !self.lists_all_tasks {
            // An older build: `sort` and `size` are unrecognized parameters there.
            self.lists_all_tasks = true;
            answer = self.json("/_tasks?detailed&group_by=none").await;
        }
        match answer {
            Ok(tasks) => {
                data.tasks = TaskInfo::from_tasks(&tasks);
                data.tasks_total = tasks_total(&tasks);
            }
            Err(err) if err.is_unreachable() => return Err(err),
            Err(err) => data.failed.push(failure(&url, &err)),
        }
        if self.lists_all_tasks {
            // Its summary would be a 400 too; its whole list is at hand.
            return Ok(data);
        }
        let url = "/_tasks?group_by=routes";
        match self.json(url).await {
            Ok(summary) => data.task_routes = task_routes(&summary),
            Err(err) if err.is_unreachable() => return Err(err),
            Err(err) => data.failed.push(failure(url, &err)),
        }
        Ok(data)
    }

    async fn json(&mut self, url: &str) -> Result<Value, CliError> {
        self.client
            .get(url)
            .await
            .and_then(Reply::into_success)?
            .json()
    }

    async fn routes(&mut self, url: &str) -> Result<Vec<RouteStats>, CliError> {
        let routes = self.client.get(url).await?.into_success()?.json()?;
        let rows: Vec<_> = routes
            .as_array()
            .map(|rows| rows.iter().filter_map(Value::as_object).collect())
            .unwrap_or_default();
        if self.columns.is_none() {
            if let Some(first) = rows.first() {
                let known: Vec<&str> = ROUTE_COLUMNS
                    .iter()
                    .copied()
                    .filter(|c| first.contains_key(*c))
                    .collect();
                self.columns = Some(known.join(","));
            }
        }
        Ok(rows.into_iter().filter_map(RouteStats::from_row).collect())
    }
}

/// One line for an endpoint that failed: the request, then why (an unreadable answer's error
/// names the request itself).
fn failure(url: &str, err: &CliError) -> String {
    match err {
        CliError::Server(_) => format!("GET {url} failed: {err}"),
        _ => err.to_string(),
    }
}

/// Expands the socket patterns again, for sockets that appeared since `top` started.
pub type Rescan = Box<dyn Fn() -> Vec<Node> + Send + Sync>;

/// Every node, polled at once.
struct Poller {
    sources: Vec<Source>,
    /// The nodes, shared with the loop that sends the actions (it looks a node's socket up by
    /// name). Locked for a push when a glob finds a new socket, or a lookup on a key press:
    /// never across an await.
    known: Arc<Mutex<Vec<Node>>>,
    rescan: Option<Rescan>,
    timeout: Duration,
    /// How many tasks to ask each node for: the tasks pane never shows more than the
    /// terminal has rows.
    task_rows: u16,
}

impl Poller {
    fn new(known: Arc<Mutex<Vec<Node>>>, rescan: Option<Rescan>, timeout: Duration) -> Self {
        let nodes = known.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let mut poller = Self {
            sources: Vec::new(),
            known,
            rescan,
            timeout,
            task_rows: 40,
        };
        for node in nodes {
            poller.add(node);
        }
        poller
    }

    fn add(&mut self, node: Node) {
        self.sources.push(Source {
            client: Client::new(&node.path).with_timeout(self.timeout),
            node,
            columns: None,
            lists_all_tasks: false,
        });
    }

    /// Adds the sockets a glob matches now and did not before. A socket that went away stays
    /// (shown disconnected): a restarting replica comes back on the same path.
    fn rescan(&mut self) {
        let Some(rescan) = &self.rescan else {
            return;
        };
        let found = rescan();
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        let mut added = Vec::new();
        for mut node in found {
            if known.iter().any(|k| k.path == node.path) {
                continue;
            }
            // Names stay as they were: a new socket whose short name is taken is named by
            // its path.
            if known.iter().any(|k| k.name == node.name) {
                node.name = node.path.display().to_string();
            }
            known.push(node.clone());
            added.push(node);
        }
        drop(known);
        for node in added {
            self.add(node);
        }
    }

    async fn poll(&mut self) -> Vec<Snapshot> {
        let rows = self.task_rows;
        self.poll_with(move |source| source.poll(rows)).await
    }

    /// [`Poller::poll`] with `poll` as each node's poll (the tests give one that fails).
    async fn poll_with<F, Fut>(&mut self, poll: F) -> Vec<Snapshot>
    where
        F: Fn(Source) -> Fut,
        Fut: Future<Output = (Source, Snapshot)> + Send + 'static,
    {
        self.rescan();
        let polls: Vec<_> = self
            .sources
            .drain(..)
            .map(|source| (source.node.clone(), tokio::spawn(poll(source))))
            .collect();
        let mut snapshots = Vec::with_capacity(polls.len());
        for (node, poll) in polls {
            match poll.await {
                Ok((source, snapshot)) => {
                    self.sources.push(source);
                    snapshots.push(snapshot);
                }
                // A poll has no panic path known, but one that fails (a panic, the runtime
                // stopping) took its source with it: the node gets a new one, and is asked
                // again at the next interval, as a node that could not be reached is.
                Err(err) => {
                    snapshots.push(Snapshot {
                        node: node.name.clone(),
                        at: Instant::now(),
                        data: Err(format!("the poll failed: {err}")),
                    });
                    self.add(node);
                }
            }
        }
        snapshots
    }
}

/// The wall-clock time, `HH:MM:SS` UTC.
fn clock() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!(
        "{:02}:{:02}:{:02} UTC",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Runs `top`: `--frames N` prints N frames without a terminal, else the interactive view.
///
/// # Errors
///
/// [`CliError::Usage`] without a terminal and without `--frames`; [`CliError::Terminal`] when
/// the terminal cannot be set up or drawn. Nodes that cannot be reached are no error: they
/// show as disconnected.
///
/// With `rescan`, the socket patterns are expanded again at every poll, and sockets that
/// appeared are added.
pub fn run(
    runtime: &Runtime,
    nodes: Vec<Node>,
    rescan: Option<Rescan>,
    args: &TopArgs,
    timeout: Duration,
) -> Result<(), CliError> {
    // A poll that takes longer than the interval delays the next one, never overlaps it.
    let timeout = timeout.min(args.interval.max(Duration::from_secs(1)));
    let model = Model::new(
        nodes.iter().map(|n| n.name.clone()).collect(),
        args.interval,
    );
    if let Some(frames) = args.frames {
        let poller = Poller::new(Arc::new(Mutex::new(nodes)), rescan, timeout);
        return runtime.block_on(print_frames(model, poller, args, frames));
    }
    if !std::io::stdout().is_terminal() {
        return Err(CliError::Usage(
            "top needs a terminal (use --frames N to print N frames instead)".to_owned(),
        ));
    }
    let mut terminal = match ratatui::try_init() {
        Ok(terminal) => terminal,
        Err(err) => {
            // Raw mode may be on already: leave the terminal as it was found.
            ratatui::restore();
            return Err(CliError::Terminal(err));
        }
    };
    let known = Arc::new(Mutex::new(nodes));
    let poller = Poller::new(Arc::clone(&known), rescan, timeout);
    let result = runtime.block_on(interactive(
        &mut terminal,
        model,
        poller,
        known,
        args.interval,
        timeout,
    ));
    ratatui::restore();
    result
}

async fn print_frames(
    mut model: Model,
    mut poller: Poller,
    args: &TopArgs,
    frames: u32,
) -> Result<(), CliError> {
    let (width, height) = args.size;
    poller.task_rows = height;
    for i in 0..frames {
        if i > 0 {
            tokio::time::sleep(args.interval).await;
        }
        let snapshots = poller.poll().await;
        model.apply(snapshots);
        model.clock = clock();
        let text = frame_text(&model, width, height);
        let mut out = std::io::stdout().lock();
        match std::io::Write::write_all(&mut out, text.as_bytes()) {
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(err) => return Err(CliError::Output(err)),
            Ok(()) => {}
        }
    }
    Ok(())
}

/// Draws `model` on a `width` x `height` off-screen terminal and returns its text.
pub fn frame_text(model: &Model, width: u16, height: u16) -> String {
    // The off-screen backend's error type is `Infallible`.
    let Ok(mut terminal) = Terminal::new(TestBackend::new(width, height));
    let Ok(_) = terminal.draw(|frame| view::render(frame, model));
    view::to_text(terminal.backend().buffer())
}

/// What the loop waits for.
enum Msg {
    Key(Key),
    Redraw,
    Polled(Vec<Snapshot>, String),
    Status(String),
    Stack {
        node: String,
        task: String,
        text: String,
    },
}

fn map_key(code: KeyCode, modifiers: KeyModifiers) -> Option<Key> {
    Some(match code {
        KeyCode::Char('c') if modifiers.contains(KeyModifiers::CONTROL) => Key::CtrlC,
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        KeyCode::Tab => Key::Tab,
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        _ => return None,
    })
}

async fn interactive(
    terminal: &mut ratatui::DefaultTerminal,
    mut model: Model,
    mut poller: Poller,
    known: Arc<Mutex<Vec<Node>>>,
    interval: Duration,
    timeout: Duration,
) -> Result<(), CliError> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();

    let keys = tx.clone();
    // This thread blocks in `read` and ends with the process.
    std::thread::spawn(move || loop {
        let msg = match event::read() {
            Ok(Event::Key(k)) if k.kind != KeyEventKind::Release => {
                match map_key(k.code, k.modifiers) {
                    Some(key) => Msg::Key(key),
                    None => continue,
                }
            }
            Ok(Event::Resize(..)) => Msg::Redraw,
            Ok(_) => continue,
            Err(_) => break,
        };
        if keys.send(msg).is_err() {
            break;
        }
    });

    let polls = tx.clone();
    let poll_task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // The terminal's height now: a resize changes how many rows are asked for.
            if let Ok((_, rows)) = ratatui::crossterm::terminal::size() {
                poller.task_rows = rows;
            }
            let snapshots = poller.poll().await;
            if polls.send(Msg::Polled(snapshots, clock())).is_err() {
                break;
            }
        }
    });

    let result = loop {
        if let Err(err) = terminal.draw(|frame| view::render(frame, &model)) {
            break Err(CliError::Terminal(err));
        }
        let Some(msg) = rx.recv().await else {
            break Ok(());
        };
        match msg {
            Msg::Key(key) => match model.on_key(key) {
                Some(Action::Quit) => break Ok(()),
                Some(action) => {
                    model.status = Some(describe(&action));
                    let nodes = known.lock().unwrap_or_else(PoisonError::into_inner).clone();
                    spawn_action(action, nodes, timeout, tx.clone());
                }
                None => {}
            },
            Msg::Redraw => {}
            Msg::Polled(snapshots, now) => {
                model.apply(snapshots);
                model.clock = now;
            }
            Msg::Status(status) => model.status = Some(status),
            Msg::Stack { node, task, text } => model.show_stack(&node, &task, text),
        }
    };
    poll_task.abort();
    result
}

fn describe(action: &Action) -> String {
    match action {
        Action::Quit => String::new(),
        Action::Interrupt { node, route } => format!("interrupting {route} on {node}..."),
        Action::Cancel { node, task } => format!("cancelling {task} on {node}..."),
        Action::Stack { node, task } => format!("fetching the stack of {task} on {node}..."),
    }
}

fn spawn_action(
    action: Action,
    nodes: Vec<Node>,
    timeout: Duration,
    tx: mpsc::UnboundedSender<Msg>,
) {
    tokio::spawn(async move {
        let node_of = |name: &str| nodes.iter().find(|n| n.name == name).cloned();
        let msg = match action {
            Action::Quit => return,
            Action::Interrupt { node, route } => {
                let Some(n) = node_of(&node) else { return };
                let mut client = Client::new(&n.path).with_timeout(timeout);
                let path = format!("/_routes/{}/interrupt", encode(&route));
                let outcome = async {
                    let v = client
                        .request(Method::POST, &path, None)
                        .await?
                        .into_success()?
                        .json()?;
                    Ok::<_, CliError>(
                        v.get(&route)
                            .and_then(|r| r.get("interrupted"))
                            .and_then(Value::as_u64)
                            .unwrap_or(0),
                    )
                };
                Msg::Status(match outcome.await {
                    Ok(n) => format!("interrupted {n} request(s) of {route} on {node}"),
                    Err(err) => format!("error: interrupt {route} on {node}: {err}"),
                })
            }
            Action::Cancel { node, task } => {
                let Some(n) = node_of(&node) else { return };
                let mut client = Client::new(&n.path).with_timeout(timeout);
                let path = format!("/_tasks/{}/_cancel", encode(&task));
                let outcome = async {
                    client
                        .request(Method::POST, &path, None)
                        .await?
                        .into_success()
                };
                Msg::Status(match outcome.await {
                    Ok(_) => format!("cancelled {task} on {node}"),
                    Err(err) => format!("error: cancel {task} on {node}: {err}"),
                })
            }
            Action::Stack { node, task } => {
                let Some(n) = node_of(&node) else { return };
                let mut client = Client::new(&n.path).with_timeout(timeout.max(STACK_TIMEOUT));
                let path = format!("/_tasks/{}/print_stack", encode(&task));
                let outcome = async { client.get(&path).await?.into_success() };
                let text = match outcome.await {
                    Ok(reply) => reply.body,
                    Err(err) => format!("error: {err}"),
                };
                Msg::Stack { node, task, text }
            }
        };
        // The loop may have ended (the user quit): nobody to tell.
        let _ = tx.send(msg);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_poll_that_fails_does_not_stop_its_node_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node {
            name: "a".into(),
            path: dir.path().join("a.sock"),
        };
        let known = Arc::new(Mutex::new(vec![node]));
        let mut poller = Poller::new(known, None, Duration::from_secs(1));
        let failed = poller
            .poll_with(|_| async { panic!("a poll that fails") })
            .await;
        assert_eq!(failed.len(), 1, "the failure is shown");
        let why = failed[0].data.as_ref().unwrap_err();
        assert!(why.contains("a poll that fails"), "{why}");
        // The node is still polled: here, it has no socket.
        let next = poller.poll().await;
        assert_eq!(next.len(), 1, "the node is polled again");
        let why = next[0].data.as_ref().unwrap_err();
        assert!(why.contains("no admin socket"), "{why}");
    }
}
