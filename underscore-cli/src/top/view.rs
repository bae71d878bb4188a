//! Draws a [`Model`] into a frame: a pure function of the model and the frame's size.
//!
//! Layout, top to bottom: a header line (nodes, interval, sort, clock), one line per
//! disconnected node, the routes, the longest-running tasks, a status line and the keys. The
//! route columns that do not fit the width are left out, least useful first (the path, then
//! the limits, the totals, p50 and the 5xx rate), so an 80x24 terminal still shows what an
//! incident needs: the route, its req/s, in-flight, p99 and preempt state.

use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

use super::model::{Model, NodeState, Pane, Prompt, RouteLine, TaskLine, TaskPolls};

/// Formats a duration in milliseconds: `850µs`, `12.3ms`, `30.7s`; `-` when unknown.
pub fn fmt_ms(ms: Option<f64>) -> String {
    match ms {
        None => "-".to_owned(),
        Some(ms) if ms < 1.0 => format!("{:.0}µs", ms * 1000.0),
        Some(ms) if ms < 1000.0 => format!("{ms:.1}ms"),
        Some(ms) => format!("{:.1}s", ms / 1000.0),
    }
}

/// Formats a rate: `-` before there are two polls, else one decimal (`1.2k` past 10,000).
pub fn fmt_rate(rate: Option<f64>) -> String {
    match rate {
        None => "-".to_owned(),
        Some(r) if r >= 10_000.0 => format!("{:.1}k", r / 1000.0),
        Some(r) => format!("{r:.1}"),
    }
}

/// Formats a running time in nanoseconds: `310ms`, `4.2s`, `2m03s`, `1h02m`.
pub fn fmt_running(nanos: u64) -> String {
    let ms = nanos / 1_000_000;
    let s = ms / 1000;
    match s {
        0 => format!("{ms}ms"),
        1..=59 => format!("{}.{}s", s, (ms % 1000) / 100),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s / 60) % 60),
    }
}

/// Formats a poll's time, short: `840us`, `12ms`, `1.5s` (`fmt_running` past a second).
pub fn fmt_poll(nanos: u64) -> String {
    match nanos {
        0..=999_999 => format!("{}us", nanos / 1_000),
        1_000_000..=999_999_999 => format!("{}ms", nanos / 1_000_000),
        _ => fmt_running(nanos),
    }
}

/// Formats the refresh interval as `--interval` takes it: `1s`, `500ms`, `1500ms`.
pub fn fmt_interval(d: std::time::Duration) -> String {
    underscore_core::time_value::format(d)
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".to_owned())
}

fn preempt_text(r: &RouteLine) -> String {
    match (r.stats.preempt, r.stats.preempt_percent) {
        (None, _) => "-".to_owned(),
        (Some(status), Some(pct)) if pct < 100.0 => format!("{status} {pct}%"),
        (Some(status), _) => status.to_string(),
    }
}

/// One column of a table: its header, width, whether it is right-aligned, and how early it is
/// left out when the width runs short (higher goes first).
struct Col<T> {
    header: &'static str,
    width: u16,
    right: bool,
    drop: u8,
    fill: bool,
    value: fn(&T) -> String,
}

fn col<T>(
    header: &'static str,
    width: u16,
    right: bool,
    drop: u8,
    value: fn(&T) -> String,
) -> Col<T> {
    Col {
        header,
        width,
        right,
        drop,
        fill: false,
        value,
    }
}

/// The columns that fit `width` (with one space between columns), in their order.
fn fit<T>(mut cols: Vec<Col<T>>, width: u16) -> Vec<Col<T>> {
    loop {
        let used: u16 = cols.iter().map(|c| c.width).sum::<u16>()
            + u16::try_from(cols.len().saturating_sub(1)).unwrap_or(u16::MAX);
        if used <= width || cols.len() <= 1 {
            return cols;
        }
        // The rightmost of the columns that go first.
        let Some(worst) = cols.iter().map(|c| c.drop).max().filter(|&d| d > 0) else {
            return cols;
        };
        if let Some(i) = cols.iter().rposition(|c| c.drop == worst) {
            cols.remove(i);
        }
    }
}

