//! Elasticsearch response filtering (`filter_path`): a comma list of dotted paths, where a
//! segment may use `*` wildcards, `**` matches any number of segments, and a leading `-`
//! excludes. Inclusion keeps whole subtrees; containers left empty are dropped; array items
//! share their array's path.

use serde_json::{Map, Value};

use crate::params::split_list;
use crate::{glob, ApiError};

#[derive(Debug)]
enum Segment {
    Glob(String),
    AnyDepth,
}

type Filter = Vec<Segment>;

/// The longest `filter_path` accepted, and the most segments in one of its paths.
const MAX_EXPR: usize = 2048;
const MAX_SEGMENTS: usize = 32;

/// A position in one filter: how many segments are already matched.
type State = (usize, usize);

/// Applies `expr` to `value`.
///
/// # Errors
///
/// A 400 for an empty item or an empty segment (`a..b`).
pub fn apply(value: Value, expr: &str) -> Result<Value, ApiError> {
    // Bounded: the matching cost grows with the number of filters and `**` segments.
    if expr.len() > MAX_EXPR {
        return Err(ApiError::illegal_argument(format!(
            "[filter_path] is longer than {MAX_EXPR} characters"
        )));
    }
    let mut includes = Vec::new();
    let mut excludes = Vec::new();
    for item in split_list("filter_path", expr)? {
        let (target, path) = match item.strip_prefix('-') {
            Some(rest) => (&mut excludes, rest),
            None => (&mut includes, item.strip_prefix('+').unwrap_or(item)),
        };
        if path.is_empty() || path.split('.').any(str::is_empty) {
            return Err(ApiError::illegal_argument(format!(
                "invalid [filter_path] expression [{item}]"
            )));
        }
        let mut filter: Filter = Vec::new();
        for seg in path.split('.') {
            match seg {
                // `**.**` is `**`.
                "**" if matches!(filter.last(), Some(Segment::AnyDepth)) => {}
                "**" => filter.push(Segment::AnyDepth),
                other => filter.push(Segment::Glob(other.to_owned())),
            }
        }
        if filter.len() > MAX_SEGMENTS {
            return Err(ApiError::illegal_argument(format!(
                "[filter_path] expression [{item}] has more than {MAX_SEGMENTS} segments"
            )));
        }
        target.push(filter);
    }
    let inc: Vec<State> = (0..includes.len()).map(|f| (f, 0)).collect();
    let exc: Vec<State> = (0..excludes.len()).map(|f| (f, 0)).collect();
    let ctx = Ctx {
        includes: &includes,
        excludes: &excludes,
    };
    let whole = includes.is_empty();
    let empty = match value {
        Value::Array(_) => Value::Array(Vec::new()),
        _ => Value::Object(Map::new()),
    };
    Ok(ctx.filter(value, &inc, &exc, whole).unwrap_or(empty))
}

struct Ctx<'a> {
    includes: &'a [Filter],
    excludes: &'a [Filter],
}

impl Ctx<'_> {
    /// Advances `states` over `key`, returning the new states and whether one matched fully.
    fn step(filters: &[Filter], states: &[State], key: &str) -> (Vec<State>, bool) {
        let mut next = Vec::new();
        let mut done = false;
        let mut push = |state: State, next: &mut Vec<State>| {
            // `**` may also match zero segments: also stand after it.
            let mut s = state;
            loop {
                if s.1 == filters[s.0].len() {
                    done = true;
                    break;
                }
                if !next.contains(&s) {
                    next.push(s);
                }
                match filters[s.0][s.1] {
                    Segment::AnyDepth => s = (s.0, s.1 + 1),
                    Segment::Glob(_) => break,
                }
            }
        };
        for &(f, pos) in &closure(filters, states) {
            match &filters[f][pos] {
                Segment::AnyDepth => {
                    push((f, pos), &mut next);
                }
                Segment::Glob(pattern) if glob::matches(pattern, key) => {
                    push((f, pos + 1), &mut next)
                }
                Segment::Glob(_) => {}
            }
        }
        (next, done)
    }

    /// `whole`: an include matched an ancestor, so everything below is kept unless excluded.
    fn filter(&self, value: Value, inc: &[State], exc: &[State], whole: bool) -> Option<Value> {
        match value {
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, v) in map {
                    let (exc_next, excluded) = Self::step(self.excludes, exc, &k);
                    if excluded {
                        continue;
                    }
                    let (inc_next, included) = if whole {
                        (Vec::new(), true)
                    } else {
                        Self::step(self.includes, inc, &k)
                    };
                    if !included && inc_next.is_empty() {
                        continue;
                    }
                    if let Some(v) = self.filter(v, &inc_next, &exc_next, included) {
                        out.insert(k, v);
                    }
                }
                (!out.is_empty() || (whole && exc.is_empty())).then_some(Value::Object(out))
            }
            Value::Array(items) => {
                let out: Vec<Value> = items
                    .into_iter()
                    .filter_map(|item| self.filter(item, inc, exc, whole))
                    .collect();
                (!out.is_empty() || (whole && exc.is_empty())).then_some(Value::Array(out))
            }
            scalar => whole.then_some(scalar),
        }
    }
}

