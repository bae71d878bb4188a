//! `top`'s view, drawn from made-up snapshots on ratatui's TestBackend and compared with the
//! committed frames in `tests/snapshots` (insta; CI sets `CI=true`, so a changed frame fails
//! instead of being written).

use std::time::{Duration, Instant};

use ratatui::backend::TestBackend;
use ratatui::style::Modifier;
use ratatui::Terminal;
use underscore_cli::top::model::{Key, Model, NodeData, RouteStats, Snapshot, TaskInfo};
use underscore_cli::top::view;

fn route(id: &str, method: &str, path: &str, total: u64, active: u64) -> RouteStats {
    RouteStats {
        id: id.to_owned(),
        method: Some(method.to_owned()),
        path: Some(path.to_owned()),
        total: Some(total),
        active: Some(active),
        resp_5xx: Some(0),
        shed: Some(0),
        timed_out: Some(0),
        ..RouteStats::default()
    }
}

fn task(id: &str, route: &str, path: &str, secs: f64, cancelled: bool) -> TaskInfo {
    TaskInfo {
        id: id.to_owned(),
        action: format!("http:{route}"),
        route: Some(route.to_owned()),
        method: Some("GET".to_owned()),
        path: Some(path.to_owned()),
        running_nanos: (secs * 1e9) as u64,
        cancelled,
        ..TaskInfo::default()
    }
}

/// One node's routes at its first and second poll, two seconds apart.
fn app_routes(second: bool) -> Vec<RouteStats> {
    let k = u64::from(second);
    let mut hello = route("hello", "GET", "/hello/{name}", 48_211 + k * 960, 3);
    hello.p50 = Some(0.21);
    hello.p99 = Some(1.9);
    let mut slow = route("slow", "GET", "/slow", 402 + k * 24, 311);
    slow.p50 = Some(30_000.0);
    slow.p99 = Some(30_720.0);
    slow.resp_5xx = Some(10 + k * 6);
    let mut echo = route("echo", "POST", "/echo", 17 + k * 400, 0);
    echo.preempt = Some(503);
    echo.p50 = Some(0.05);
    echo.p99 = Some(0.09);
    echo.shed = Some(120 + k * 40);
    echo.max_in_flight = Some(64);
    echo.timeout = Some("2s".to_owned());
    let index = route("index", "GET", "/", 17, 0);
    vec![hello, slow, echo, index]
}

fn three_nodes() -> Model {
    let t0 = Instant::now();
    let mut m = Model::new(
        vec!["app-1".into(), "app-2".into(), "app-3".into()],
        Duration::from_secs(1),
    );
    for (i, at) in [t0, t0 + Duration::from_secs(2)].into_iter().enumerate() {
        let second = i == 1;
        let mut half = app_routes(second);
        half.truncate(2);
        m.apply(vec![
            Snapshot {
                node: "app-1".into(),
                at,
                data: Ok(NodeData {
failed: Vec::new(),
                    routes: app_routes(second),
                    tasks: vec![
                        task("vm:1024", "slow", "/slow?ms=30000", 29.4, false),
                        task("vm:1031", "slow", "/slow?ms=30000", 12.25, true),
                        task("vm:1090", "hello", "/hello/ferris", 0.31, false),
                    ],
                    ..NodeData::default()
                }),
            },
            Snapshot {
                node: "app-2".into(),
                at,
                data: Ok(NodeData {
failed: Vec::new(),
                    routes: half,
                    tasks: vec![task("vm:1024", "slow", "/slow?ms=60000", 75.0, false)],
                    ..NodeData::default()
                }),
            },
            Snapshot {
                node: "app-3".into(),
                at,
                data: Err(
                    "no admin socket at /run/app-3.sock (is the app running? set --socket or UNDERSCORE_SOCKET)"
                        .into(),
                ),
            },
        ]);
    }
    m.clock = "12:00:00 UTC".into();
    m
}

fn one_node() -> Model {
    let t0 = Instant::now();
    let mut m = Model::new(vec!["underscore".into()], Duration::from_secs(1));
    for (i, at) in [t0, t0 + Duration::from_secs(1)].into_iter().enumerate() {
        m.apply(vec![Snapshot {
            node: "underscore".into(),
            at,
            data: Ok(NodeData {
                failed: Vec::new(),
                routes: app_routes(i == 1),
                tasks: vec![task("vm:1024", "slow", "/slow?ms=30000", 4.2, false)],
                ..NodeData::default()
            }),
        }]);
    }
    m.clock = "12:00:00 UTC".into();
    m
}

fn draw(m: &Model, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| view::render(f, m)).unwrap();
    terminal
}

fn text(m: &Model, width: u16, height: u16) -> String {
    view::to_text(draw(m, width, height).backend().buffer())
}

#[test]
fn three_nodes_one_disconnected_120x40() {
    insta::assert_snapshot!(text(&three_nodes(), 120, 40));
}