/// The display width of the widest of `values` and `header` (a CJK character or an emoji
/// takes two columns), within `min..=max`.
fn width_of<'a>(values: impl Iterator<Item = &'a str>, header: &str, min: u16, max: u16) -> u16 {
    let widest = values
        .map(|v| Line::from(v).width())
        .chain([header.len()])
        .max()
        .unwrap_or(0);
    u16::try_from(widest).unwrap_or(max).clamp(min, max)
}

fn route_columns(m: &Model) -> Vec<Col<RouteLine>> {
    let mut cols = Vec::new();
    if m.several_nodes() {
        let w = width_of(m.nodes.iter().map(|(n, _)| n.as_str()), "NODE", 4, 16);
        cols.push(col("NODE", w, false, 0, |r: &RouteLine| r.node.clone()));
    }
    let w = width_of(m.routes.iter().map(|r| r.stats.id.as_str()), "ROUTE", 5, 24);
    cols.push(col("ROUTE", w, false, 0, |r: &RouteLine| {
        r.stats.id.clone()
    }));
    cols.push(col("REQ/S", 7, true, 0, |r: &RouteLine| fmt_rate(r.rate)));
    cols.push(col("ACTIVE", 6, true, 0, |r: &RouteLine| {
        opt(r.stats.active)
    }));
    cols.push(col("P50", 7, true, 2, |r: &RouteLine| fmt_ms(r.stats.p50)));
    cols.push(col("P99", 7, true, 0, |r: &RouteLine| fmt_ms(r.stats.p99)));
    cols.push(col("5XX/S", 6, true, 2, |r: &RouteLine| {
        fmt_rate(r.err_rate)
    }));
    cols.push(col("SHED", 6, true, 3, |r: &RouteLine| opt(r.stats.shed)));
    cols.push(col("T/O", 5, true, 4, |r: &RouteLine| {
        opt(r.stats.timed_out)
    }));
    cols.push(col("LIMIT", 5, true, 4, |r: &RouteLine| {
        opt(r.stats.max_in_flight)
    }));
    cols.push(col("TIMEOUT", 7, true, 5, |r: &RouteLine| {
        opt(r.stats.timeout.as_deref())
    }));
    cols.push(col("PREEMPT", 8, false, 0, preempt_text));
    cols.push(col("TOTAL", 9, true, 3, |r: &RouteLine| opt(r.stats.total)));
    cols.push(Col {
        fill: true,
        ..col("PATH", 12, false, 5, |r: &RouteLine| {
            let path = r.stats.path.as_deref().unwrap_or("-");
            match &r.stats.method {
                Some(m) => format!("{m} {path}"),
                None => path.to_owned(),
            }
        })
    });
    cols
}

