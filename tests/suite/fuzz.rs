//! Fuzzing the parsers of the files people hand to vidi: `config.json`,
//! `preprocessor_config.json`, safetensors (single and sharded), pickle
//! checkpoints (`pytorch_model.bin`), dataset folder listings, and video files
//! through FFmpeg.
//!
//! Each test replays its committed corpus (`tests/fuzz/<target>/`: the seeds
//! `tests/fuzz/make_seeds.py` derives from the fixtures, and regression inputs),
//! then runs a seeded, deterministic mutation fuzzer for a fixed number of
//! inputs. Every input must end in `Ok`, with the invariants checked here, or
//! in a clean `Err`: no panic, no input running past [`PER_INPUT`], and no
//! input holding more than [`INPUT_BYTES`] at once (the allocator below refuses
//! more, on the fuzzing thread only). A failing input is saved under
//! `$TMPDIR/vidi-fuzz-failures/<target>/`, and the failure names the file.
//!
//! This file holds the harness and the generic mutations; the targets are in
//! `fuzz/checkpoints.rs` (configs, safetensors, pickle) and `fuzz/media.rs`
//! (dataset folders, videos).
//!
//! `VIDI_FUZZ_ITERS=n` runs n mutations per target instead of the default,
//! `VIDI_FUZZ_SECS=s` runs each target for s seconds (capped by
//! `VIDI_FUZZ_ITERS` when both are set), and `VIDI_FUZZ_SEED=x` picks another
//! seed.

use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod checkpoints;
mod media;

/// The longest one input may take. Debug builds on a loaded machine are slow;
/// what this catches is an input that never finishes.
const PER_INPUT: Duration = Duration::from_secs(20);

/// The most memory one input may hold at once on the fuzzing thread. The
/// inputs are a few KB and the models they load tiny: anything near this is
/// a size read from the input and trusted.
const INPUT_BYTES: usize = 512 << 20;

/// The default seed of the mutations.
const SEED: u64 = 0x5eed_f0a2_2024_0001;

/// Mutated inputs are cut to this size.
const MAX_INPUT: usize = 1 << 20;

#[global_allocator]
static ALLOCATOR: cap::Capped = cap::Capped;

/// An allocator that passes everything to the system's, except that a thread
/// can limit how much it holds: a request past the limit is refused (null),
/// noted and announced on stderr. A fallible allocation then fails the input;
/// an infallible one aborts the test process, after that message.
mod cap {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    /// See the module.
    pub struct Capped;

    thread_local! {
        static LIMIT: Cell<usize> = const { Cell::new(usize::MAX) };
        static LIVE: Cell<usize> = const { Cell::new(0) };
        static REFUSED: Cell<usize> = const { Cell::new(0) };
        static NOTE: Cell<(*const u8, usize)> = const { Cell::new((std::ptr::null(), 0)) };
    }

    /// Writes `bytes` to stderr without allocating.
    fn say(bytes: &[u8]) {
        // SAFETY: a valid buffer of that length; stderr is fd 2.
        unsafe {
            libc::write(2, bytes.as_ptr().cast(), bytes.len());
        }
    }