#[test]
fn three_nodes_one_disconnected_80x24() {
    insta::assert_snapshot!(text(&three_nodes(), 80, 24));
}

#[test]
fn one_node_120x40() {
    insta::assert_snapshot!(text(&one_node(), 120, 40));
}

#[test]
fn interrupt_confirmation_80x24() {
    let mut m = one_node();
    m.on_key(Key::Down); // the second route by req/s
    assert_eq!(m.on_key(Key::Char('i')), None, "nothing is sent before y");
    insta::assert_snapshot!(text(&m, 80, 24));
}

#[test]
fn stack_popup_80x24() {
    let mut m = one_node();
    m.on_key(Key::Tab);
    m.on_key(Key::Char('p'));
    m.show_stack(
        "underscore",
        "vm:1024",
        "task vm:1024 (http:slow, GET /slow?ms=30000) running for 4.2s on worker 0\n  at tokio::time::sleep::Sleep::poll_elapsed (tokio-1.54.1/src/time/sleep.rs:384:16)\n  at quickstart::slow::{{closure}} (examples/quickstart.rs:49:59)\n".into(),
    );
    insta::assert_snapshot!(text(&m, 80, 24));
}

#[test]
fn the_only_node_disconnected_80x24() {
    let mut m = one_node();
    m.apply(vec![Snapshot {
        node: "underscore".into(),
        at: Instant::now(),
        data: Err(
            "nothing is listening on /tmp/underscore.sock (connection refused: a stale socket?)"
                .into(),
        ),
    }]);
    let frame = text(&m, 80, 24);
    assert!(frame.contains("disconnected"), "{frame}");
    insta::assert_snapshot!(frame);
}

#[test]
fn a_storm_shows_the_longest_tasks_and_the_routes_with_most_80x24() {
    let mut m = Model::new(vec!["underscore".into()], Duration::from_secs(1));
    m.apply(vec![Snapshot {
        node: "underscore".into(),
        at: Instant::now(),
        data: Ok(NodeData {
            routes: app_routes(false),
            tasks: (0..5)
                .map(|i| {
                    task(
                        &format!("vm:{}", 1024 + i),
                        "slow",
                        "/slow",
                        90.0 - f64::from(i),
                        false,
                    )
                })
                .collect(),
            tasks_total: Some(100_000),
            task_routes: vec![
                ("echo".into(), 2),
                ("hello".into(), 98_998),
                ("slow".into(), 1_000),
            ],
            ..NodeData::default()
        }),
    }]);
    m.clock = "12:00:00 UTC".into();
    assert_eq!(m.tasks_total, 100_000);
    let frame = text(&m, 80, 24);
    assert!(
        frame.contains(
            " Tasks: 100000 in flight, the 5 longest; most on hello 98998, slow 1000, echo 2"
        ),
        "{frame}"
    );
    insta::assert_snapshot!(frame);
}

#[test]
fn tasks_show_their_polls_and_correlation_id_when_the_server_gives_them_120x40() {
    use underscore_cli::top::model::TaskPolls;
    let mut m = one_node();
    let plain = one_node();
    let blocked = TaskInfo {
        opaque_id: Some("checkout-7f3a".into()),
        polls: Some(TaskPolls {
            count: 3,
            busy_nanos: 1_520_000_000,
            longest_nanos: 1_500_000_000,
        }),
        ..task("vm:1025", "block", "/block?ms=1500", 1.6, false)
    };
    let untimed = task("vm:1024", "slow", "/slow?ms=30000", 4.2, false);
    m.apply(vec![Snapshot {
        node: "underscore".into(),
        at: Instant::now() + Duration::from_secs(2),
        data: Ok(NodeData {
            routes: app_routes(true),
            tasks: vec![untimed, blocked],
            ..NodeData::default()
        }),
    }]);
    let shown = text(&m, 120, 40);
    let header = shown
        .lines()
        .find(|l| l.contains("TASK") && l.contains("RUNNING"))
        .unwrap();
    let words: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        words,
        [
            "TASK",
            "ACTION",
            "RUNNING",
            "STATE",
            "BUSY",
            "LONGEST",
            "POLLS",
            "OPAQUE_ID",
            "REQUEST"
        ],
        "{shown}"
    );
    let row = |id: &str| -> Vec<String> {
        let line = shown.lines().find(|l| l.contains(id)).unwrap();
        line.split_whitespace().map(str::to_owned).collect()
    };
    assert_eq!(
        row("vm:1025")[4..8],
        ["1.5s", "1.5s", "3", "checkout-7f3a"],
        "{shown}"
    );
    assert_eq!(row("vm:1024")[4..8], ["-", "-", "-", "-"], "{shown}");
    // Without poll figures or correlation ids (poll timing off), the columns are not shown.
    let quiet = text(&plain, 120, 40);
    assert!(
        !quiet.contains("BUSY") && !quiet.contains("OPAQUE_ID"),
        "{quiet}"
    );
    // On a narrow terminal they go first, before the request.
    let narrow = text(&m, 80, 24);
    assert!(
        !narrow.contains("POLLS") && narrow.contains("REQUEST"),
        "{narrow}"
    );
}