fn task_columns(m: &Model) -> Vec<Col<TaskLine>> {
    let mut cols = Vec::new();
    if m.several_nodes() {
        let w = width_of(m.nodes.iter().map(|(n, _)| n.as_str()), "NODE", 4, 16);
        cols.push(col("NODE", w, false, 0, |t: &TaskLine| t.node.clone()));
    }
    let w = width_of(m.tasks.iter().map(|t| t.task.id.as_str()), "TASK", 4, 24);
    cols.push(col("TASK", w, false, 0, |t: &TaskLine| t.task.id.clone()));
    let w = width_of(
        m.tasks.iter().map(|t| t.task.action.as_str()),
        "ACTION",
        6,
        24,
    );
    cols.push(col("ACTION", w, false, 2, |t: &TaskLine| {
        t.task.action.clone()
    }));
    cols.push(col("RUNNING", 8, true, 0, |t: &TaskLine| {
        fmt_running(t.task.running_nanos)
    }));
    cols.push(col("STATE", 9, false, 1, |t: &TaskLine| {
        if t.task.cancelled {
            "cancelled"
        } else {
            "running"
        }
        .to_owned()
    }));
    // With poll timing on (a task has poll figures): the time its polls took, its longest
    // poll (a blocking one stands out) and how many; dropped first on a narrow terminal.
    if m.tasks.iter().any(|t| t.task.polls.is_some()) {
        cols.push(col("BUSY", 6, true, 4, |t: &TaskLine| {
            polls_cell(t, |p| fmt_poll(p.busy_nanos))
        }));
        cols.push(col("LONGEST", 7, true, 4, |t: &TaskLine| {
            polls_cell(t, |p| fmt_poll(p.longest_nanos))
        }));
        cols.push(col("POLLS", 5, true, 5, |t: &TaskLine| {
            polls_cell(t, |p| p.count.to_string())
        }));
    }
    if m.tasks.iter().any(|t| t.task.opaque_id.is_some()) {
        let w = width_of(
            m.tasks.iter().filter_map(|t| t.task.opaque_id.as_deref()),
            "OPAQUE_ID",
            9,
            20,
        );
        cols.push(col("OPAQUE_ID", w, false, 4, |t: &TaskLine| {
            t.task.opaque_id.clone().unwrap_or_else(|| "-".to_owned())
        }));
    }
    cols.push(Col {
        fill: true,
        ..col("REQUEST", 12, false, 3, |t: &TaskLine| {
            match (&t.task.method, &t.task.path) {
                (Some(m), Some(p)) => format!("{m} {p}"),
                (None, Some(p)) => p.clone(),
                _ => "-".to_owned(),
            }
        })
    });
    cols
}

/// A task's poll figure; `-` for a task whose polls are not timed (it started before poll
/// timing was turned on).
fn polls_cell(t: &TaskLine, figure: fn(&TaskPolls) -> String) -> String {
    t.task.polls.as_ref().map_or_else(|| "-".to_owned(), figure)
}

/// The rows of `items` in the columns `cols`, each in `style(item)`; the selected row is
/// reversed in the focused pane, bold in the other.
fn table<'a, T>(
    cols: &[Col<T>],
    items: &'a [T],
    focused: bool,
    style: impl Fn(&T) -> Style,
) -> Table<'a> {
    let align = |c: &Col<T>, text: String| {
        let line = Line::from(text);
        if c.right {
            Cell::from(line.alignment(Alignment::Right))
        } else {
            Cell::from(line)
        }
    };
    let header = Row::new(cols.iter().map(|c| align(c, c.header.to_owned())))
        .style(Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED));
    let rows = items
        .iter()
        .map(|item| Row::new(cols.iter().map(|c| align(c, (c.value)(item)))).style(style(item)));
    let widths = cols.iter().map(|c| {
        if c.fill {
            Constraint::Min(c.width)
        } else {
            Constraint::Length(c.width)
        }
    });
    let highlight = if focused {
        Modifier::REVERSED
    } else {
        Modifier::BOLD
    };
    Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(Style::new().add_modifier(highlight))
}

fn header_line(m: &Model) -> Line<'static> {
    let down = m
        .nodes
        .iter()
        .filter(|(_, s)| matches!(s, NodeState::Down(_)))
        .count();
    let nodes = match (m.nodes.len(), down) {
        (1, 0) => format!("node {}", m.nodes[0].0),
        (1, _) => format!("node {} down", m.nodes[0].0),
        (n, 0) => format!("{n} nodes"),
        (n, d) => format!("{n} nodes, {d} down"),
    };
    Line::from(vec![
        Span::styled(
            " underscore top ",
            Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ),
        Span::raw(format!(
            " {}  {nodes}  every {}  sort {}",
            m.clock,
            fmt_interval(m.interval),
            m.sort.label()
        )),
        health_span(m),
    ])
}

