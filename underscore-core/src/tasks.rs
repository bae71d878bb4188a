//! In-flight tasks: every request being served (and background tasks the app registers), on
//! every worker, each with a way to cancel it from another thread.
//!
//! # Layout and cost
//!
//! Each thread that runs tasks (each actix worker) owns a [`Shard`]: a slab of entries behind
//! a mutex that only that thread locks on the request path, so the lock is never contended
//! there; the admin APIs lock a shard only to read or cancel. Per request: one lock to insert
//! the entry, one to remove it, one atomic load per poll to learn of a cancellation. No global
//! lock, no allocation (the slab reuses its slots), no shared counter: task numbers are drawn
//! per shard.
//!
//! # Threads that come and go
//!
//! A thread takes its shard when it first registers a task, and hands it back when it exits:
//! the next new thread reuses it, so short-lived threads do not add shards. Shards are never
//! freed (a task handle holds a plain `&'static`): there are at most as many as threads ever
//! ran tasks at once, and no more than 1,024. What an exited thread leaves behind is its shard,
//! with the slab's slots at their high-water mark, and any task still registered in it (a
//! handle that outlived its thread): such a task stays listed, cancellable and removable, and
//! the shard's next owner draws numbers after its own. Past 1,024 threads alive at once, new
//! threads share the shards round-robin; a shared shard's lock may then be contended, and
//! numbers stay unique as they are drawn under that lock.
//!
//! # Cancellation
//!
//! Cancelling sets the entry's flag, bumps the shard's epoch and wakes the task. The task's
//! future sees the new epoch at its next poll, checks its flag under the lock, and ends: the
//! middleware answers `503 Request interrupted`. Cancellation takes effect at an `.await`:
//! blocking code keeps running until it yields, and tasks the handler spawned are not stopped.

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, RwLock};
use std::task::Waker;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::clock::Stamp;

use crate::registry::DynamicRoute;
use crate::route::RouteMeta;

mod details;

use details::Details;

/// How many slots a listing or a mass cancellation goes through under one lock of a shard:
/// some 50 µs of work (measured with the `tasks_storm` bench), the longest its worker can
/// wait for its own shard because of the admin APIs.
const CHUNK: usize = 1024;

/// Task numbers carry their shard in the low bits, so shards never share a counter.
const SHARD_BITS: u32 = 10;
const MAX_SHARDS: usize = 1 << SHARD_BITS;

/// What a task is.
#[derive(Debug, Clone)]
pub enum TaskKind {
    /// An HTTP request being served.
    Request {
        /// The request's method.
        method: http::Method,
        /// The request's URI (a cheap clone of actix's).
        uri: http::Uri,
        /// The client's address, when known (not over a UNIX socket).
        peer: Option<SocketAddr>,
        /// The request's correlation id (see [`correlation`](crate::correlation)): its
        /// `X-Opaque-Id` header by default, echoed in `_tasks` as Elasticsearch does, else its
        /// `X-Request-Id`, else the trace id of its `traceparent`.
        opaque_id: Option<http::HeaderValue>,
    },
    /// A background task the app spawned through underscore.
    Background {
        /// Its name.
        name: Arc<str>,
    },
    /// A task of underscore's own, action `underscore:<name>` (the drain); not cancellable.
    Underscore {
        /// Its name (`drain`).
        name: &'static str,
    },
}

/// The route a request task belongs to.
#[derive(Debug, Clone)]
pub enum TaskRoute {
    /// An annotated route.
    Annotated(&'static RouteMeta),
    /// A plain actix-web route, known only once routed: `None` while in flight.
    Plain(Option<&'static DynamicRoute>),
    /// A plain actix-web route whose `limits.max_in_flight` admitted the request (matched by
    /// path before routing): counted in the route's statistics already, unlike `Plain`.
    Admitted(&'static DynamicRoute),
    /// Not a request.
    None,
}

/// A captured stack, rendered where it is received: resolving symbols can take a while, and
/// must not happen on the worker that captured it.
pub type Stack = Box<dyn FnOnce() -> String + Send>;

/// What a stack capture request hands back.
pub type StackSender = std::sync::mpsc::SyncSender<Stack>;

/// How many askers (`print_stack` calls, slow-log reports) may wait for one task's stack at
/// once; one more takes the oldest one's place (it has waited longest, and has most likely
/// given up).
const STACK_ASKERS: usize = 8;

/// A task in its shard: 128 bytes (asserted in the tests), what each waiting request costs
/// here. Its method, target and peer are kept compactly (see `details`, which holds its two
/// flags too), and a stack request's channel waits in the slab, beside it, as few tasks ever
/// have one.
#[derive(Debug)]
struct Entry {
    number: u64,
    details: Details,
    route: TaskRoute,
    started: Stamp,
    waker: Option<Waker>,
}

/// Why a task was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// `POST /_routes/{ids}/interrupt`.
    Interrupt,
    /// `POST /_tasks/{id}/_cancel`.
    Cancel,
    /// The route's `limits.timeout` ran out (seen by the request itself, never sent through
    /// the registry).
    Timeout,
    /// A drain's timeout ran out with the request still in flight (`POST /_drain`, SIGTERM).
    Drain,
}

// Entries live inline: boxing them would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Slot {
    Used(Entry),
    Free(Option<usize>),
}

#[derive(Debug, Default)]
struct Slab {
    slots: Vec<Slot>,
    free: Option<usize>,
    len: usize,
    /// Task numbers drawn (under the lock: the shard outlives its thread, and may be shared).
    drawn: u64,
    /// Where the stacks asked of tasks go, by slot, oldest first (several for one task while
    /// it is not polled): rare, so out of the entries.
    stacks: Vec<(usize, StackSender)>,
    /// The timed polls of each task, by slot, while poll timing is on (see
    /// [`workers`](crate::workers)): out of the entries, so that they stay 128 bytes when it
    /// is off.
    polls: std::collections::HashMap<usize, PollStats>,
}

/// The timed polls of one task (see [`workers`](crate::workers)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollStats {
    /// How many polls were timed.
    pub polls: u64,
    /// Time spent in them.
    pub busy: Duration,
    /// The longest.
    pub longest: Duration,
    /// How many were blocking polls (past `blocking.threshold`).
    pub blocking: u64,
}

