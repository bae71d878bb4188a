//! Which sockets to talk to, and the node name each one shows under.
//!
//! The sockets are the `--socket` flags, else `UNDERSCORE_SOCKET` (a path or a glob such as
//! `/run/app-*.sock`), else `/tmp/underscore.sock`, the quickstart's default. A flag may be a
//! glob too. A node is named by its socket's file name without `.sock` (`/run/app-1.sock` is
//! `app-1`); when two sockets would get the same name, every node is named by its full path.

use std::path::{Path, PathBuf};

use crate::error::CliError;

/// The socket used when neither `--socket` nor `UNDERSCORE_SOCKET` says one.
pub const DEFAULT_SOCKET: &str = "/tmp/underscore.sock";

/// One admin socket and the name it shows under in a `node` column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The short name.
    pub name: String,
    /// The socket path.
    pub path: PathBuf,
}

/// The nodes to talk to: `flags` (each a path or a glob), else `env` (the value of
/// `UNDERSCORE_SOCKET`), else [`DEFAULT_SOCKET`].
///
/// A pattern without glob characters is taken as it is, even if nothing is there yet (the
/// request then says clearly that the socket is missing); a glob that matches nothing is an
/// error naming it.
///
/// # Errors
///
/// [`CliError::Usage`] for an invalid glob or one that matches nothing.
pub fn resolve(flags: &[String], env: Option<&str>) -> Result<Vec<Node>, CliError> {
    let mut paths: Vec<PathBuf> = Vec::new();
    for pattern in patterns(flags, env) {
        for path in expand(pattern)? {
            if !paths.contains(&path) {
                paths.push(path);
            }
        }
    }
    Ok(name(paths))
}

/// The socket patterns [`resolve`] expands: `flags`, else `env`, else [`DEFAULT_SOCKET`].
pub fn patterns<'a>(flags: &'a [String], env: Option<&'a str>) -> Vec<&'a str> {
    if !flags.is_empty() {
        flags.iter().map(String::as_str).collect()
    } else {
        match env {
            Some(env) if !env.is_empty() => vec![env],
            _ => vec![DEFAULT_SOCKET],
        }
    }
}

/// Whether a socket pattern is a glob (else it is one path).
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

fn expand(pattern: &str) -> Result<Vec<PathBuf>, CliError> {
    if !is_glob(pattern) {
        return Ok(vec![PathBuf::from(pattern)]);
    }
    let entries = glob::glob(pattern)
        .map_err(|err| CliError::Usage(format!("invalid socket pattern [{pattern}]: {err}")))?;
    // An entry that cannot be read (a directory without permission on the way) is skipped:
    // the sockets that can be seen are still worth asking.
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).collect();
    paths.sort();
    if paths.is_empty() {
        return Err(CliError::Usage(format!(
            "no admin socket matches [{pattern}]"
        )));
    }
    Ok(paths)
}

fn short_name(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    match file.strip_suffix(".sock") {
        Some(stem) if !stem.is_empty() => stem.to_owned(),
        _ => file,
    }
}

fn name(paths: Vec<PathBuf>) -> Vec<Node> {
    let shorts: Vec<String> = paths.iter().map(|p| short_name(p)).collect();
    let unique = shorts
        .iter()
        .enumerate()
        .all(|(i, s)| !shorts[..i].contains(s));
    paths
        .into_iter()
        .zip(shorts)
        .map(|(path, short)| Node {
            name: if unique {
                short
            } else {
                path.display().to_string()
            },
            path,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(nodes: &[Node]) -> Vec<&str> {
        nodes.iter().map(|n| n.name.as_str()).collect()
    }

    #[test]
    fn flags_come_before_the_environment_and_the_default() {
        let flags = vec!["/run/a.sock".to_owned(), "/run/b.sock".to_owned()];
        let nodes = resolve(&flags, Some("/elsewhere.sock")).unwrap();
        assert_eq!(names(&nodes), ["a", "b"]);
        assert_eq!(nodes[1].path, Path::new("/run/b.sock"));
        let nodes = resolve(&[], Some("/srv/x.sock")).unwrap();
        assert_eq!(nodes[0].path, Path::new("/srv/x.sock"));
        let nodes = resolve(&[], None).unwrap();
        assert_eq!(nodes[0].path, Path::new(DEFAULT_SOCKET));
        assert_eq!(names(&nodes), ["underscore"]);
        assert_eq!(
            resolve(&[], Some("")).unwrap()[0].path,
            Path::new(DEFAULT_SOCKET)
        );
    }

    #[test]
    fn a_glob_expands_to_every_match_in_order() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["app-2.sock", "app-1.sock", "other.txt"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        let pattern = format!("{}/app-*.sock", dir.path().display());
        let nodes = resolve(&[], Some(&pattern)).unwrap();
        assert_eq!(names(&nodes), ["app-1", "app-2"]);
    }

    #[test]
    fn a_glob_that_matches_nothing_says_so() {
        let err = resolve(&["/nonexistent-dir-x/app-*.sock".to_owned()], None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no admin socket matches [/nonexistent-dir-x/app-*.sock]"
        );
    }

    #[test]
    fn names_that_would_collide_are_full_paths() {
        let flags = vec!["/a/admin.sock".to_owned(), "/b/admin.sock".to_owned()];
        let nodes = resolve(&flags, None).unwrap();
        assert_eq!(names(&nodes), ["/a/admin.sock", "/b/admin.sock"]);
    }

    #[test]
    fn the_same_socket_twice_is_one_node() {
        let flags = vec!["/a/x.sock".to_owned(), "/a/x.sock".to_owned()];
        assert_eq!(resolve(&flags, None).unwrap().len(), 1);
    }
}