/// Workers blocked now, and slow requests in the last minute: a red line under the header,
/// only when there are.
fn warnings_line(m: &Model) -> Option<Line<'static>> {
    let mut parts = Vec::new();
    for (node, w) in &m.warnings {
        let on = if m.several_nodes() {
            format!(" on {node}")
        } else {
            String::new()
        };
        for (worker, route, task, took) in &w.blocked {
            let task = task.as_deref().map_or(String::new(), |t| format!(" {t}"));
            parts.push(format!(
                "worker {worker}{on} blocked {:.1}s by {route}{task}",
                took.as_secs_f64()
            ));
        }
        if w.slow_last_minute > 0 {
            parts.push(format!("{} slow in 1m{on}", w.slow_last_minute));
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(Line::styled(
        format!(" ! {}", parts.join(", ")),
        Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
    ))
}

/// Each node's health and drain, as far as its `/_health` says: red while one is not ready.
fn health_span(m: &Model) -> Span<'static> {
    let text = match m.health.as_slice() {
        [] => return Span::raw(""),
        [(_, h)] if !m.several_nodes() => format!("  {}", h.label()),
        all => {
            let each: Vec<String> = all
                .iter()
                .map(|(node, h)| format!("{node} {}", h.label()))
                .collect();
            format!("  {}", each.join(", "))
        }
    };
    let style = if m.health.iter().all(|(_, h)| h.ready) {
        Style::new()
    } else {
        Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
    };
    Span::styled(text, style)
}

fn down_lines(m: &Model) -> Vec<Line<'static>> {
    let interval = fmt_interval(m.interval);
    m.nodes
        .iter()
        .flat_map(|(node, state)| match state {
            NodeState::Up => Vec::new(),
            NodeState::Failing(failed) => failed
                .iter()
                .map(|why| {
                    Line::styled(
                        format!(" {node}: {why}"),
                        Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
                    )
                })
                .collect(),
            NodeState::Down(why) => vec![Line::styled(
                format!(" {node}: disconnected, retrying every {interval}: {why}"),
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            )],
        })
        .collect()
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// The tasks pane's title: how many are in flight; when the nodes hold more than the pane
/// shows, which of them are shown and the routes with the most.
fn tasks_title(m: &Model) -> String {
    let shown = m.tasks.len() as u64;
    if m.tasks_total <= shown {
        return format!(" Tasks: {shown} in flight, longest first ");
    }
    let most: Vec<String> = m
        .task_routes
        .iter()
        .take(3)
        .map(|(route, n)| format!("{route} {n}"))
        .collect();
    let most = if most.is_empty() {
        String::new()
    } else {
        format!("; most on {}", most.join(", "))
    };
    format!(
        " Tasks: {} in flight, the {shown} longest{most} ",
        m.tasks_total
    )
}