impl Slab {
    /// A new task number, unique in the process: shard `index`'s next.
    fn draw(&mut self, index: usize) -> u64 {
        self.drawn += 1;
        (self.drawn << SHARD_BITS) | index as u64
    }

    // Entries are written into their slot and dropped in place, never moved out: each move is
    // a call to `memcpy` (at 256 bytes, moves were most of a registration's cost).
    #[inline(always)]
    fn insert(&mut self, entry: Entry) -> usize {
        let key = self.free.unwrap_or_else(|| self.grow());
        let slot = &mut self.slots[key];
        let Slot::Free(next) = *slot else {
            unreachable!("the free list only holds free slots")
        };
        self.free = next;
        self.len += 1;
        *slot = Slot::Used(entry);
        key
    }

    /// Adds a free slot (one path for `insert` to write its entry through).
    #[cold]
    fn grow(&mut self) -> usize {
        self.slots.push(Slot::Free(None));
        self.slots.len() - 1
    }

    /// Drops the entry at `key` in place, all but its waker, which is handed back for the
    /// caller to drop once the lock is released (dropping a waker runs the executor's code);
    /// `None` if the slot was free.
    fn remove(&mut self, key: usize) -> Option<Option<Waker>> {
        let slot = &mut self.slots[key];
        let Slot::Used(entry) = slot else {
            return None;
        };
        let waker = entry.waker.take();
        if !self.polls.is_empty() {
            self.polls.remove(&key);
        }
        if entry.details.stack_asked {
            // Its asker then sees the channel closed.
            self.stacks.retain(|(k, _)| *k != key);
        }
        *slot = Slot::Free(self.free);
        self.free = Some(key);
        self.len -= 1;
        Some(waker)
    }

    fn get_mut(&mut self, key: usize) -> Option<&mut Entry> {
        match self.slots.get_mut(key) {
            Some(Slot::Used(entry)) => Some(entry),
            _ => None,
        }
    }

    /// The channels of every stack asked of the task at `key` since its last capture, once.
    fn take_stacks(&mut self, key: usize) -> Vec<StackSender> {
        let mut taken = Vec::new();
        let Some(entry) = self.get_mut(key) else {
            return taken;
        };
        if !std::mem::take(&mut entry.details.stack_asked) {
            return taken;
        }
        let mut i = 0;
        while i < self.stacks.len() {
            if self.stacks[i].0 == key {
                taken.push(self.stacks.remove(i).1);
            } else {
                i += 1;
            }
        }
        taken
    }
}

/// The tasks of one thread.
#[derive(Debug)]
pub struct Shard {
    index: usize,
    /// Bumped on every cancellation or stack request in this shard: the one thing a task's
    /// future reads on each poll.
    epoch: AtomicU32,
    slab: Mutex<Slab>,
}

impl Shard {
    fn lock(&self) -> MutexGuard<'_, Slab> {
        // A panic while holding the lock cannot leave a slab half-updated in a way that
        // matters: every critical section is a single insert, remove or flag write.
        self.slab.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The in-flight tasks of the process. There is one: see [`tasks`].
#[derive(Debug)]
pub struct TaskRegistry {
    // A lock: written when a thread takes or hands back its shard, read by the admin APIs;
    // never taken on the request path (a thread keeps its shard in a thread-local).
    shards: RwLock<ShardTable>,
    // Leaked once per registry (there is one per process, plus a test's): every `TaskInfo`
    // then names its node without an allocation, which a listing of 100,000 tasks would feel.
    node: &'static str,
    /// How to turn on stack capture, when this build cannot capture (`None`: it can).
    stack_support: RwLock<Option<&'static str>>,
}

/// The index of the calling thread's task shard (taken now if it has none yet).
pub fn current_shard() -> usize {
    SHARD.with(|shard| shard.index)
}

/// The process-wide task registry.
pub fn tasks() -> &'static TaskRegistry {
    static TASKS: LazyLock<TaskRegistry> = LazyLock::new(TaskRegistry::new);
    &TASKS
}

/// Every shard, and which threads hold them.
#[derive(Debug, Default)]
struct ShardTable {
    shards: Vec<&'static Shard>,
    /// Threads holding each shard (more than one only past `MAX_SHARDS` live threads).
    holders: Vec<u32>,
    /// Shards no thread holds, for the next new thread.
    free: Vec<usize>,
    /// Where the next thread past `MAX_SHARDS` live ones joins a shard.
    next_shared: usize,
}

