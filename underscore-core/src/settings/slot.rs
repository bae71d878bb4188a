//! The effective settings of a route, as the middleware reads them on every request.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock};

use serde_json::Value;

use super::Flat;

/// A preempted response, computed once per settings change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preempt {
    /// The status code.
    pub status: u16,
    /// The reason phrase, interned (actix takes a `&'static str`).
    pub reason: Option<&'static str>,
    /// The text/plain body.
    pub text: Option<String>,
    /// The `Retry-After` header, in seconds.
    pub retry_after: Option<u64>,
}

impl Preempt {
    /// The preempt that `effective` settings ask for: `None` without `preempt.status`.
    pub fn from_settings(effective: &Flat) -> Option<Self> {
        let status = effective.get("preempt.status")?.as_u64()? as u16;
        Some(Self {
            status,
            reason: effective
                .get("preempt.reason")
                .and_then(Value::as_str)
                .map(intern),
            text: effective
                .get("preempt.text")
                .and_then(Value::as_str)
                .map(str::to_owned),
            retry_after: effective.get("preempt.retry_after").and_then(Value::as_u64),
        })
    }
}

/// Interns a reason phrase: each distinct phrase is leaked once, never per request or change.
fn intern(reason: &str) -> &'static str {
    static PHRASES: LazyLock<Mutex<HashSet<&'static str>>> = LazyLock::new(Mutex::default);
    let mut phrases = PHRASES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = phrases.get(reason) {
        return found;
    }
    let leaked: &'static str = Box::leak(reason.to_owned().into_boxed_str());
    phrases.insert(leaked);
    leaked
}

/// The effective settings of one route, as the middleware reads them on every request.
///
/// Reading costs one atomic load while the route has no preempt: the lock behind it is taken
/// only for a preempted route.
#[derive(Debug, Default)]
pub struct SettingsSlot {
    preempting: AtomicBool,
    preempt: RwLock<Option<Arc<Preempt>>>,
}

impl SettingsSlot {
    /// An empty slot.
    pub const fn new() -> Self {
        Self {
            preempting: AtomicBool::new(false),
            preempt: RwLock::new(None),
        }
    }

    /// The preempt to answer with, if any.
    #[inline]
    pub fn preempt(&self) -> Option<Arc<Preempt>> {
        // Acquire pairs with the Release in `set`: once the flag is seen, so is the value.
        if !self.preempting.load(Ordering::Acquire) {
            return None;
        }
        self.preempt
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether the route is preempted now.
    pub fn is_preempting(&self) -> bool {
        self.preempting.load(Ordering::Acquire)
    }

    pub(crate) fn set(&self, preempt: Option<Preempt>) {
        let on = preempt.is_some();
        *self.preempt.write().unwrap_or_else(|e| e.into_inner()) = preempt.map(Arc::new);
        self.preempting.store(on, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::tiers::Tiers;
    use serde_json::json;

    #[test]
    fn effective_is_transient_then_persistent() {
        let mut tiers = Tiers::default();
        tiers.persistent.insert(
            "a".into(),
            [
                ("preempt.status".to_owned(), json!(503)),
                ("preempt.reason".to_owned(), json!("P")),
            ]
            .into(),
        );
        tiers.transient.insert(
            "a".into(),
            [("preempt.reason".to_owned(), json!("T"))].into(),
        );
        let p = Preempt::from_settings(&tiers.effective("a")).unwrap();
        assert_eq!((p.status, p.reason), (503, Some("T")));
        assert_eq!(Preempt::from_settings(&tiers.effective("b")), None);
        // A reason without a status preempts nothing.
        tiers.persistent.clear();
        assert_eq!(Preempt::from_settings(&tiers.effective("a")), None);
    }

    #[test]
    fn reasons_are_interned() {
        assert!(std::ptr::eq(
            intern("Busy now"),
            intern(&String::from("Busy now"))
        ));
    }
}