    fn say_number(mut n: usize) {
        let mut buf = [0u8; 20];
        let mut i = buf.len();
        loop {
            i -= 1;
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        say(&buf[i..]);
    }

    /// Counts `bytes` against the thread's limit; false when they do not fit.
    fn charge(bytes: usize) -> bool {
        let limit = LIMIT.try_with(Cell::get).unwrap_or(usize::MAX);
        if limit == usize::MAX {
            return true;
        }
        let live = LIVE.try_with(Cell::get).unwrap_or(0);
        if bytes > limit.saturating_sub(live) {
            let _ = REFUSED.try_with(|r| r.set(r.get().max(bytes)));
            say(b"\nvidi fuzz: refused an allocation of ");
            say_number(bytes);
            say(b" bytes (one input may hold ");
            say_number(limit);
            say(b") for ");
            if let Ok((ptr, len)) = NOTE.try_with(Cell::get) {
                if !ptr.is_null() {
                    // SAFETY: `limited` keeps the note alive while it is set.
                    say(unsafe { std::slice::from_raw_parts(ptr, len) });
                }
            }
            say(b"\n");
            return false;
        }
        let _ = LIVE.try_with(|l| l.set(live + bytes));
        true
    }

    fn release(bytes: usize) {
        if LIMIT.try_with(Cell::get).unwrap_or(usize::MAX) != usize::MAX {
            let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(bytes)));
        }
    }

    // SAFETY: every request goes to System unchanged, or is refused with null.
    unsafe impl GlobalAlloc for Capped {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            if !charge(layout.size()) {
                return std::ptr::null_mut();
            }
            // SAFETY: the caller's layout, as GlobalAlloc requires.
            unsafe { System.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            if !charge(layout.size()) {
                return std::ptr::null_mut();
            }
            // SAFETY: as above.
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            release(layout.size());
            // SAFETY: ptr came from System with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let old = layout.size();
            if new_size > old && !charge(new_size - old) {
                return std::ptr::null_mut();
            }
            if new_size < old {
                release(old - new_size);
            }
            // SAFETY: ptr came from System with this layout.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    /// Runs `f` with this thread holding at most `limit` more bytes than
    /// before; returns its result and the largest request refused, if any.
    /// `note` names what runs, for the message printed on a refusal.
    pub fn limited<T>(limit: usize, note: &str, f: impl FnOnce() -> T) -> (T, Option<usize>) {
        NOTE.set((note.as_ptr(), note.len()));
        LIVE.set(0);
        REFUSED.set(0);
        LIMIT.set(limit);
        let out = f();
        LIMIT.set(usize::MAX);
        NOTE.set((std::ptr::null(), 0));
        let refused = REFUSED.get();
        (out, (refused > 0).then_some(refused))
    }
}

// ---------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------

/// splitmix64: small, seeded, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when n is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn chance(&mut self, num: usize, den: usize) -> bool {
        self.below(den) < num
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// A committed corpus file.
struct Seed {
    name: String,
    bytes: Vec<u8>,
}

/// One input for a target.
struct Input {
    bytes: Vec<u8>,
    /// The corpus file it is, or was mutated from.
    base: String,
    /// An unmutated corpus file.
    replay: bool,
    /// Randomness for the check's own choices.
    coin: u64,
}

/// What an input did that is not a failure.
enum Verdict {
    /// The parser took it.
    Parsed,
    /// The parser refused it with an error.
    Refused,
}

/// A check: runs the parser on the input, `Err` when an invariant does not hold.
type Check<S> = fn(&mut S, &Input) -> Result<Verdict, String>;

/// A mutator: a new input from a corpus file (and the others, for splicing).
type Mutate = fn(&mut Rng, &Seed, &[Seed]) -> Vec<u8>;

enum Outcome {
    Done(Verdict),
    Broken(String),
    Panicked(String),
    Refused(usize),
}

fn corpus(target: &str) -> Vec<Seed> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz").join(target);
    let mut seeds: Vec<Seed> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.as_bytes().starts_with(b".")))
        .map(|p| Seed {
            name: p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            bytes: std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        })
        .collect();
    seeds.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(!seeds.is_empty(), "{}: no corpus", dir.display());
    seeds
}

fn env_number(name: &str) -> Option<f64> {
    let v = std::env::var(name).ok()?;
    Some(v.trim().parse().unwrap_or_else(|e| panic!("{name}={v}: {e}")))
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a panic without a message)".into())
}

/// Saves a failing input where it can be picked up and committed, and fails the test.
fn fail(target: &str, what: &str, label: &str, input: &Input) -> ! {
    let dir = std::env::temp_dir().join("vidi-fuzz-failures").join(target);
    let _ = std::fs::create_dir_all(&dir);
    let ext = Path::new(&input.base).extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or("bin".into());
    let stem: String = label.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let path = dir.join(format!("{stem}.{ext}"));
    let saved = match std::fs::write(&path, &input.bytes) {
        Ok(()) => format!("the input is saved at {}", path.display()),
        Err(e) => format!("the input could not be saved at {} ({e})", path.display()),
    };
    panic!(
        "fuzz target {target}: {what}, on {label}; {saved} (once fixed, commit it to tests/fuzz/{target}/ as a \
         regression seed)"
    )
}