#[test]
fn the_first_poll_has_no_rates_yet_80x24() {
    let mut m = Model::new(vec!["underscore".into()], Duration::from_millis(500));
    m.apply(vec![Snapshot {
        node: "underscore".into(),
        at: Instant::now(),
        data: Ok(NodeData {
            failed: Vec::new(),
            routes: app_routes(false),
            tasks: Vec::new(),
            ..NodeData::default()
        }),
    }]);
    m.clock = "12:00:00 UTC".into();
    insta::assert_snapshot!(text(&m, 80, 24));
}

#[test]
fn the_selected_row_is_reversed_in_the_focused_pane_only() {
    let m = one_node();
    let terminal = draw(&m, 120, 40);
    let buffer = terminal.backend().buffer();
    let row_of = |needle: &str| {
        (0..40)
            .find(|&y| {
                let line: String = (0..120).map(|x| buffer[(x, y)].symbol()).collect();
                line.starts_with(needle)
            })
            .unwrap_or_else(|| panic!("no row starts with {needle}"))
    };
    // The routes pane has the focus; its first row (the highest req/s) is selected.
    let first_route = row_of(&m.routes[0].stats.id);
    assert!(buffer[(0, first_route)]
        .modifier
        .contains(Modifier::REVERSED));
    let second_route = row_of(&m.routes[1].stats.id);
    assert!(!buffer[(0, second_route)]
        .modifier
        .contains(Modifier::REVERSED));
    // The tasks pane's selection is bold, not reversed, until Tab moves there.
    let task_row = row_of("vm:1024");
    assert!(!buffer[(0, task_row)].modifier.contains(Modifier::REVERSED));
    assert!(buffer[(0, task_row)].modifier.contains(Modifier::BOLD));
}

#[test]
fn any_terminal_size_draws_without_a_panic() {
    let mut m = three_nodes();
    m.on_key(Key::Char('i'));
    for (w, h) in [(1, 1), (10, 3), (20, 5), (40, 8), (79, 23), (300, 100)] {
        let frame = text(&m, w, h);
        assert_eq!(frame.lines().count(), usize::from(h));
    }
    m.on_key(Key::Esc);
    m.on_key(Key::Tab);
    m.on_key(Key::Char('p'));
    for (w, h) in [(1, 1), (10, 3), (30, 6)] {
        assert_eq!(text(&m, w, h).lines().count(), usize::from(h));
    }
}

#[test]
fn workers_blocked_now_and_slow_requests_make_a_warnings_line_80x24() {
    use underscore_cli::top::model::NodeWarnings;
    let workers = serde_json::json!([
        {"worker": 0, "polling": "block", "task": null, "polling_for": "1.2s"},
        {"worker": 1, "polling": "hello", "task": "vm:7", "polling_for": "92.9micros"},
        {"worker": 2, "polling": null, "task": null, "polling_for": null}
    ]);
    // A request reported while it ran, then ended (one task), and another one.
    let slowlog = serde_json::json!({"entries": [
        {"seq": 4, "task": "vm:9", "report": 1},
        {"seq": 5, "task": "vm:9", "report": null},
        {"seq": 6, "task": null, "report": null}
    ]});
    let warnings = NodeWarnings::from_values(&workers, &slowlog);
    assert_eq!(warnings.slow_last_minute, 2);
    assert_eq!(warnings.blocked.len(), 1, "92.9micros is no block");
    // The server's `blocking.threshold` decides where it says (here: 1h, so 1.2s is not; and
    // 5micros, so 92.9micros is).
    let judged = serde_json::json!([
        {"worker": 0, "polling": "block", "task": null, "polling_for": "1.2s", "blocked": false},
        {"worker": 1, "polling": "hello", "task": "vm:7", "polling_for": "92.9micros", "blocked": true}
    ]);
    let by_server = NodeWarnings::from_values(&judged, &slowlog);
    assert_eq!(
        by_server.blocked,
        [(
            1,
            "hello".to_owned(),
            Some("vm:7".to_owned()),
            Duration::from_nanos(92_900)
        )]
    );
    let mut m = one_node();
    let quiet = text(&m, 80, 24);
    assert!(!quiet.contains(" ! "), "{quiet}");
    m.apply(vec![Snapshot {
        node: "underscore".into(),
        at: Instant::now() + Duration::from_secs(2),
        data: Ok(NodeData {
            routes: app_routes(true),
            warnings: Some(warnings),
            ..NodeData::default()
        }),
    }]);
    let shown = text(&m, 80, 24);
    let line = shown.lines().nth(1).unwrap();
    assert_eq!(
        line.trim_end(),
        " ! worker 0 blocked 1.2s by block, 2 slow in 1m",
        "{shown}"
    );
}
