//! Elasticsearch's "simple match": `*` matches any run of characters, nothing else is special.

/// Whether `text` matches `pattern`, where `*` stands for any (possibly empty) run of characters.
///
/// Linear in practice: the classic two-pointer algorithm with back-tracking to the last `*`.
pub fn matches(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// Whether `pattern` contains a wildcard.
pub fn is_pattern(pattern: &str) -> bool {
    pattern.contains('*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn simple_match() {
        assert!(matches("*", ""));
        assert!(matches("*", "abc"));
        assert!(matches("stats.*", "stats.req.total"));
        assert!(matches("*.total", "stats.req.total"));
        assert!(matches("s*q*l", "stats.req.total"));
        assert!(matches("abc", "abc"));
        assert!(!matches("abc", "abcd"));
        assert!(!matches("a*c", "abd"));
        assert!(matches("a**c", "abbbc"));
        assert!(!matches("", "a"));
    }
}