/// Replays `target`'s corpus and then its mutations through `check` on a
/// worker thread made by `setup` (given a scratch folder), failing the test
/// on the first input that panics, breaks an invariant, runs too long or
/// asks for too much memory.
fn fuzz<S: 'static>(
    target: &'static str,
    default_iters: usize,
    setup: impl FnOnce(&Path) -> S + Send + 'static,
    mutate: Mutate,
    check: Check<S>,
) {
    let seeds = corpus(target);
    let scratch = tempfile::tempdir().expect("tempdir");
    let work = scratch.path().to_path_buf();
    let (to_worker, inputs) = mpsc::channel::<Input>();
    let (to_main, outcomes) = mpsc::channel::<Outcome>();
    let worker = std::thread::Builder::new()
        .name(format!("fuzz-{target}"))
        .spawn(move || {
            let mut state = setup(&work);
            let current = work.join("current-input");
            let note = format!("fuzz target {target}, the input at {}", current.display());
            for input in inputs {
                let _ = std::fs::write(&current, &input.bytes);
                let (result, refused) =
                    cap::limited(INPUT_BYTES, &note, || catch_unwind(AssertUnwindSafe(|| check(&mut state, &input))));
                let outcome = match (result, refused) {
                    (_, Some(bytes)) => Outcome::Refused(bytes),
                    (Ok(Ok(v)), None) => Outcome::Done(v),
                    (Ok(Err(msg)), None) => Outcome::Broken(msg),
                    (Err(payload), None) => Outcome::Panicked(panic_text(payload.as_ref())),
                };
                if to_main.send(outcome).is_err() {
                    break;
                }
            }
        })
        .expect("spawn the fuzz worker");

    let iters = env_number("VIDI_FUZZ_ITERS").map(|n| n as usize);
    let secs = env_number("VIDI_FUZZ_SECS").map(Duration::from_secs_f64);
    let iters = if iters.is_none() && secs.is_none() { Some(default_iters) } else { iters };
    let seed = std::env::var("VIDI_FUZZ_SEED").ok().map_or(SEED, |s| {
        let s = s.trim();
        let parsed = match s.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => s.parse(),
        };
        parsed.unwrap_or_else(|e| panic!("VIDI_FUZZ_SEED={s}: {e}"))
    });
    let target_hash =
        target.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));

    let start = Instant::now();
    let (mut parsed, mut refused, mut slowest) = (0usize, 0usize, Duration::ZERO);
    let mut run = |label: String, input: Input| {
        let t = Instant::now();
        let kept = Input { bytes: input.bytes.clone(), base: input.base.clone(), replay: input.replay, coin: 0 };
        to_worker.send(input).expect("the fuzz worker stopped");
        match outcomes.recv_timeout(PER_INPUT) {
            Ok(Outcome::Done(Verdict::Parsed)) => parsed += 1,
            Ok(Outcome::Done(Verdict::Refused)) => refused += 1,
            Ok(Outcome::Broken(msg)) => fail(target, &format!("an invariant failed ({msg})"), &label, &kept),
            Ok(Outcome::Panicked(msg)) => fail(target, &format!("the parser panicked ({msg})"), &label, &kept),
            Ok(Outcome::Refused(n)) => fail(target, &format!("the parser asked for {n} bytes at once"), &label, &kept),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                fail(target, &format!("the input ran past {PER_INPUT:?}"), &label, &kept)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => fail(target, "the fuzz worker died", &label, &kept),
        }
        slowest = slowest.max(t.elapsed());
    };
    for s in &seeds {
        run(
            format!("corpus file {}", s.name),
            Input { bytes: s.bytes.clone(), base: s.name.clone(), replay: true, coin: 0 },
        );
    }
    let mut i = 0usize;
    while iters.is_none_or(|n| i < n) && secs.is_none_or(|d| start.elapsed() < d) {
        let mut rng = Rng(seed ^ target_hash ^ (i as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
        let base = &seeds[rng.below(seeds.len())];
        let mut bytes = mutate(&mut rng, base, &seeds);
        bytes.truncate(MAX_INPUT);
        let coin = rng.next();
        run(
            format!("mutation {i} of {} (seed {seed:#x})", base.name),
            Input { bytes, base: base.name.clone(), replay: false, coin },
        );
        i += 1;
    }
    drop(run);
    drop(to_worker);
    let _ = worker.join();
    println!(
        "fuzz {target}: {} corpus files and {i} mutations (seed {seed:#x}) in {:.1} s: {parsed} parsed, {refused} \
         refused; slowest input {:.0} ms",
        seeds.len(),
        start.elapsed().as_secs_f64(),
        slowest.as_secs_f64() * 1000.0
    );
}

// ---------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------

/// Integers that break length and size fields.
const INTERESTING: [u64; 30] = [
    0,
    1,
    2,
    3,
    4,
    7,
    8,
    16,
    32,
    64,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 32,
    1 << 40,
    1 << 53,
    1 << 60,
    1 << 62,
    1 << 63,
    u64::MAX,
    u64::MAX - 1,
    i64::MAX as u64,
];

fn interesting(rng: &mut Rng) -> u64 {
    let v = *rng.pick(&INTERESTING);
    if rng.chance(1, 5) {
        v.wrapping_neg()
    } else {
        v
    }
}

/// Overwrites `width` bytes at `at` with an interesting integer (cut at the end).
fn put_int(rng: &mut Rng, d: &mut [u8], at: usize, width: usize, little: bool) {
    let v = interesting(rng);
    let bytes: Vec<u8> = if little { v.to_le_bytes()[..width].to_vec() } else { v.to_be_bytes()[8 - width..].to_vec() };
    for (k, b) in bytes.into_iter().enumerate() {
        if let Some(x) = d.get_mut(at + k) {
            *x = b;
        }
    }
}

/// Decimal literals that break number fields.
const LITERALS: [&str; 14] = [
    "0",
    "-1",
    "1e400",
    "-1e400",
    "18446744073709551616",
    "18446744073709551615",
    "9223372036854775808",
    "4294967296",
    "0.5",
    "-0",
    "1e-400",
    "99999999999999999999999999999",
    "65536",
    "00",
];

/// 1 to 4 generic mutations of `d`, at offsets from `from` on.
fn havoc(rng: &mut Rng, mut d: Vec<u8>, seeds: &[Seed], from: usize) -> Vec<u8> {
    for _ in 0..1 + rng.below(4) {
        let lo = from.min(d.len());
        let span = d.len() - lo;
        let pos = lo + rng.below(span + 1); // 0..=len: where to insert or cut
        match rng.below(10) {
            0 if span > 0 => {
                let i = lo + rng.below(span);
                d[i] ^= 1 << rng.below(8);
            }
            1 if span > 0 => {
                let i = lo + rng.below(span);
                d[i] = if rng.chance(1, 2) { *rng.pick(&[0u8, 1, 0x7f, 0x80, 0xff]) } else { rng.next() as u8 };
            }
            2 => {
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                d.splice(pos..pos, bytes);
            }
            3 if span > 0 => {
                let i = lo + rng.below(span);
                let n = 1 + rng.below((d.len() - i).min(64));
                d.drain(i..i + n);
            }
            4 => d.truncate(pos),
            5 => {
                let other = &rng.pick(seeds).bytes;
                let j = rng.below(other.len() + 1);
                d.truncate(pos);
                d.extend_from_slice(&other[j..]);
            }
            6 if span > 0 => {
                let i = lo + rng.below(span);
                let width = *rng.pick(&[1, 2, 4, 8]);
                let little = rng.chance(1, 2);
                put_int(rng, &mut d, i, width, little);
            }
            7 if span > 0 => {
                let i = lo + rng.below(span);
                let n = 1 + rng.below((d.len() - i).min(256));
                let chunk = d[i..i + n].to_vec();
                let at = lo + rng.below(d.len() - lo + 1);
                d.splice(at..at, chunk);
            }
            8 => {
                // A run of digits becomes a literal no field expects.
                let runs: Vec<(usize, usize)> = digit_runs(&d, lo);
                if !runs.is_empty() {
                    let (s, e) = *rng.pick(&runs);
                    let lit = rng.pick(&LITERALS).as_bytes().to_vec();
                    d.splice(s..e, lit);
                }
            }
            _ if span > 0 => {
                let i = lo + rng.below(span);
                d[i] = rng.next() as u8;
            }
            _ => {}
        }
    }
    d.truncate(MAX_INPUT);
    d
}

fn digit_runs(d: &[u8], from: usize) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut i = from;
    while i < d.len() {
        if d[i].is_ascii_digit() {
            let s = i;
            while i < d.len() && d[i].is_ascii_digit() {
                i += 1;
            }
            runs.push((s, i));
        } else {
            i += 1;
        }
    }
    runs
}