thread_local! {
    // Shards live as long as the process (see the module docs), so a `&'static` costs no
    // reference counting per request. Read on every registration: no destructor, so no
    // state to check beyond the lazy initialisation; `LEASE` hands the shard back.
    static SHARD: &'static Shard = {
        let shard = tasks().new_shard();
        // Fails only while the thread is exiting: the shard is then never handed back.
        let _ = LEASE.try_with(|lease| lease.0.set(Some(shard.index)));
        shard
    };
    static LEASE: Lease = const { Lease(Cell::new(None)) };
}

/// Hands the thread's shard back when the thread exits.
struct Lease(Cell<Option<usize>>);

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(index) = self.0.get() {
            tasks().release_shard(index);
        }
    }
}

/// A cancellation seen by a task's future.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Nothing happened.
    None,
    /// The task was cancelled: end it.
    Cancelled(CancelReason),
    /// A stack capture was asked: poll once in tracing mode and [`TaskHandle::send_stack`].
    Stack,
}

/// A registered task, held by its future; removes the entry when dropped.
#[derive(Debug)]
pub struct TaskHandle {
    shard: &'static Shard,
    // Both 32 bits, so that a handle is 32 bytes. A slab never holds 2^32 slots, and the
    // epoch is compared for equality only: a change is missed only if exactly a multiple of
    // 2^32 cancellations and stack requests hit the shard between two polls of the task.
    key: u32,
    seen_epoch: u32,
    /// Identifies the waker the entry holds (its data and vtable pointers), to notice a new one
    /// without a clone or a lock.
    waker_id: (usize, usize),
}

fn waker_id(waker: &Waker) -> (usize, usize) {
    (
        waker.data() as usize,
        std::ptr::from_ref(waker.vtable()) as usize,
    )
}

impl TaskHandle {
    /// Registers a task on the current thread's shard, started now.
    pub fn register(kind: TaskKind, route: TaskRoute, waker: &Waker) -> Self {
        Self::register_started(kind, route, waker, Stamp::now())
    }

    /// Registers a task on the current thread's shard, started at `started`.
    pub fn register_started(
        kind: TaskKind,
        route: TaskRoute,
        waker: &Waker,
        started: Stamp,
    ) -> Self {
        let shard = SHARD.with(|&shard| shard);
        let seen_epoch = shard.epoch.load(Ordering::Acquire);
        let entry_waker = Some(waker.clone());
        let details = Details::of(kind);
        let mut slab = shard.lock();
        let number = slab.draw(shard.index);
        let key = slab.insert(Entry {
            number,
            details,
            route,
            started,
            waker: entry_waker,
        });
        drop(slab);
        TaskHandle {
            shard,
            // Never truncated: 2^32 slots would be 512 GiB of entries.
            key: key as u32,
            seen_epoch,
            waker_id: waker_id(waker),
        }
    }

    /// What happened to the task since the last poll. Call on every poll with the poll's waker.
    #[inline]
    pub fn poll_signal(&mut self, waker: &Waker) -> Signal {
        // Acquire pairs with the Release bump in `cancel`: the flag written before is visible.
        let epoch = self.shard.epoch.load(Ordering::Acquire);
        // What `Waker::will_wake` compares, without keeping a clone here.
        let waker_changed = self.waker_id != waker_id(waker);
        if epoch == self.seen_epoch && !waker_changed {
            return Signal::None;
        }
        self.seen_epoch = epoch;
        let mut slab = self.shard.lock();
        let Some(entry) = slab.get_mut(self.key as usize) else {
            return Signal::None;
        };
        if waker_changed {
            entry.waker = Some(waker.clone());
            self.waker_id = waker_id(waker);
        }
        if let Some(reason) = entry.details.cancelled {
            Signal::Cancelled(reason)
        } else if entry.details.stack_asked {
            Signal::Stack
        } else {
            Signal::None
        }
    }

    /// Hands a captured stack to every asker waiting for it: `stack` makes each one's.
    pub fn send_stack(&self, mut stack: impl FnMut() -> Stack) {
        let senders = self.shard.lock().take_stacks(self.key as usize);
        for sender in senders {
            let _ = sender.try_send(stack());
        }
    }

    /// The task's id, `<node>:<number>`.
    pub fn id(&self) -> String {
        let number = self
            .shard
            .lock()
            .get_mut(self.key as usize)
            .map_or(0, |e| e.number);
        format!("{}:{number}", tasks().node)
    }

    /// Replaces the task's details (a request listed before its own were at hand).
    pub fn set_kind(&self, kind: TaskKind) {
        let details = Details::of(kind);
        // The old details drop after the lock is released.
        let _old = match self.shard.lock().get_mut(self.key as usize) {
            Some(entry) => std::mem::replace(&mut entry.details, details),
            None => details,
        };
    }