/// Expands states standing on `**` to also stand after it (zero segments matched).
fn closure(filters: &[Filter], states: &[State]) -> Vec<State> {
    let mut out: Vec<State> = Vec::new();
    for &(f, mut pos) in states {
        while pos < filters[f].len() {
            if !out.contains(&(f, pos)) {
                out.push((f, pos));
            }
            match filters[f][pos] {
                Segment::AnyDepth => pos += 1,
                Segment::Glob(_) => break,
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::apply;
    use serde_json::{json, Value};

    fn doc() -> Value {
        json!({
            "index": {"handler": "q::index", "methods": ["GET"], "path": "/", "line": 3},
            "hello": {"handler": "q::hello", "methods": ["GET"], "path": "/hello/{name}", "line": 9},
        })
    }

    fn f(expr: &str) -> Value {
        apply(doc(), expr).unwrap()
    }

    #[test]
    fn include_paths_with_wildcards() {
        assert_eq!(
            f("*.path"),
            json!({"index": {"path": "/"}, "hello": {"path": "/hello/{name}"}})
        );
        assert_eq!(f("hello"), json!({"hello": doc()["hello"].clone()}));
        assert_eq!(
            f("h*.line,index.path"),
            json!({"index": {"path": "/"}, "hello": {"line": 9}})
        );
        assert_eq!(
            f("**.methods"),
            json!({"index": {"methods": ["GET"]}, "hello": {"methods": ["GET"]}})
        );
        assert_eq!(f("nothing"), json!({}));
    }

    #[test]
    fn excludes_apply_first() {
        assert_eq!(
            f("-**.handler,-**.methods,-**.line"),
            json!({"index": {"path": "/"}, "hello": {"path": "/hello/{name}"}})
        );
        assert_eq!(f("*.path,-hello"), json!({"index": {"path": "/"}}));
        assert_eq!(f("*,-*"), json!({}));
        assert_eq!(f("-index"), json!({"hello": doc()["hello"].clone()}));
    }

    #[test]
    fn repeated_any_depth_is_cheap() {
        let expr = format!("-{}.zzz", vec!["**"; 400].join("."));
        let start = std::time::Instant::now();
        assert_eq!(apply(doc(), &expr).unwrap(), doc());
        assert!(
            start.elapsed() < std::time::Duration::from_millis(50),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn arrays_share_their_path() {
        let v = json!([{"id": "a", "x": 1}, {"id": "b", "x": 2}]);
        assert_eq!(
            apply(v.clone(), "id").unwrap(),
            json!([{"id": "a"}, {"id": "b"}])
        );
        assert_eq!(apply(v, "nope").unwrap(), json!([]));
    }

    #[test]
    fn malformed_expressions_are_rejected() {
        let long = vec!["a"; 40].join(".");
        let huge = "a,".repeat(1200);
        for bad in ["", ",", "a..b", "-", "a,", long.as_str(), huge.as_str()] {
            assert_eq!(apply(doc(), bad).unwrap_err().status, 400, "{bad:?}");
        }
    }
}
