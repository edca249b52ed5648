//! The app's one job registry: every long piece of work runs here, on a named
//! thread (a `poll_promise::Promise`), with a bounded channel for its progress
//! messages and a stop flag. A job is known by its name: starting one whose
//! name is running is refused, and the app is busy while any job runs.
//!
//! Jobs are started and stopped through commands (`tabs::Command`); the tabs read
//! what their jobs sent with [`Jobs::poll`] and a typed [`JobKey`].

use std::any::Any;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::sync::Arc;

use eframe::egui;
use poll_promise::Promise;

/// Progress messages a job may have in flight before its sends wait for the UI.
const QUEUE: usize = 256;

/// A job that ended without its result: it panicked (the panic also went to
/// stderr). Holds the panic's message.
#[derive(Debug)]
pub struct Crashed(pub String);

impl std::fmt::Display for Crashed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stopped unexpectedly: {}", self.0)
    }
}

impl Crashed {
    fn from_panic(payload: &(dyn Any + Send)) -> Crashed {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "an internal error".into());
        // One line: the first, which names the fault.
        Crashed(msg.lines().next().unwrap_or_default().trim().to_string())
    }
}

/// How a job sends progress messages to the UI (which repaints for each).
pub struct Reporter<P> {
    tx: SyncSender<P>,
    ctx: egui::Context,
}

impl<P> Clone for Reporter<P> {
    fn clone(&self) -> Self {
        Reporter { tx: self.tx.clone(), ctx: self.ctx.clone() }
    }
}

impl<P: Send> Reporter<P> {
    /// Sends `m`, waiting while the queue is full.
    pub fn send(&self, m: P) {
        let _ = self.tx.send(m);
        self.ctx.request_repaint();
    }

    /// Sends `m` unless the queue is full (for readings where only the latest matters).
    pub fn offer(&self, m: P) {
        if self.tx.try_send(m).is_ok() {
            self.ctx.request_repaint();
        }
    }
}

/// The name of a job whose progress messages are `P` and whose result is `R`.
pub struct JobKey<P, R> {
    name: String,
    /// Counted in [`Jobs::busy`] (a video player's decoding is not).
    busy: bool,
    _types: PhantomData<fn(P) -> R>,
}

impl<P, R> Clone for JobKey<P, R> {
    fn clone(&self) -> Self {
        JobKey { name: self.name.clone(), busy: self.busy, _types: PhantomData }
    }
}

/// A job ready to start: what [`JobKey::start`] makes and [`Jobs::start`] runs.
pub struct Start {
    name: String,
    spawn: Box<dyn FnOnce(&egui::Context) -> Running + Send>,
}

impl Start {
    /// The job's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

struct Running {
    promise: Promise<Result<Box<dyn Any + Send>, Crashed>>,
    /// A `Receiver<P>` for the job's `P`.
    messages: Box<dyn Any + Send>,
    cancel: Arc<AtomicBool>,
    busy: bool,
    ctx: egui::Context,
}

impl<P: Send + 'static, R: Send + 'static> JobKey<P, R> {
    /// A job named `name` (also its thread's name).
    pub fn new(name: impl Into<String>) -> Self {
        JobKey { name: name.into(), busy: true, _types: PhantomData }
    }

    /// A job that runs in the background without making the app busy.
    pub fn quiet(name: impl Into<String>) -> Self {
        JobKey { busy: false, ..JobKey::new(name) }
    }

    /// The job's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The job `work`: it reports through the [`Reporter`] and should stop soon
    /// after the flag is set; what it returns is the job's result.
    pub fn start(&self, work: impl FnOnce(&Reporter<P>, &AtomicBool) -> R + Send + 'static) -> Start {
        let thread = self.name.clone();
        let busy = self.busy;
        Start {
            name: self.name.clone(),
            spawn: Box::new(move |ctx: &egui::Context| {
                let (tx, rx) = std::sync::mpsc::sync_channel::<P>(QUEUE);
                let cancel = Arc::new(AtomicBool::new(false));
                let reporter = Reporter { tx, ctx: ctx.clone() };
                let (stop, repaint) = (cancel.clone(), ctx.clone());
                let promise = Promise::spawn_thread(thread, move || {
                    yield_to_the_window();
                    let out = std::panic::catch_unwind(AssertUnwindSafe(|| work(&reporter, &stop)));
                    // The channel closes here: see the repaint in `Jobs::poll`.
                    drop(reporter);
                    crate::backend::release_memory();
                    repaint.request_repaint_after(std::time::Duration::from_millis(10));
                    out.map(|r| Box::new(r) as Box<dyn Any + Send>).map_err(|p| Crashed::from_panic(&*p))
                });
                Running { promise, messages: Box::new(rx), cancel, busy, ctx: ctx.clone() }
            }),
        }
    }
}

/// Lowers the calling job thread's CPU priority (nice 10; the threads it
/// starts inherit it), so that on a busy machine the window's thread, which
/// lays out and submits every frame, gets the cores first. A job loses
/// nothing on an idle machine.
fn yield_to_the_window() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority take plain integers; on Linux a thread id
    // names that one thread for setpriority.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

/// What [`Jobs::poll`] found: the messages since the last poll and, once, the result.
pub struct Polled<P, R> {
    /// Progress messages, in order.
    pub messages: Vec<P>,
    /// The result, when the job has ended (it is then gone from the registry).
    pub end: Option<Result<R, Crashed>>,
}

/// The running jobs, by name.
#[derive(Default)]
pub struct Jobs {
    running: HashMap<String, Running>,
}

impl Jobs {
    /// Starts `job` on its own thread; refused while a job of that name runs.
    pub fn start(&mut self, ctx: &egui::Context, job: Start) -> Result<(), String> {
        if self.running.contains_key(&job.name) {
            return Err(format!("the job {} is running already", job.name));
        }
        let running = (job.spawn)(ctx);
        self.running.insert(job.name, running);
        Ok(())
    }