    /// Counts a timed poll of the task that took `nanos`; returns whether it is the task's
    /// first blocking poll (past `blocking`).
    pub fn record_poll(&self, nanos: u64, blocking: u64) -> bool {
        let mut slab = self.shard.lock();
        let stats = slab.polls.entry(self.key as usize).or_default();
        let d = Duration::from_nanos(nanos);
        stats.polls += 1;
        stats.busy += d;
        stats.longest = stats.longest.max(d);
        let first_blocking = nanos > blocking && stats.blocking == 0;
        if nanos > blocking {
            stats.blocking += 1;
        }
        first_blocking
    }

    /// The task's number.
    pub fn number(&self) -> u64 {
        self.shard
            .lock()
            .get_mut(self.key as usize)
            .map_or(0, |e| e.number)
    }

    /// Records the route of a plain actix-web request once it is known.
    pub fn set_route(&self, route: &'static DynamicRoute) {
        if let Some(entry) = self.shard.lock().get_mut(self.key as usize) {
            // An admitted request stays so: it is counted in its route's statistics.
            if !matches!(entry.route, TaskRoute::Admitted(_)) {
                entry.route = TaskRoute::Plain(Some(route));
            }
        }
    }
}

impl Drop for TaskHandle {
    fn drop(&mut self) {
        // The rest of the entry drops under the lock (plain data, and `http` types); the waker
        // after it is released.
        let waker = self.shard.lock().remove(self.key as usize);
        drop(waker);
    }
}

/// A task as the admin APIs show it.
#[derive(Debug, Clone)]
pub struct TaskInfo {
    /// The node id.
    pub node: &'static str,
    /// The task number (unique in the process).
    pub number: u64,
    /// The worker shard running it.
    pub worker: usize,
    /// What it is.
    pub kind: TaskKind,
    /// Its route.
    pub route: TaskRoute,
    /// When it started.
    pub start_time: SystemTime,
    /// How long it has run.
    pub running_time: Duration,
    /// Whether a cancellation was asked.
    pub cancelled: bool,
    /// Its timed polls (`None` while poll timing is off or none was timed).
    pub polls: Option<PollStats>,
}

impl TaskInfo {
    /// `<node>:<number>`.
    pub fn id(&self) -> String {
        format!("{}:{}", self.node, self.number)
    }

    /// Milliseconds since the epoch at start.
    pub fn start_millis(&self) -> u64 {
        self.start_time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// The few figures of a task that selecting and summarizing read: a scan of 100,000 tasks
/// copies these, not their request's details (see [`TaskRegistry::briefs`]).
#[derive(Debug, Clone)]
pub struct TaskBrief {
    /// The task number.
    pub number: u64,
    /// The worker shard running it.
    pub worker: usize,
    /// Its route.
    pub route: TaskRoute,
    /// A request's method and URI, only while its route is unknown
    /// ([`TaskRoute::Plain`]`(None)`: its path tells the route). Boxed: most tasks have
    /// none, and a scan copies every brief.
    pub unrouted: Option<Box<(http::Method, http::Uri)>>,
    /// Whether it is a request (else a background task).
    pub is_request: bool,
    /// When it started.
    pub start_time: SystemTime,
    /// How long it has run.
    pub running_time: Duration,
    /// Whether a cancellation was asked.
    pub cancelled: bool,
}

/// What [`TaskRegistry::cancel`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The task was cancelled now.
    Cancelled,
    /// It had been cancelled already (and is still winding down).
    AlreadyCancelled,
    /// No such task (finished, or never existed).
    NotFound,
}

impl TaskRegistry {
    fn new() -> Self {
        Self {
            shards: RwLock::new(ShardTable::default()),
            node: Box::leak(node_name().into_boxed_str()),
            stack_support: RwLock::new(Some(
                "print_stack needs underscore-actix's `taskdump` feature and a build with \
                 RUSTFLAGS=\"--cfg tokio_unstable\" (see docs/tasks.md)",
            )),
        }
    }

    /// Declares that request futures can capture their stack (the middleware's build can).
    pub fn enable_stacks(&self) {
        *self
            .stack_support
            .write()
            .unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// `Err(how to enable it)` when this build cannot capture stacks.
    pub fn stacks_supported(&self) -> Result<(), &'static str> {
        match *self.stack_support.read().unwrap_or_else(|e| e.into_inner()) {
            None => Ok(()),
            Some(how) => Err(how),
        }
    }

    /// A shard for a new thread: one an exited thread handed back, else a new one, else
    /// (past `MAX_SHARDS` live threads) a shared one, round-robin.
    fn new_shard(&self) -> &'static Shard {
        let mut table = self.shards.write().unwrap_or_else(|e| e.into_inner());
        let index = if let Some(index) = table.free.pop() {
            index
        } else if table.shards.len() < MAX_SHARDS {
            let index = table.shards.len();
            table.shards.push(Box::leak(Box::new(Shard {
                index,
                epoch: AtomicU32::new(0),
                slab: Mutex::new(Slab::default()),
            })));
            table.holders.push(0);
            index
        } else {
            // Task numbers stay unique: the sharers draw them from the shard's one counter.
            let index = table.next_shared;
            table.next_shared = (index + 1) % MAX_SHARDS;
            index
        };
        table.holders[index] += 1;
        table.shards[index]
    }

    /// A thread holding shard `index` exited.
    fn release_shard(&self, index: usize) {
        let mut table = self.shards.write().unwrap_or_else(|e| e.into_inner());
        table.holders[index] -= 1;
        if table.holders[index] == 0 {
            table.free.push(index);
        }
    }

