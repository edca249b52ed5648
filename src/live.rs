//! Classifying a live source as its frames arrive: a webcam (FFmpeg's v4l2
//! input) or a stream URL (rtsp, udp, rtp, srt, tcp, HTTP MJPEG, HLS).
//!
//! One thread reads the source without pause and cuts it into rolling
//! windows (the timeline's windows: `num_frames x frame_sampling_rate`
//! frames every `stride` frames); the model takes the newest complete window
//! each time it is free. A window that arrives while another waits replaces
//! it and is counted as dropped, so the answer never lags behind the source
//! by more than one window plus one model call; the lag is reported.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::infer::{softmax, top_k, Prediction};
use crate::model::weights::HostTensor;
use crate::model::VideoModel;
use crate::timeline::{preprocess, WindowClip, Windower};
use crate::video::{DecodeOptions, FrameSource, VideoError};

/// Why a live source could not be classified.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// `--live webcam` found no camera.
    #[error("no camera found (no /dev/video* device); plug one in or give a stream URL")]
    NoCamera,
    /// The camera named does not exist.
    #[error("{source_name}: no such camera")]
    NoSuchCamera {
        /// e.g. /dev/video3.
        source_name: String,
    },
    /// Another program holds the camera.
    #[error("{source_name}: the camera is busy (another program is using it)")]
    Busy {
        /// The camera.
        source_name: String,
    },
    /// Not a source vidi can read live.
    #[error("{source_name}: not a live source (a camera such as /dev/video0 or webcam, or an rtsp://, udp://, rtp://, srt://, tcp://, http(s):// stream)")]
    Unknown {
        /// What was given.
        source_name: String,
    },
    /// Nothing arrived in time.
    #[error("{source_name}: no video arrived for {secs} s")]
    Silent {
        /// The source.
        source_name: String,
        /// The limit.
        secs: u64,
    },
    /// FFmpeg could not open or read it.
    #[error("{source_name}: {reason}")]
    Open {
        /// The source.
        source_name: String,
        /// FFmpeg's reason.
        reason: String,
    },
    /// Decoding or the model failed.
    #[error("{0}")]
    Video(#[from] VideoError),
}

/// Options of [`classify_live`].
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// Labels per window.
    pub top_k: usize,
    /// The pipeline's `frame_sampling_rate`.
    pub frame_sampling_rate: usize,
    /// Frames between window starts (default: the window's span).
    pub stride: Option<usize>,
    /// Stop after this many seconds (wall clock, from the moment the source opened).
    pub max_seconds: Option<f64>,
    /// How long the source may send nothing (opening included).
    pub timeout: Duration,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            top_k: 5,
            frame_sampling_rate: 1,
            stride: None,
            max_seconds: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// One window's answer.
#[derive(Clone, Debug, Serialize)]
pub struct LiveWindow {
    /// Source time of the window's last frame, in seconds from the first frame.
    pub t_s: f64,
    /// Top labels, highest first.
    pub predictions: Vec<Prediction>,
    /// Seconds the answer comes after its last frame was live: the reading's
    /// delay behind the source's clock plus the wait and the model's time.
    pub lag_s: f64,
    /// Windows skipped so far because the model was busy.
    pub dropped: usize,
}

/// How a live run ended.
#[derive(Clone, Debug, Serialize)]
pub struct LiveSummary {
    /// Windows answered.
    pub windows: usize,
    /// Windows skipped because the model was busy.
    pub dropped: usize,
    /// Frames read.
    pub frames: usize,
    /// Seconds from the first frame to the end.
    pub seconds: f64,
    /// Why it ended: "stopped", "max-seconds" or "the stream ended".
    pub ended: String,
}

/// True for the sources [`classify_live`] takes.
pub fn is_live_source(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    l == "webcam"
        || l.starts_with("/dev/video")
        || ["rtsp://", "rtsps://", "udp://", "rtp://", "srt://", "tcp://", "http://", "https://"]
            .iter()
            .any(|p| l.starts_with(p))
}

/// The cameras present (`/dev/video*`), in order.
pub fn cameras() -> Vec<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/dev")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let n = name.strip_prefix("video")?.parse::<u32>().ok()?;
            Some((n, e.path()))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