    /// Asks the job `name` to stop; it stays here until it has.
    pub fn stop(&self, name: &str) {
        if let Some(j) = self.running.get(name) {
            j.cancel.store(true, Ordering::SeqCst);
        }
    }

    /// Asks the job `name` to stop and forgets it: what it still sends is dropped.
    pub fn abandon(&mut self, name: &str) {
        if let Some(j) = self.running.remove(name) {
            j.cancel.store(true, Ordering::SeqCst);
        }
    }

    /// Whether the job `key` names runs.
    pub fn is_running<P, R>(&self, key: &JobKey<P, R>) -> bool {
        self.running.contains_key(&key.name)
    }

    /// Whether any job runs (quiet ones aside).
    pub fn busy(&self) -> bool {
        self.running.values().any(|j| j.busy)
    }

    /// Takes what the job `key` sent since the last call and, when it has ended, its result.
    pub fn poll<P: 'static, R: 'static>(&mut self, key: &JobKey<P, R>) -> Polled<P, R> {
        let mut polled = Polled { messages: Vec::new(), end: None };
        let Some(job) = self.running.get_mut(&key.name) else { return polled };
        // Checked first: every message sent before the end is in the channel then.
        let ended = job.promise.ready().is_some();
        if let Some(rx) = job.messages.downcast_ref::<Receiver<P>>() {
            loop {
                match rx.try_recv() {
                    Ok(m) => polled.messages.push(m),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        // The work is over and its result is on the way: look again soon.
                        if !ended {
                            job.ctx.request_repaint();
                        }
                        break;
                    }
                }
            }
        }
        if !polled.messages.is_empty() || ended {
            // What came changes what the next frame shows.
            job.ctx.request_repaint();
        }
        if ended {
            if let Some(job) = self.running.remove(&key.name) {
                polled.end = Some(match job.promise.try_take() {
                    Ok(Ok(any)) => {
                        any.downcast::<R>().map(|r| *r).map_err(|_| Crashed("a result of the wrong type".into()))
                    }
                    Ok(Err(c)) => Err(c),
                    Err(_) => Err(Crashed("its result was taken already".into())),
                });
            }
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Polls `key` until its job ends: the messages, and the result.
    fn wait<P: 'static, R: 'static>(jobs: &mut Jobs, key: &JobKey<P, R>) -> (Vec<P>, Result<R, Crashed>) {
        let (mut messages, t) = (Vec::new(), Instant::now());
        loop {
            let polled = jobs.poll(key);
            messages.extend(polled.messages);
            if let Some(end) = polled.end {
                return (messages, end);
            }
            assert!(t.elapsed() < Duration::from_secs(10), "the job did not end");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn a_job_reports_on_its_named_thread_and_refuses_a_twin() {
        let (ctx, mut jobs) = (egui::Context::default(), Jobs::default());
        let key: JobKey<u32, String> = JobKey::new("vidi-test-job");
        let (go, wait_go) = std::sync::mpsc::sync_channel::<()>(1);
        let job = key.start(move |report, _| {
            report.send(1);
            report.send(2);
            let _ = wait_go.recv();
            std::thread::current().name().unwrap_or_default().to_string()
        });
        jobs.start(&ctx, job).unwrap();
        assert!(jobs.busy() && jobs.is_running(&key));
        assert!(jobs.start(&ctx, key.start(|_, _| String::new())).is_err(), "a second job of that name");
        go.send(()).unwrap();
        let (messages, end) = wait(&mut jobs, &key);
        assert_eq!(messages, [1, 2]);
        assert_eq!(end.unwrap(), "vidi-test-job");
        assert!(!jobs.busy() && !jobs.is_running(&key));
    }

    #[test]
    fn stop_sets_the_flag_and_a_quiet_job_is_not_busy() {
        let (ctx, mut jobs) = (egui::Context::default(), Jobs::default());
        let key: JobKey<(), bool> = JobKey::quiet("vidi-test-quiet");
        jobs.start(
            &ctx,
            key.start(|_, cancel| {
                while !cancel.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                true
            }),
        )
        .unwrap();
        assert!(jobs.is_running(&key) && !jobs.busy());
        jobs.stop(key.name());
        assert!(wait(&mut jobs, &key).1.unwrap());
    }

    #[test]
    fn a_job_that_panics_ends_crashed() {
        let (ctx, mut jobs) = (egui::Context::default(), Jobs::default());
        let key: JobKey<(), ()> = JobKey::new("vidi-test-panic");
        jobs.start(&ctx, key.start(|_, _| panic!("on purpose {}", 7))).unwrap();
        let crashed = wait(&mut jobs, &key).1.unwrap_err();
        assert_eq!(crashed.to_string(), "stopped unexpectedly: on purpose 7");
        // The name is free again.
        jobs.start(&ctx, key.start(|_, _| ())).unwrap();
        assert!(wait(&mut jobs, &key).1.is_ok());
    }
}