    /// This process's node id, the prefix of every task id.
    pub fn node(&self) -> &'static str {
        self.node
    }

    /// The number of tasks registered now.
    pub fn len(&self) -> usize {
        self.all_shards().iter().map(|s| s.lock().len).sum()
    }

    /// Whether no task is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn all_shards(&self) -> Vec<&'static Shard> {
        self.shards
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .shards
            .clone()
    }

    /// Every task, ordered by start time.
    pub fn snapshot(&self) -> Vec<TaskInfo> {
        let mut out = self.snapshot_unordered();
        out.sort_by_key(|t| (t.start_time, t.number));
        out
    }

    /// Every task, shard by shard: for callers that order (or count) them their own way, and
    /// need not pay for a sort of every task first.
    pub fn snapshot_unordered(&self) -> Vec<TaskInfo> {
        self.each_entry(|shard, entry, polls, now| self.info(shard, entry, polls, now))
    }

    /// `read` of every task, shard by shard, at one instant `now`. Each shard is locked for
    /// [`CHUNK`] slots at a time, never for all of them: its worker registers and removes
    /// tasks under that lock, and must not wait for a copy of 100,000. A task that starts
    /// or ends meanwhile may be listed or not, as with any listing of a moving set.
    fn each_entry<T>(
        &self,
        mut read: impl FnMut(&Shard, &mut Entry, Option<PollStats>, (Stamp, SystemTime)) -> T,
    ) -> Vec<T> {
        let now = (Stamp::now(), SystemTime::now());
        let mut out = Vec::new();
        for shard in self.all_shards() {
            let mut start = 0;
            loop {
                let mut guard = shard.lock();
                let slab: &mut Slab = &mut guard;
                if start == 0 {
                    out.reserve(slab.len);
                }
                let end = slab.slots.len().min(start + CHUNK);
                let first = start.min(end);
                for (i, slot) in slab.slots[first..end].iter_mut().enumerate() {
                    if let Slot::Used(entry) = slot {
                        let polls = if slab.polls.is_empty() {
                            None
                        } else {
                            slab.polls.get(&(first + i)).copied()
                        };
                        out.push(read(shard, entry, polls, now));
                    }
                }
                if end >= slab.slots.len() {
                    break;
                }
                start = end;
            }
        }
        out
    }

    /// Every task's [`TaskBrief`], shard by shard.
    pub fn briefs(&self) -> Vec<TaskBrief> {
        self.each_entry(|shard, entry, _, now| {
            let running_time = entry.started.until(now.0);
            let is_request = entry.details.is_request();
            let unrouted = match entry.route {
                TaskRoute::Plain(None) => entry.details.method_and_uri().map(Box::new),
                _ => None,
            };
            TaskBrief {
                number: entry.number,
                worker: shard.index,
                route: entry.route.clone(),
                unrouted,
                is_request,
                // As `info` computes it, so both order tasks alike.
                start_time: now.1.checked_sub(running_time).unwrap_or(now.1),
                running_time,
                cancelled: entry.details.cancelled.is_some(),
            }
        })
    }

    /// The tasks of `numbers` still running, each shard searched once. Meant for a few
    /// (a page of rows): each task of a shard searched is looked up among them by a binary
    /// search, cheaper than hashing its number when they are few.
    pub fn get_many(&self, numbers: &[u64]) -> Vec<TaskInfo> {
        let now = (Stamp::now(), SystemTime::now());
        let mut wanted = numbers.to_vec();
        wanted.sort_unstable();
        let mut out = Vec::with_capacity(numbers.len());
        for shard in self.all_shards() {
            let index = shard.index as u64;
            if !numbers.iter().any(|n| n & (MAX_SHARDS as u64 - 1) == index) {
                continue;
            }
            let slab = shard.lock();
            for (key, slot) in slab.slots.iter().enumerate() {
                if let Slot::Used(entry) = slot {
                    if wanted.binary_search(&entry.number).is_ok() {
                        let polls = slab.polls.get(&key).copied();
                        out.push(self.info(shard, entry, polls, now));
                    }
                }
            }
        }
        out
    }

    /// What the APIs show of `entry`, at `now` (on the request clock, and on the wall clock).
    fn info(
        &self,
        shard: &Shard,
        entry: &Entry,
        polls: Option<PollStats>,
        now: (Stamp, SystemTime),
    ) -> TaskInfo {
        // The start is the wall clock now less the running time, read on the request clock:
        // any error of the request clock's calibration then scales with the task's age, not
        // with the process's uptime.
        let running_time = entry.started.until(now.0);
        TaskInfo {
            node: self.node,
            number: entry.number,
            worker: shard.index,
            kind: entry.details.kind(),
            route: entry.route.clone(),
            start_time: now.1.checked_sub(running_time).unwrap_or(now.1),
            running_time,
            cancelled: entry.details.cancelled.is_some(),
            polls,
        }
    }

    /// Parses `<node>:<number>`: `Ok(None)` for another node's id.
    ///
    /// # Errors
    ///
    /// A message for a malformed id.
    pub fn parse_id(&self, id: &str) -> Result<Option<u64>, String> {
        let Some((node, number)) = id.rsplit_once(':') else {
            return Err(format!("malformed task id {id}"));
        };
        let number: u64 = number
            .parse()
            .map_err(|_| format!("malformed task id {id}"))?;
        Ok((node == self.node).then_some(number))
    }

    fn with_entry<R>(&self, number: u64, f: impl FnOnce(&Shard, &mut Entry) -> R) -> Option<R> {
        self.with_slot(number, |shard, slab, key| {
            f(
                shard,
                slab.get_mut(key).expect("with_slot gives a used slot"),
            )
        })
    }

    /// `f` of the shard, slab and slot of task `number`, under the shard's lock.
    fn with_slot<R>(
        &self,
        number: u64,
        f: impl FnOnce(&Shard, &mut Slab, usize) -> R,
    ) -> Option<R> {
        let index = (number & (MAX_SHARDS as u64 - 1)) as usize;
        let shards = self.all_shards();
        let shard = shards.iter().find(|s| s.index == index)?;
        let mut slab = shard.lock();
        let key = slab
            .slots
            .iter()
            .position(|slot| matches!(slot, Slot::Used(e) if e.number == number))?;
        Some(f(shard, &mut slab, key))
    }

    /// Cancels one task (`POST /_tasks/{id}/_cancel`).
    pub fn cancel(&self, number: u64) -> CancelOutcome {
        self.cancel_as(number, CancelReason::Cancel)
    }

    /// Cancels one task, for `reason`.
    pub fn cancel_as(&self, number: u64, reason: CancelReason) -> CancelOutcome {
        let waker = self.with_entry(number, |shard, entry| {
            if entry.details.cancelled.is_some() {
                return Err(());
            }
            entry.details.cancelled = Some(reason);
            // Release: the flag above is visible to whoever sees the new epoch.
            shard.epoch.fetch_add(1, Ordering::Release);
            Ok(entry.waker.clone())
        });
        match waker {
            None => CancelOutcome::NotFound,
            Some(Err(())) => CancelOutcome::AlreadyCancelled,
            Some(Ok(waker)) => {
                // Woken outside the lock: the task may run at once on its own thread.
                if let Some(waker) = waker {
                    waker.wake();
                }
                CancelOutcome::Cancelled
            }
        }
    }

    /// Cancels every task of `numbers` not cancelled yet, for `reason`, and returns the
    /// numbers cancelled now. One pass over each shard, where [`cancel_as`](Self::cancel_as)
    /// on each task would search its shard once per task: an interrupt of 100,000 waiting
    /// requests is then a fraction of a second, not minutes. Linear in the tasks, and never
    /// a long lock: a shard is locked for 1,024 slots at a time, and the tasks flagged
    /// are woken with the lock released, so the shard's worker goes on serving (and the
    /// tasks woken end) while the rest of its shard is cancelled.
    pub fn cancel_many(
        &self,
        numbers: &std::collections::HashSet<u64>,
        reason: CancelReason,
    ) -> Vec<u64> {
        let mut cancelled = Vec::new();
        let mut wakers = Vec::with_capacity(CHUNK);
        for shard in self.all_shards() {
            let mut start = 0;
            loop {
                let mut slab = shard.lock();
                let before = cancelled.len();
                let end = slab.slots.len().min(start + CHUNK);
                for slot in &mut slab.slots[start.min(end)..end] {
                    let Slot::Used(entry) = slot else { continue };
                    if entry.details.cancelled.is_none() && numbers.contains(&entry.number) {
                        entry.details.cancelled = Some(reason);
                        cancelled.push(entry.number);
                        wakers.extend(entry.waker.clone());
                    }
                }
                if cancelled.len() > before {
                    // Release: the flags above are visible to whoever sees the new epoch.
                    shard.epoch.fetch_add(1, Ordering::Release);
                }
                let done = end >= slab.slots.len();
                drop(slab);
                // Woken outside the lock: each task may run at once on its own thread, and
                // takes this lock at its next poll.
                for waker in wakers.drain(..) {
                    waker.wake();
                }
                if done {
                    break;
                }
                start = end;
            }
        }
        cancelled
    }

    /// Asks a task for its stack: the task's next poll captures it and sends it back, to
    /// every asker waiting then (a slow-log report asked while the task is not polled does not
    /// take the previous one's place). Returns `None` if there is no such task.
    pub fn request_stack(&self, number: u64) -> Option<std::sync::mpsc::Receiver<Stack>> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let waker = self.with_slot(number, |shard, slab, key| {
            if slab.stacks.iter().filter(|(k, _)| *k == key).count() >= STACK_ASKERS {
                // The oldest gives way: its asker sees its channel closed.
                let at = slab.stacks.iter().position(|(k, _)| *k == key);
                slab.stacks.remove(at.expect("counted above"));
            }
            slab.stacks.push((key, tx));
            let entry = slab.get_mut(key).expect("with_slot gives a used slot");
            entry.details.stack_asked = true;
            shard.epoch.fetch_add(1, Ordering::Release);
            entry.waker.clone()
        })?;
        if let Some(waker) = waker {
            waker.wake();
        }
        Some(rx)
    }

    /// How many tasks shard `index` holds.
    pub fn shard_len(&self, index: usize) -> usize {
        self.all_shards()
            .iter()
            .find(|s| s.index == index)
            .map_or(0, |s| s.lock().len)
    }

    /// One task's details.
    pub fn get(&self, number: u64) -> Option<TaskInfo> {
        let now = (Stamp::now(), SystemTime::now());
        self.with_slot(number, |shard, slab, key| {
            let polls = slab.polls.get(&key).copied();
            let entry = slab.get_mut(key).expect("with_slot gives a used slot");
            self.info(shard, entry, polls, now)
        })
    }
}