/// Draws the model into the frame.
pub fn render(frame: &mut Frame<'_>, m: &Model) {
    let area = frame.area();
    let mut downs = down_lines(m);
    if let Some(warnings) = warnings_line(m) {
        downs.insert(0, warnings);
    }
    let down_height = u16::try_from(downs.len()).unwrap_or(u16::MAX).min(3);
    let rest = area.height.saturating_sub(3 + down_height);
    // The tasks get what they need up to two fifths of what remains (at least their title,
    // header and two rows); the routes get the rest.
    let wanted = u16::try_from(m.tasks.len())
        .unwrap_or(u16::MAX)
        .saturating_add(2);
    let tasks_height = wanted.min(rest * 2 / 5).max(4).min(rest);
    let [head, downs_area, routes_area, tasks_area, status_area, keys_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(down_height),
        Constraint::Min(0),
        Constraint::Length(tasks_height),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);

    frame.render_widget(Paragraph::new(header_line(m)), head);
    frame.render_widget(Paragraph::new(downs), downs_area);

    let route_block = Block::new().title(
        Line::from(format!(" Routes: {} ", m.routes.len()))
            .style(Style::new().add_modifier(Modifier::BOLD)),
    );
    let inner = route_block.inner(routes_area);
    frame.render_widget(route_block, routes_area);
    let cols = fit(route_columns(m), inner.width);
    let routes = table(&cols, &m.routes, m.focus == Pane::Routes, |r| {
        if r.stats.preempt.is_some() {
            Style::new().fg(Color::Yellow)
        } else if r.err_rate.is_some_and(|e| e > 0.0) {
            Style::new().fg(Color::Red)
        } else {
            Style::new()
        }
    });
    let mut state =
        TableState::new().with_selected((!m.routes.is_empty()).then_some(m.route_index));
    frame.render_stateful_widget(routes, inner, &mut state);
    if m.routes.is_empty() && inner.height > 2 {
        let why = if m.polls == 0 {
            "waiting for the first answer..."
        } else if m.nodes.iter().all(|(_, s)| matches!(s, NodeState::Down(_))) {
            "disconnected"
        } else {
            "no routes yet"
        };
        let msg = Rect::new(inner.x, inner.y + 2, inner.width, 1);
        frame.render_widget(Paragraph::new(why).alignment(Alignment::Center), msg);
    }

    let title = tasks_title(m);
    let task_block =
        Block::new().title(Line::from(title).style(Style::new().add_modifier(Modifier::BOLD)));
    let inner = task_block.inner(tasks_area);
    frame.render_widget(task_block, tasks_area);
    let cols = fit(task_columns(m), inner.width);
    let tasks = table(&cols, &m.tasks, m.focus == Pane::Tasks, |t| {
        if t.task.cancelled {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new()
        }
    });
    let mut state = TableState::new().with_selected((!m.tasks.is_empty()).then_some(m.task_index));
    frame.render_stateful_widget(tasks, inner, &mut state);

    if let Some(status) = &m.status {
        frame.render_widget(Paragraph::new(format!(" {status}")), status_area);
    }
    let keys = " s sort  Up/Down select  Tab pane  i interrupt  c cancel  p stack  q quit";
    frame.render_widget(
        Paragraph::new(keys).style(Style::new().add_modifier(Modifier::REVERSED)),
        keys_area,
    );

    if let Some(prompt) = &m.prompt {
        let (title, text) = match prompt {
            Prompt::Interrupt { node, route } => (
                " Interrupt ",
                format!("End every in-flight request of route {route} on {node}? Their clients get 503."),
            ),
            Prompt::Cancel { node, task } => (
                " Cancel ",
                format!("Cancel task {task} on {node}? Its client gets 503."),
            ),
        };
        let popup = centered(area, 64, 6);
        frame.render_widget(Clear, popup);
        frame.render_widget(
            Paragraph::new(vec![
                Line::from(text),
                Line::from(""),
                Line::from("y: yes   any other key: no"),
            ])
            .wrap(Wrap { trim: true })
            .block(
                Block::bordered()
                    .title(title)
                    .style(Style::new().fg(Color::Yellow)),
            ),
            popup,
        );
    }

    if let Some(stack) = &m.stack {
        // Over both panes, between the header and the keys.
        let popup = Rect::new(
            area.x,
            area.y + 1,
            area.width,
            area.height.saturating_sub(2),
        );
        frame.render_widget(Clear, popup);
        let text = stack.text.as_deref().unwrap_or("fetching the stack...");
        frame.render_widget(
            Paragraph::new(text.to_owned())
                .wrap(Wrap { trim: false })
                .scroll((stack.scroll, 0))
                .block(Block::bordered().title(format!(
                    " Stack of {} on {} (Up/Down scroll, Esc closes) ",
                    stack.task, stack.node
                ))),
            popup,
        );
    }
}