/// Strings for JSON values: the names parsers look for, paths that escape a folder, oddities.
const STRINGS: [&str; 30] = [
    "videomae",
    "timesformer",
    "vivit",
    "gelu",
    "gelu_fast",
    "gelu_pytorch_tanh",
    "relu",
    "divided_space_time",
    "space_only",
    "F32",
    "F64",
    "F16",
    "BF16",
    "I64",
    "U8",
    "BOOL",
    "F8_E4M3",
    "pt",
    "",
    "model-00001-of-00002.safetensors",
    "model-00002-of-00002.safetensors",
    "./model-00001-of-00002.safetensors",
    "../model-00001-of-00002.safetensors",
    "/dev/zero",
    "/",
    "..",
    "a\u{0}b",
    "\u{e9}\u{1F600}",
    "0",
    "-1",
];

/// A random JSON value: the kinds the parsers expect and the ones they must refuse.
fn random_value(rng: &mut Rng, keys: &[&str]) -> Value {
    match rng.below(12) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(1, 2)),
        2 | 3 => json!(interesting(rng)),
        4 => json!(interesting(rng) as i64),
        5 => json!(*rng.pick(&[0.5, -0.0, 1e-300, 1e300, f64::MAX, 3.25, -2.5, 1e-12, f64::MIN_POSITIVE])),
        6 => json!(*rng.pick(&STRINGS)),
        7 => json!(*rng.pick(keys)),
        8 => Value::Array((0..rng.below(5)).map(|_| json!(interesting(rng) % *rng.pick(&[4, 64, u64::MAX]))).collect()),
        9 => {
            let n = json!(interesting(rng) % *rng.pick(&[512, u64::MAX]));
            match rng.below(3) {
                0 => json!({ "shortest_edge": n }),
                1 => json!({ "height": n, "width": interesting(rng) % 512 }),
                _ => json!([n, n, n]),
            }
        }
        10 => {
            // A label map with keys that are and are not 0..n-1.
            let mut m = serde_json::Map::new();
            for _ in 0..rng.below(6) {
                let k = rng.pick(&["0", "1", "2", "3", "01", "+1", "-1", "x", "18446744073709551616", ""]).to_string();
                m.insert(k, if rng.chance(5, 6) { json!(*rng.pick(&STRINGS)) } else { json!(1) });
            }
            Value::Object(m)
        }
        _ => json!("x".repeat(1 + rng.below(5000))),
    }
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        Value::Object(o) => o.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// The `k`-th node in pre-order.
fn nth_node<'a>(v: &'a mut Value, k: &mut usize) -> Option<&'a mut Value> {
    if *k == 0 {
        return Some(v);
    }
    *k -= 1;
    match v {
        Value::Array(a) => a.iter_mut().find_map(|x| nth_node(x, k)),
        Value::Object(o) => o.values_mut().find_map(|x| nth_node(x, k)),
        _ => None,
    }
}