/// The bytes one in-flight task takes in its shard: its slot (the target and waker it holds
/// are shared with actix, not copied; see `Entry`).
pub const fn entry_size() -> usize {
    std::mem::size_of::<Slot>()
}

/// The node id: the host name, reduced to characters that need no escaping in a URL.
fn node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let name: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "node".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::atomic::AtomicBool;
    use std::task::Wake;

    struct Flag(AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn background(name: &str) -> TaskKind {
        TaskKind::Background { name: name.into() }
    }

    #[test]
    fn slab_reuses_slots() {
        let mut slab = Slab::default();
        let entry = |n| Entry {
            number: n,
            details: Details::of(background("x")),
            route: TaskRoute::None,
            started: Stamp::now(),
            waker: None,
        };
        let a = slab.insert(entry(1));
        let b = slab.insert(entry(2));
        assert_eq!(slab.get_mut(a).unwrap().number, 1);
        let waker = Waker::from(Arc::new(Flag(AtomicBool::new(false))));
        slab.get_mut(a).unwrap().waker = Some(waker.clone());
        let handed_back = slab.remove(a).expect("a used slot is removed");
        assert!(
            handed_back.is_some_and(|w| w.will_wake(&waker)),
            "its waker is handed back"
        );
        assert!(slab.get_mut(a).is_none(), "a removed entry is gone");
        assert!(slab.remove(a).is_none(), "a second remove is a no-op");
        let c = slab.insert(entry(3));
        assert_eq!(c, a);
        assert_eq!(slab.len, 2);
        assert_eq!(slab.get_mut(b).unwrap().number, 2);
    }

    #[test]
    fn register_list_cancel_and_drop() {
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        let mut handle =
            TaskHandle::register(background("unit-test-task"), TaskRoute::None, &waker);
        let id = handle.id();
        let number = tasks().parse_id(&id).unwrap().unwrap();
        let info = tasks().get(number).unwrap();
        assert!(
            matches!(info.kind, TaskKind::Background { ref name } if &**name == "unit-test-task")
        );
        assert!(!info.cancelled);
        assert_eq!(handle.poll_signal(&waker), Signal::None);

        assert_eq!(tasks().cancel(number), CancelOutcome::Cancelled);
        assert!(flag.0.load(Ordering::SeqCst), "the task was woken");
        assert_eq!(tasks().cancel(number), CancelOutcome::AlreadyCancelled);
        assert_eq!(
            handle.poll_signal(&waker),
            Signal::Cancelled(CancelReason::Cancel)
        );
        assert!(tasks().get(number).unwrap().cancelled);

        drop(handle);
        assert!(tasks().get(number).is_none());
        assert_eq!(tasks().cancel(number), CancelOutcome::NotFound);
    }

    #[test]
    fn cancel_many_cancels_the_numbers_given_once() {
        let flags: Vec<Arc<Flag>> = (0..3)
            .map(|_| Arc::new(Flag(AtomicBool::new(false))))
            .collect();
        let wakers: Vec<Waker> = flags.iter().map(|f| Waker::from(f.clone())).collect();
        let mut handles: Vec<TaskHandle> = wakers
            .iter()
            .map(|w| TaskHandle::register(background("many"), TaskRoute::None, w))
            .collect();
        let numbers: Vec<u64> = handles
            .iter()
            .map(|h| tasks().parse_id(&h.id()).unwrap().unwrap())
            .collect();
        let asked: HashSet<u64> = [numbers[0], numbers[2], u64::MAX].into();
        let mut done = tasks().cancel_many(&asked, CancelReason::Interrupt);
        done.sort_unstable();
        let mut want = vec![numbers[0], numbers[2]];
        want.sort_unstable();
        assert_eq!(done, want);
        assert!(flags[0].0.load(Ordering::SeqCst) && flags[2].0.load(Ordering::SeqCst));
        assert!(!flags[1].0.load(Ordering::SeqCst), "task 1 was not asked");
        assert_eq!(
            handles[0].poll_signal(&wakers[0]),
            Signal::Cancelled(CancelReason::Interrupt)
        );
        assert_eq!(handles[1].poll_signal(&wakers[1]), Signal::None);
        assert!(
            tasks()
                .cancel_many(&asked, CancelReason::Interrupt)
                .is_empty(),
            "a cancelled task is not cancelled twice"
        );
    }

    #[test]
    fn task_ids() {
        let reg = tasks();
        let node = reg.node().to_owned();
        assert_eq!(reg.parse_id(&format!("{node}:42")), Ok(Some(42)));
        assert_eq!(reg.parse_id("elsewhere:42"), Ok(None));
        assert!(reg.parse_id("42").is_err());
        assert!(reg.parse_id(&format!("{node}:x")).is_err());
        assert!(node
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }

    #[test]
    fn threads_past_the_shard_limit_are_spread_over_the_shards() {
        // A registry of its own: the process-wide one already has shards of other tests.
        // Threads that all stay alive: none hands its shard back.
        let reg = TaskRegistry::new();
        let mut sharing = vec![0; MAX_SHARDS];
        for _ in 0..MAX_SHARDS + 100 {
            sharing[reg.new_shard().index] += 1;
        }
        assert!(
            sharing.iter().all(|&n| n == 1 || n == 2),
            "live threads past the limit pile up: {} on shard 0",
            sharing[0]
        );
    }

    #[test]
    fn threads_that_exit_hand_their_shard_on() {
        // More threads than shards, one after the other, each leaving its task behind.
        let handles: Vec<(TaskHandle, usize)> = (0..MAX_SHARDS + 100)
            .map(|i| {
                std::thread::spawn(move || {
                    let waker = Waker::from(Arc::new(Flag(AtomicBool::new(false))));
                    let handle = TaskHandle::register(
                        background(&format!("short-lived {i}")),
                        TaskRoute::None,
                        &waker,
                    );
                    let worker = SHARD.with(|shard| shard.index);
                    (handle, worker)
                })
                .join()
                .unwrap()
            })
            .collect();
        let numbers: HashSet<u64> = handles
            .iter()
            .map(|(h, _)| tasks().parse_id(&h.id()).unwrap().unwrap())
            .collect();
        assert_eq!(
            numbers.len(),
            handles.len(),
            "a task number was drawn twice"
        );
        for (i, number) in numbers.iter().enumerate() {
            let info = tasks().get(*number).expect("a task outlives its thread");
            assert!(matches!(info.kind, TaskKind::Background { .. }), "{i}");
        }
        let used: HashSet<usize> = handles.iter().map(|&(_, w)| w).collect();
        // Other tests run threads of their own meanwhile: a few shards, not one per thread.
        assert!(
            used.len() < 64,
            "{} shards for threads that ran one at a time",
            used.len()
        );
    }

    #[test]
    fn stack_requests_reach_the_task() {
        let waker = Waker::from(Arc::new(Flag(AtomicBool::new(false))));
        let mut handle = TaskHandle::register(background("stack"), TaskRoute::None, &waker);
        let number = tasks().parse_id(&handle.id()).unwrap().unwrap();
        let rx = tasks().request_stack(number).unwrap();
        assert_eq!(handle.poll_signal(&waker), Signal::Stack);
        handle.send_stack(|| Box::new(|| "frame 0".to_owned()));
        assert_eq!(rx.recv().unwrap()(), "frame 0");
        assert_eq!(handle.poll_signal(&waker), Signal::None);
    }

    #[test]
    fn a_stack_asked_of_a_task_that_ends_is_never_sent() {
        let waker = Waker::from(Arc::new(Flag(AtomicBool::new(false))));
        let handle = TaskHandle::register(background("ends"), TaskRoute::None, &waker);
        let number = tasks().parse_id(&handle.id()).unwrap().unwrap();
        let rx = tasks().request_stack(number).unwrap();
        drop(handle);
        assert!(rx.recv().is_err(), "the asker sees the channel closed");
    }

    #[test]
    fn every_asker_waiting_gets_the_stack() {
        let waker = Waker::from(Arc::new(Flag(AtomicBool::new(false))));
        let mut handle = TaskHandle::register(background("twice"), TaskRoute::None, &waker);
        let number = tasks().parse_id(&handle.id()).unwrap().unwrap();
        // Asked twice before the task's next poll (a report, then the next one).
        let first = tasks().request_stack(number).unwrap();
        let second = tasks().request_stack(number).unwrap();
        assert_eq!(handle.poll_signal(&waker), Signal::Stack);
        handle.send_stack(|| Box::new(|| "frame 1".to_owned()));
        assert_eq!(first.recv().unwrap()(), "frame 1");
        assert_eq!(second.recv().unwrap()(), "frame 1");
        // Asked again: the next capture.
        let third = tasks().request_stack(number).unwrap();
        assert_eq!(handle.poll_signal(&waker), Signal::Stack);
        handle.send_stack(|| Box::new(|| "frame 2".to_owned()));
        assert_eq!(third.recv().unwrap()(), "frame 2");
        assert_eq!(handle.poll_signal(&waker), Signal::None);
    }

    #[test]
    fn past_8_askers_the_oldest_gives_way() {
        let waker = Waker::from(Arc::new(Flag(AtomicBool::new(false))));
        let mut handle = TaskHandle::register(background("many"), TaskRoute::None, &waker);
        let number = tasks().parse_id(&handle.id()).unwrap().unwrap();
        let askers: Vec<_> = (0..STACK_ASKERS + 1)
            .map(|_| tasks().request_stack(number).unwrap())
            .collect();
        assert!(askers[0].recv().is_err(), "the oldest is told no");
        assert_eq!(handle.poll_signal(&waker), Signal::Stack);
        handle.send_stack(|| Box::new(|| "frame".to_owned()));
        for asker in &askers[1..] {
            assert_eq!(asker.recv().unwrap()(), "frame");
        }
    }

    #[test]
    fn each_waiting_task_takes_128_bytes_in_its_shard() {
        // What a waiting request costs the registry (issue 26's budget: under 300 bytes in
        // all over plain actix-web). A change that grows it must say why, here.
        assert_eq!(entry_size(), 128);
    }
}
