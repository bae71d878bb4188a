//! The README and the guide (`docs/`): every relative link resolves, to a file and, with a
//! `#fragment`, to a heading of the Markdown page it names (GitHub's anchors); every code block
//! says its language, so that rustdoc compiles the Rust ones and only those (a block without one
//! is Rust to rustdoc); every page is compiled as doc tests (`src/lib.rs`); the README stays short.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_path_buf()
}

/// README.md, CHANGELOG.md and every `.md` file under `docs/`.
fn markdown_files() -> Vec<PathBuf> {
    let root = root();
    let mut files = vec![root.join("README.md")];
    if root.join("CHANGELOG.md").exists() {
        files.push(root.join("CHANGELOG.md"));
    }
    let mut dirs = vec![root.join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// A line of a Markdown file, outside code blocks, with its number.
struct Prose<'a> {
    number: usize,
    text: &'a str,
}

/// The lines outside fenced code blocks, and the info string of each opening fence (with its
/// line number).
fn split(markdown: &str) -> (Vec<Prose<'_>>, Vec<(usize, String)>) {
    let mut prose = Vec::new();
    let mut fences = Vec::new();
    let mut open: Option<&str> = None;
    for (i, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (open, marker) {
            (None, Some(m)) => {
                open = Some(m);
                fences.push((i + 1, trimmed[m.len()..].trim().to_owned()));
            }
            (Some(o), Some(m)) if o == m && trimmed[m.len()..].trim().is_empty() => open = None,
            (Some(_), _) => {}
            (None, None) => prose.push(Prose {
                number: i + 1,
                text: line,
            }),
        }
    }
    assert!(open.is_none(), "a code block is never closed");
    (prose, fences)
}

/// The line without its code spans (`` `[a](b)` `` is not a link).
fn without_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let ticks = rest[start..].chars().take_while(|&c| c == '`').count();
        let fence = &rest[start..start + ticks];
        match rest[start + ticks..].find(fence) {
            Some(end) => rest = &rest[start + ticks + end + ticks..],
            None => {
                rest = &rest[start + ticks..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The link targets of a line: inline links and images `[text](target)`, and reference
/// definitions `[label]: target`.
fn link_targets(line: &str) -> Vec<String> {
    let line = without_code_spans(line);
    let mut targets = Vec::new();
    let trimmed = line.trim_start();
    if trimmed.starts_with('[') {
        if let Some(end) = trimmed.find("]:") {
            let target = trimmed[end + 2..].split_whitespace().next().unwrap_or("");
            targets.push(target.trim_matches(['<', '>']).to_owned());
        }
    }
    let mut rest = line.as_str();
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let end = after.find(')').unwrap_or(after.len());
        let target = after[..end].split_whitespace().next().unwrap_or("");
        targets.push(target.trim_matches(['<', '>']).to_owned());
        rest = &after[end..];
    }
    targets
}

/// GitHub's anchor for a heading: its text as rendered (code spans' backticks, links' brackets
/// and targets gone), in lower case, without punctuation but `-` and `_`, spaces as `-`.
fn slug(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    // A link in a heading renders as its text.
    while let Some(open) = rest.find('[') {
        match rest[open..].find("](") {
            Some(mid) => {
                text.push_str(&rest[..open]);
                text.push_str(&rest[open + 1..open + mid]);
                let after = &rest[open + mid + 2..];
                rest = &after[after.find(')').map_or(after.len(), |e| e + 1)..];
            }
            None => break,
        }
    }
    text.push_str(rest);
    text.chars()
        .flat_map(char::to_lowercase)
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a page's headings, numbered as GitHub numbers repeated ones (`-1`, `-2`).
fn anchors(markdown: &str) -> BTreeSet<String> {
    let (prose, _) = split(markdown);
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut anchors = BTreeSet::new();
    for line in prose {
        let hashes = line.text.chars().take_while(|&c| c == '#').count();
        if (1..=6).contains(&hashes) && line.text[hashes..].starts_with(' ') {
            let base = slug(line.text[hashes..].trim());
            let n = seen.entry(base.clone()).or_insert(0);
            anchors.insert(if *n == 0 {
                base.clone()
            } else {
                format!("{base}-{n}")
            });
            *n += 1;
        }
    }
    anchors
}

#[test]
fn every_relative_link_resolves_to_a_file_and_a_heading() {
    let root = root();
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in markdown_files() {
        let markdown = fs::read_to_string(&file).expect("a Markdown file");
        let (prose, _) = split(&markdown);
        let name = file.strip_prefix(&root).unwrap().display().to_string();
        for line in prose {
            for target in link_targets(line.text) {
                if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (path, fragment) = match target.split_once('#') {
                    Some((path, fragment)) => (path, Some(fragment)),
                    None => (target.as_str(), None),
                };
                let resolved = if path.is_empty() {
                    file.clone()
                } else {
                    file.parent().unwrap().join(path)
                };
                let at = format!("{name}:{}: {target}", line.number);
                if !resolved.exists() {
                    broken.push(format!("{at}: no such file"));
                    continue;
                }
                let Some(fragment) = fragment else { continue };
                if resolved.extension().is_some_and(|e| e == "md") {
                    let page = fs::read_to_string(&resolved).expect("a Markdown file");
                    if !anchors(&page).contains(fragment) {
                        broken.push(format!("{at}: no heading with that anchor"));
                    }
                }
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} links found: the parser is broken"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_code_block_says_its_language() {
    let root = root();
    let mut bare = Vec::new();
    for file in markdown_files() {
        let markdown = fs::read_to_string(&file).expect("a Markdown file");
        let (_, fences) = split(&markdown);
        for (number, info) in fences {
            let name = file.strip_prefix(&root).unwrap().display();
            // rustdoc compiles a block without a language as Rust; `ignore` would hide a snippet
            // that no longer compiles.
            if info.is_empty() {
                bare.push(format!("{name}:{number}: a code block without a language"));
            }
            if info.starts_with("rust") && info.contains("ignore") {
                bare.push(format!(
                    "{name}:{number}: `ignore` hides a snippet from the tests"
                ));
            }
        }
    }
    assert!(bare.is_empty(), "{}", bare.join("\n"));
}

#[test]
fn every_page_is_compiled_as_doc_tests() {
    let root = root();
    let lib = fs::read_to_string(root.join("tests/src/lib.rs")).expect("tests/src/lib.rs");
    let missing: Vec<_> = markdown_files()
        .into_iter()
        .map(|f| f.strip_prefix(&root).unwrap().display().to_string())
        .filter(|name| name != "CHANGELOG.md")
        .filter(|name| !lib.contains(&format!("include_str!(\"../../{name}\")")))
        .collect();
    assert!(
        missing.is_empty(),
        "add these pages to the `markdown` module of tests/src/lib.rs: {missing:?}"
    );
}

#[test]
fn the_readme_stays_under_15_kb() {
    let size = fs::metadata(root().join("README.md"))
        .expect("README.md")
        .len();
    assert!(
        size <= 15 * 1024,
        "README.md is {size} bytes: move details to the guide (docs/)"
    );
}

#[test]
fn anchors_are_githubs() {
    assert_eq!(
        slug("4a. Serve the admin APIs on a private UNIX socket (recommended)"),
        "4a-serve-the-admin-apis-on-a-private-unix-socket-recommended"
    );
    assert_eq!(slug("`print_stack`"), "print_stack");
    assert_eq!(slug("Routes and `_cat`"), "routes-and-_cat");
    assert_eq!(
        slug("A traffic storm: 100,000 requests"),
        "a-traffic-storm-100000-requests"
    );
    assert_eq!(slug("[Unreleased](#x)"), "unreleased");
    let page = "# A\n\n```sh\n# not a heading\n```\n\n## A\n";
    let found: Vec<_> = anchors(page).into_iter().collect();
    assert_eq!(found, ["a", "a-1"]);
    assert_eq!(
        link_targets("see [x](a.md#b), `[y](no.md)` and ![i](img.png \"t\")"),
        ["a.md#b", "img.png"]
    );
}