/// Opens a live source; `stop` (and the timeout while nothing arrives)
/// interrupts FFmpeg wherever it waits. `activity` holds the milliseconds
/// since `epoch` of the last frame; the reader updates it.
fn open_source(
    spec: &str,
    timeout: Duration,
    stop: &Arc<AtomicBool>,
    activity: &Arc<AtomicU64>,
    epoch: Instant,
    timed_out: &Arc<AtomicBool>,
    opts: &DecodeOptions,
) -> Result<(FrameSource, String), LiveError> {
    crate::video::init();
    if !is_live_source(spec) {
        return Err(LiveError::Unknown { source_name: spec.into() });
    }
    let micros = timeout.as_micros().to_string();
    if spec.eq_ignore_ascii_case("webcam") || spec.starts_with("/dev/video") {
        let cam = if spec.eq_ignore_ascii_case("webcam") {
            cameras().into_iter().next().ok_or(LiveError::NoCamera)?
        } else {
            PathBuf::from(spec)
        };
        let name = cam.display().to_string();
        if !cam.exists() {
            return Err(LiveError::NoSuchCamera { source_name: name });
        }
        ffmpeg_next::device::register_all();
        // SAFETY: av_find_input_format takes a NUL-terminated name and returns a static format or null.
        let fmt = unsafe { ffmpeg_next::ffi::av_find_input_format(c"v4l2".as_ptr()) };
        if fmt.is_null() {
            return Err(LiveError::Open { source_name: name, reason: "this FFmpeg has no camera input (v4l2)".into() });
        }
        // SAFETY: a non-null format from av_find_input_format lives for the program.
        let format = ffmpeg_next::format::format::Format::Input(unsafe {
            ffmpeg_next::format::format::Input::wrap(fmt as *mut _)
        });
        let ctx =
            ffmpeg_next::format::open_with(&cam, &format, ffmpeg_next::Dictionary::new()).map_err(|e| match e {
                ffmpeg_next::Error::Other { errno } if errno == libc::EBUSY => {
                    LiveError::Busy { source_name: name.clone() }
                }
                ffmpeg_next::Error::Other { errno } if errno == libc::ENOENT || errno == libc::ENODEV => {
                    LiveError::NoSuchCamera { source_name: name.clone() }
                }
                e => LiveError::Open { source_name: name.clone(), reason: e.to_string() },
            })?;
        let ffmpeg_next::format::context::Context::Input(input) = ctx else {
            return Err(LiveError::Open { source_name: name, reason: "not an input".into() });
        };
        let source = FrameSource::from_input(&cam, input, opts)?;
        return Ok((source, name));
    }
    let mut dict = ffmpeg_next::Dictionary::new();
    dict.set("rw_timeout", &micros);
    let lower = spec.to_ascii_lowercase();
    if lower.starts_with("udp://") || lower.starts_with("rtp://") {
        dict.set("timeout", &micros);
        dict.set("overrun_nonfatal", "1");
        dict.set("fifo_size", "1000000");
    } else if lower.starts_with("rtsp") {
        dict.set("timeout", &micros);
    }
    let (stop2, activity2, timed_out2) = (stop.clone(), activity.clone(), timed_out.clone());
    let limit = timeout.as_millis() as u64;
    let interrupt = move || {
        if stop2.load(Ordering::Relaxed) {
            return true;
        }
        let now = epoch.elapsed().as_millis() as u64;
        let late = now.saturating_sub(activity2.load(Ordering::Relaxed)) > limit;
        if late {
            timed_out2.store(true, Ordering::Relaxed);
        }
        late
    };
    let input = ffmpeg_next::format::input_with_interrupt_and_dictionary(&spec, interrupt, dict).map_err(|e| {
        if timed_out.load(Ordering::Relaxed) {
            LiveError::Silent { source_name: spec.into(), secs: timeout.as_secs_f64().ceil() as u64 }
        } else {
            LiveError::Open { source_name: spec.into(), reason: e.to_string() }
        }
    })?;
    let source = FrameSource::from_input(Path::new(spec), input, opts)?;
    Ok((source, spec.to_string()))
}