/// The text of a drawn buffer: one line per row, trailing spaces trimmed (what `--frames`
/// prints, and what the snapshot tests compare).
pub fn to_text(buffer: &Buffer) -> String {
    let area = buffer.area;
    let mut out = String::new();
    for y in area.top()..area.bottom() {
        let mut line = String::new();
        let mut x = area.left();
        while let Some(cell) = buffer.cell((x, y)).filter(|_| x < area.right()) {
            let symbol = cell.symbol();
            line.push_str(symbol);
            // A wide character (CJK, emoji) covers the next cell too, which holds a blank
            // that a terminal would not show: skip it.
            let width = u16::try_from(Line::from(symbol).width()).unwrap_or(1);
            x = x.saturating_add(width.max(1));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_human_wrote_them() {
        assert_eq!(fmt_ms(None), "-");
        assert_eq!(fmt_ms(Some(0.144)), "144µs");
        assert_eq!(fmt_ms(Some(12.34)), "12.3ms");
        assert_eq!(fmt_ms(Some(30720.0)), "30.7s");
        assert_eq!(fmt_running(310_000_000), "310ms");
        assert_eq!(fmt_running(4_250_000_000), "4.2s");
        assert_eq!(fmt_running(123_000_000_000), "2m03s");
        assert_eq!(fmt_running(3_720_000_000_000), "1h02m");
        assert_eq!(fmt_rate(Some(12.345)), "12.3");
        assert_eq!(fmt_rate(Some(48211.0)), "48.2k");
        assert_eq!(
            fmt_interval(std::time::Duration::from_millis(1500)),
            "1500ms"
        );
        assert_eq!(fmt_interval(std::time::Duration::from_secs(1)), "1s");
    }

    #[test]
    fn a_partial_preempt_shows_its_share() {
        let mut line = RouteLine {
            node: "a".into(),
            stats: super::super::model::RouteStats::default(),
            rate: None,
            err_rate: None,
        };
        assert_eq!(preempt_text(&line), "-");
        line.stats.preempt = Some(503);
        assert_eq!(preempt_text(&line), "503");
        line.stats.preempt_percent = Some(20.0);
        assert_eq!(preempt_text(&line), "503 20%");
        line.stats.preempt_percent = Some(100.0);
        assert_eq!(preempt_text(&line), "503");
    }

    #[test]
    fn wide_route_ids_get_their_display_width() {
        use super::super::model::{NodeData, RouteStats, Snapshot};
        let mut m = Model::new(vec!["a".into()], std::time::Duration::from_secs(1));
        let routes = ["你好世界", "hello", "🔥🔥🔥"].map(|id| RouteStats {
            id: id.to_owned(),
            total: Some(1),
            ..RouteStats::default()
        });
        m.apply(vec![Snapshot {
            node: "a".into(),
            at: std::time::Instant::now(),
            data: Ok(NodeData {
                routes: routes.to_vec(),
                ..NodeData::default()
            }),
        }]);
        assert_eq!(route_columns(&m)[0].width, 8);
        let frame = crate::top::app::frame_text(&m, 60, 16);
        let rows: Vec<&str> = frame
            .lines()
            .filter(|l| l.contains("你") || l.contains("hello") || l.contains("🔥"))
            .collect();
        assert_eq!(rows.len(), 3, "{frame}");
        // Each id is whole, and the next column starts at the same display column.
        for id in ["你好世界", "hello", "🔥🔥🔥"] {
            assert!(
                rows.iter().any(|r| r.starts_with(&format!("{id} "))),
                "{id}\n{frame}"
            );
        }
        let rate_at: Vec<usize> = rows
            .iter()
            .map(|l| Line::from(l.split_once(" -").unwrap().0).width())
            .collect();
        assert!(
            rate_at.iter().all(|&w| w == rate_at[0]),
            "{rate_at:?}\n{frame}"
        );
    }

    #[test]
    fn columns_that_do_not_fit_go_least_useful_first() {
        let m = Model::new(vec!["a".into()], std::time::Duration::from_secs(1));
        let all: Vec<_> = fit(route_columns(&m), 200)
            .iter()
            .map(|c| c.header)
            .collect();
        assert!(all.contains(&"PATH") && all.contains(&"LIMIT") && all.contains(&"TIMEOUT"));
        let headers = |width| -> Vec<&str> {
            fit(route_columns(&m), width)
                .iter()
                .map(|c| c.header)
                .collect()
        };
        assert_eq!(
            headers(60),
            ["ROUTE", "REQ/S", "ACTIVE", "P50", "P99", "5XX/S", "SHED", "PREEMPT"]
        );
        assert_eq!(
            headers(52),
            ["ROUTE", "REQ/S", "ACTIVE", "P50", "P99", "5XX/S", "PREEMPT"]
        );
        assert_eq!(headers(30), ["ROUTE", "REQ/S", "ACTIVE", "P99", "PREEMPT"]);
    }
}