/// One structural change somewhere in `v`.
fn json_op(rng: &mut Rng, v: &mut Value, keys: &[&str]) {
    let mut k = rng.below(count_nodes(v));
    let Some(n) = nth_node(v, &mut k) else { return };
    match rng.below(7) {
        0 | 1 => *n = random_value(rng, keys),
        2 => match n {
            Value::Object(o) => {
                let key = rng.pick(keys).to_string();
                o.insert(key, random_value(rng, keys));
            }
            other => *other = random_value(rng, keys),
        },
        3 => match n {
            Value::Object(o) if !o.is_empty() => {
                let key = o.keys().nth(rng.below(o.len())).cloned().unwrap_or_default();
                o.remove(&key);
            }
            Value::Array(a) if !a.is_empty() => {
                a.remove(rng.below(a.len()));
            }
            other => *other = Value::Null,
        },
        4 => {
            // Deep nesting, past the depth serde_json reads.
            let depth = 1 + rng.below(200);
            let mut x = n.take();
            for _ in 0..depth {
                x = if rng.chance(1, 2) { Value::Array(vec![x]) } else { json!({ "a": x }) };
            }
            *n = x;
        }
        5 => match n {
            Value::Number(num) => {
                let x = num.as_f64().unwrap_or(0.0);
                *n = match rng.below(4) {
                    0 => json!(x + 1.0),
                    1 => json!(-x),
                    2 => json!(num.as_u64().unwrap_or(1).wrapping_mul(1 << rng.below(40))),
                    _ => json!(num.as_u64().unwrap_or(1).wrapping_sub(1)),
                };
            }
            Value::Array(a) => a.push(random_value(rng, keys)),
            other => *other = json!(other.to_string()),
        },
        _ => {
            // A copy of another node of the same document.
            let copy = n.clone();
            let mut k2 = rng.below(count_nodes(v));
            if let Some(m) = nth_node(v, &mut k2) {
                *m = copy;
            }
        }
    }
}

/// A structural JSON mutation (or, a quarter of the time, a byte-level one).
fn mutate_json(rng: &mut Rng, bytes: &[u8], seeds: &[Seed], keys: &[&str]) -> Vec<u8> {
    let parsed = serde_json::from_slice::<Value>(bytes);
    let Ok(mut v) = parsed.map_err(|_| ()).and_then(|v| if rng.chance(3, 4) { Ok(v) } else { Err(()) }) else {
        return havoc(rng, bytes.to_vec(), seeds, 0);
    };
    for _ in 0..1 + rng.below(3) {
        json_op(rng, &mut v, keys);
    }
    let out = if rng.chance(1, 2) { serde_json::to_vec(&v) } else { serde_json::to_vec_pretty(&v) };
    let out = out.unwrap_or_default();
    if rng.chance(1, 6) {
        havoc(rng, out, seeds, 0)
    } else {
        out
    }
}