/// The newest complete window, waiting for the model.
struct Slot {
    window: Option<(WindowClip, f64, Instant)>,
    dropped: usize,
    /// When the first frame arrived, and its source time.
    first: Option<(Instant, f64)>,
    /// Seconds the last frame read arrived after its source time (by the first frame's clock).
    behind: f64,
    finished: Option<Result<String, LiveError>>,
    frames: usize,
}

/// Classifies `spec` until `stop` is set, `max_seconds` pass or the source ends.
/// `on_frame`, when given, sees every frame converted for a window (for a
/// picture of the source), on the reading thread.
pub fn classify_live(
    model: &VideoModel,
    spec: &str,
    opts: &LiveOptions,
    stop_asked: &AtomicBool,
    on_window: &mut dyn FnMut(&LiveWindow),
    on_frame: Option<&(dyn Fn(&crate::video::RgbFrame) + Sync)>,
) -> Result<LiveSummary, LiveError> {
    // FFmpeg's interrupt callback outlives this call's borrows: it watches its own flag.
    let stop = &Arc::new(AtomicBool::new(stop_asked.load(Ordering::Relaxed)));
    let epoch = Instant::now();
    let activity = Arc::new(AtomicU64::new(0));
    let timed_out = Arc::new(AtomicBool::new(false));
    let dec = DecodeOptions { bound: model.processor.frame_bound(), ..Default::default() };
    let name = spec.to_string();
    let n = model.config.num_frames;
    let rate = opts.frame_sampling_rate.max(1);
    let stride = opts.stride.unwrap_or(n * rate).max(1);
    let shared = Arc::new((
        Mutex::new(Slot { window: None, dropped: 0, first: None, behind: 0.0, finished: None, frames: 0 }),
        Condvar::new(),
    ));
    let mut started = Instant::now();
    let silent_secs = opts.timeout.as_secs_f64().ceil() as u64;

    let mut answered = 0usize;
    let mut result: Result<(), LiveError> = Ok(());
    std::thread::scope(|scope| {
        let reader_shared = shared.clone();
        let reader_stop = stop.clone();
        let (activity, timed_out, name, dec) = (&activity, &timed_out, &name, &dec);
        let (opened_tx, opened_rx) = std::sync::mpsc::channel::<Result<(), LiveError>>();
        scope.spawn(move || {
            let (lock, cv) = &*reader_shared;
            // FFmpeg's contexts stay on this thread: it opens the source too.
            let mut source = match open_source(spec, opts.timeout, &reader_stop, activity, epoch, timed_out, dec) {
                Ok((s, _)) => {
                    let _ = opened_tx.send(Ok(()));
                    s
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                    return;
                }
            };
            let mut w = Windower::new(n, rate, stride, false);
            let mut shape = [3, 0, 0];
            let end = loop {
                if reader_stop.load(Ordering::Relaxed) {
                    break Ok("stopped".to_string());
                }
                let frame = match source.next(|i| w.wants(i)) {
                    Ok(Some(f)) => f,
                    Ok(None) if reader_stop.load(Ordering::Relaxed) => break Ok("stopped".into()),
                    Ok(None) if timed_out.load(Ordering::Relaxed) => {
                        break Err(LiveError::Silent { source_name: name.clone(), secs: silent_secs })
                    }
                    Ok(None) => break Ok("the stream ended".into()),
                    Err(e) => break Err(LiveError::Video(e)),
                };
                activity.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
                if let (Some(show), Some(rgb)) = (on_frame, &frame.rgb) {
                    show(rgb);
                }
                let data = match frame.rgb.map(|rgb| preprocess(model, &rgb, Path::new(name))).transpose() {
                    Ok(d) => d.map(|(v, s)| {
                        shape = s;
                        v
                    }),
                    Err(e) => break Err(LiveError::Video(e)),
                };
                let done = w.push(frame.index, data, shape);
                let Ok(mut slot) = lock.lock() else { break Ok("stopped".into()) };
                slot.frames = frame.index + 1;
                // The source's clock against ours: how far behind real time the reading runs.
                let first = *slot.first.get_or_insert((Instant::now(), frame.secs));
                slot.behind = (first.0.elapsed().as_secs_f64() - (frame.secs - first.1)).max(0.0);
                if let Some(win) = done {
                    if slot.window.replace((win, frame.secs, Instant::now())).is_some() {
                        slot.dropped += 1;
                    }
                    cv.notify_all();
                }
            };
            if let Ok(mut slot) = lock.lock() {
                slot.finished = Some(end);
            }
            cv.notify_all();
        });

        // Wait for the source to open; Ctrl-C and --max-seconds interrupt the wait.
        let opened = loop {
            if stop_asked.load(Ordering::Relaxed)
                || opts.max_seconds.is_some_and(|m| epoch.elapsed().as_secs_f64() >= m)
            {
                stop.store(true, Ordering::Relaxed);
            }
            match opened_rx.recv_timeout(Duration::from_millis(100)) {
                Ok(r) => break r,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    break Err(LiveError::Open { source_name: spec.into(), reason: "the reader stopped".into() })
                }
            }
        };
        match opened {
            Ok(()) => started = Instant::now(),
            // Stopped by the user before anything arrived: not a failure.
            Err(_) if stop_asked.load(Ordering::Relaxed) => return,
            Err(_) if opts.max_seconds.is_some_and(|m| epoch.elapsed().as_secs_f64() >= m) => {
                let secs = opts.max_seconds.unwrap_or(0.0).ceil() as u64;
                result = Err(LiveError::Silent { source_name: spec.into(), secs });
                return;
            }
            Err(e) => {
                result = Err(e);
                return;
            }
        }
        let (lock, cv) = &*shared;
        loop {
            if opts.max_seconds.is_some_and(|m| started.elapsed().as_secs_f64() >= m)
                || stop_asked.load(Ordering::Relaxed)
            {
                stop.store(true, Ordering::Relaxed);
            }
            let Ok(mut slot) = lock.lock() else { break };
            while slot.window.is_none() && slot.finished.is_none() {
                let wait = Duration::from_millis(100);
                let Ok((s, _)) = cv.wait_timeout(slot, wait) else { return };
                slot = s;
                if opts.max_seconds.is_some_and(|m| started.elapsed().as_secs_f64() >= m)
                    || stop_asked.load(Ordering::Relaxed)
                {
                    stop.store(true, Ordering::Relaxed);
                }
                if stop.load(Ordering::Relaxed) && slot.window.is_none() {
                    break;
                }
            }
            let taken = slot.window.take();
            let dropped = slot.dropped;
            let behind = slot.behind;
            let finished = slot.finished.is_some();
            drop(slot);
            let Some((win, t_s, arrived)) = taken else {
                if finished || stop.load(Ordering::Relaxed) {
                    break;
                }
                continue;
            };
            if stop.load(Ordering::Relaxed) && opts.max_seconds.is_some_and(|m| started.elapsed().as_secs_f64() > m) {
                break;
            }
            let mut shape = vec![1];
            shape.extend_from_slice(&win.clip.shape);
            let logits = match model.forward_host(HostTensor::new(shape, win.clip.data)) {
                Ok(l) => l,
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    result =
                        Err(LiveError::Video(VideoError::Clip { path: PathBuf::from(spec), message: e.to_string() }));
                    break;
                }
            };
            let p = softmax(&logits.data[..logits.shape[1]]);
            let w = LiveWindow {
                t_s,
                predictions: top_k(&model.labels, &p, opts.top_k),
                lag_s: arrived.elapsed().as_secs_f64() + behind,
                dropped,
            };
            answered += 1;
            on_window(&w);
        }
        stop.store(true, Ordering::Relaxed);
    });
    result?;
    let (lock, _) = &*shared;
    let mut slot = lock.lock().map_err(|_| LiveError::Open { source_name: name.clone(), reason: "stopped".into() })?;
    let ended = match slot.finished.take() {
        Some(Err(e)) => return Err(e),
        Some(Ok(why)) => why,
        None => "stopped".into(),
    };
    let ended = if opts.max_seconds.is_some_and(|m| started.elapsed().as_secs_f64() >= m) && ended == "stopped" {
        "max-seconds".to_string()
    } else {
        ended
    };
    Ok(LiveSummary {
        windows: answered,
        dropped: slot.dropped,
        frames: slot.frames,
        seconds: started.elapsed().as_secs_f64(),
        ended,
    })
}
