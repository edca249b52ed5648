//! Decoding: chosen frame indices, time ranges (PyTorchVideo's `get_clip`), or everything.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ff::format::context::Input;
use ff::software::scaling;
use ffmpeg_next as ff;

use super::budget::{decoder_threads, DecoderPermit};
use super::{open_input, RgbFrame, VideoError};

/// How to decode.
#[derive(Clone, Debug)]
pub struct DecodeOptions {
    /// Read this stream (its index in the container) instead of the first video stream.
    pub stream: Option<usize>,
    /// Decoder threads; 0 lets FFmpeg choose. Loaders that decode several
    /// videos at once use 1 per worker.
    pub threads: usize,
    /// Turn pictures upright according to the display matrix, as the ffmpeg
    /// command line does (PyAV does not; turn off for bit-exact PyAV parity on
    /// rotated phone videos).
    pub autorotate: bool,
    /// Scale very large frames down right after decoding (see [`FrameBound`]);
    /// `None` keeps every frame at its decoded size.
    pub bound: Option<FrameBound>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions { stream: None, threads: 0, autorotate: true, bound: None }
    }
}

/// How small frames may become right after decoding, for a consumer that
/// resizes them afterwards so their short side is at most `short_side`:
/// an 8000x8000 picture is 192 MB as RGB, and a clip of them does not fit
/// in memory, while the model sees 224x224.
///
/// A frame is kept exactly as decoded when its long side is at most
/// [`FrameBound::KEEP_LONG_SIDE`] (every video up to 1080p, in either
/// orientation) or its short side is at most [`FrameBound::HEADROOM`] times
/// `short_side`. Only larger frames are scaled, aspect ratio kept, so that
/// their short side becomes `HEADROOM * short_side` (896 for a 224 model),
/// by FFmpeg's area-averaging scaler in the decoder's own pixel format.
///
/// For those frames the result is an approximation: the later antialiased
/// resize (the image processors', the val preset's) still averages at least
/// four of these pixels per output pixel along each side, so its triangle
/// filter is only widened by the quarter-pixel box before it; on a 4000x4000
/// test pattern the image processor's output moved by 0.3 grey levels on
/// average from resizing the full picture (`tests/suite/memory.rs` allows 1). Resizes without
/// antialiasing (the train preset's short-side scale) sample an
/// area-averaged picture instead of the full-size one, so they alias less.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameBound {
    /// The largest short side the frames are resized to afterwards.
    pub short_side: u32,
}

impl FrameBound {
    /// Frames whose long side is at most this are never scaled.
    pub const KEEP_LONG_SIDE: u32 = 1920;
    /// Scaled frames keep this many pixels per output pixel along the short side.
    pub const HEADROOM: u32 = 4;

    /// The size a `w x h` frame is scaled to, or `None` when it is kept as decoded.
    pub fn reduced_size(&self, w: u32, h: u32) -> Option<(u32, u32)> {
        let (short, long) = (w.min(h), w.max(h));
        let target = self.short_side.max(1).saturating_mul(Self::HEADROOM);
        if long <= Self::KEEP_LONG_SIDE || short <= target {
            return None;
        }
        let scale = f64::from(target) / f64::from(short);
        let side = |v: u32| ((f64::from(v) * scale).round() as u32).clamp(1, v);
        Some((side(w), side(h)))
    }
}

/// A decoded frame before colour conversion, with its presentation timestamp.
pub(crate) struct RawFrame {
    pub frame: ff::frame::Video,
    /// Presentation timestamp in stream time-base units.
    pub pts: Option<i64>,
}

/// One video stream of one open file: demuxes, decodes, converts to RGB.
pub(crate) struct StreamReader {
    path: PathBuf,
    input: Input,
    stream_index: usize,
    decoder: ff::decoder::Video,
    time_base: ff::Rational,
    start_pts: i64,
    rotation: i32,
    autorotate: bool,
    scaler: Option<(scaling::Context, ff::format::Pixel, u32, u32)>,
    bound: Option<FrameBound>,
    /// Scales frames over `bound` down, keyed by input format and size.
    shrinker: Option<(scaling::Context, ff::format::Pixel, u32, u32)>,
    eof_sent: bool,
    /// When set (single-threaded decoding only), packets whose timestamp is
    /// not in the set are decoded with `skip_frame = NONREF`: frames nothing
    /// refers to and nobody wants are not decoded at all.
    keep_pts: Option<std::collections::BTreeSet<i64>>,
    threads: usize,
    /// The first non-EOF read error, when the file stopped early.
    pub read_error: Option<String>,
    /// This decoder's share of the decoders' memory budget; declared last, so
    /// it is released after the decoder has freed its pictures.
    _permit: DecoderPermit,
}

impl StreamReader {
    /// Opens `path` and its chosen video stream.
    pub fn open(path: &Path, opts: &DecodeOptions) -> Result<StreamReader, VideoError> {
        let input = open_input(path)?;
        let index = super::choose_video_stream(&input, path, opts.stream)?;
        let mut reader = StreamReader::open_stream(path, input, index, opts.threads)?;
        reader.autorotate = opts.autorotate;
        reader.bound = opts.bound;
        Ok(reader)
    }

    /// Sets up the decoder for stream `index` of an already open container.
    pub fn open_stream(path: &Path, input: Input, index: usize, threads: usize) -> Result<StreamReader, VideoError> {
        let stream = input.stream(index).ok_or_else(|| VideoError::NoVideoStream { path: path.into() })?;
        let time_base = stream.time_base();
        let start_pts = if stream.start_time() == ff::ffi::AV_NOPTS_VALUE { 0 } else { stream.start_time() };
        let rotation = super::stream_rotation(&stream);
        let params = stream.parameters();
        let codec_id = params.id();
        // SAFETY: codecpar is valid for the stream's lifetime; width/height are plain ints.
        let (w, h) = unsafe {
            let p = params.as_ptr();
            ((*p).width.max(0) as u32, (*p).height.max(0) as u32)
        };
        let mut ctx = ff::codec::context::Context::from_parameters(params).map_err(|source| VideoError::Ffmpeg {
            path: path.into(),
            context: "reading codec parameters",
            source,
        })?;
        let count = decoder_threads(threads, w, h);
        ctx.set_threading(ff::codec::threading::Config {
            kind: ff::codec::threading::Type::Frame,
            count,
            ..Default::default()
        });
        if ff::decoder::find(codec_id).is_none() {
            return Err(VideoError::UnsupportedCodec {
                path: path.into(),
                codec: format!("{codec_id:?}").to_lowercase(),
            });
        }
        let permit = DecoderPermit::acquire(w, h, count);
        let decoder = ctx.decoder().video().map_err(|source| VideoError::Ffmpeg {
            path: path.into(),
            context: "opening the decoder",
            source,
        })?;
        drop(stream);
        Ok(StreamReader {
            path: path.into(),
            input,
            stream_index: index,
            decoder,
            time_base,
            start_pts,
            rotation,
            autorotate: true,
            scaler: None,
            bound: None,
            shrinker: None,
            eof_sent: false,
            keep_pts: None,
            threads,
            read_error: None,
            _permit: permit,
        })
    }

    /// The decoder's codec short name.
    pub fn codec_name(&self) -> String {
        self.decoder.codec().map(|c| c.name().to_string()).unwrap_or_else(|| "unknown".into())
    }

    /// Coded picture size from the stream parameters.
    pub fn coded_size(&self) -> (u32, u32) {
        (self.decoder.width(), self.decoder.height())
    }

    /// Converts a timestamp of this stream to seconds from the stream's start.
    pub fn pts_to_secs(&self, pts: i64) -> f64 {
        (pts - self.start_pts) as f64 * f64::from(self.time_base)
    }

    /// PyTorchVideo's `secs_to_pts(..., round_mode="ceil")`.
    pub fn secs_to_pts_ceil(&self, secs: f64) -> i64 {
        if secs.is_infinite() {
            return i64::MAX;
        }
        (secs / f64::from(self.time_base)).ceil() as i64 + self.start_pts
    }

    /// The next decoded frame in presentation order, or `None` at the end.
    pub fn next_raw(&mut self) -> Result<Option<RawFrame>, VideoError> {
        let mut frame = ff::frame::Video::empty();
        loop {
            match self.decoder.receive_frame(&mut frame) {
                Ok(()) => {
                    // best_effort_timestamp is monotonic where packet pts are not (xvid AVI
                    // with B-frames labels frames 1,2,4,3,...); fall back to pts.
                    let pts = frame.timestamp().or_else(|| frame.pts());
                    let frame = self.shrink(frame)?;
                    return Ok(Some(RawFrame { frame, pts }));
                }
                Err(ff::Error::Eof) => return Ok(None),
                Err(ff::Error::Other { errno }) if errno == ff::util::error::EAGAIN => {}
                Err(source) => {
                    // A damaged frame: note it and keep going, as players do.
                    self.read_error.get_or_insert_with(|| format!("decoder error: {source}"));
                    if self.eof_sent {
                        return Ok(None);
                    }
                }
            }
            if self.eof_sent {
                return Ok(None);
            }
            self.feed()?;
        }
    }

    /// Scales a frame larger than [`StreamReader::bound`] allows down to its
    /// [`FrameBound::reduced_size`], in its own pixel format where swscale can
    /// write it (else RGB24); other frames pass through untouched.
    fn shrink(&mut self, frame: ff::frame::Video) -> Result<ff::frame::Video, VideoError> {
        let (w, h, fmt) = (frame.width(), frame.height(), frame.format());
        let Some((nw, nh)) = self.bound.and_then(|b| b.reduced_size(w, h)) else { return Ok(frame) };
        let stale = !matches!(&self.shrinker, Some((_, pf, pw, ph)) if *pf == fmt && *pw == w && *ph == h);
        if stale {
            let out = if scaling::support::output(fmt) { fmt } else { ff::format::Pixel::RGB24 };
            let ctx = scaling::Context::get(fmt, w, h, out, nw, nh, scaling::Flags::AREA).map_err(|source| {
                VideoError::Ffmpeg { path: self.path.clone(), context: "setting up downscaling", source }
            })?;
            self.shrinker = Some((ctx, fmt, w, h));
        }
        let Some((shrinker, ..)) = self.shrinker.as_mut() else { unreachable!("shrinker set above") };
        let mut small = ff::frame::Video::empty();
        shrinker.run(&frame, &mut small).map_err(|source| VideoError::Ffmpeg {
            path: self.path.clone(),
            context: "downscaling",
            source,
        })?;
        Ok(small)
    }

    /// Sends the next packet of our stream to the decoder (or EOF).
    fn feed(&mut self) -> Result<(), VideoError> {
        let mut packet = ff::Packet::empty();
        loop {
            match packet.read(&mut self.input) {
                Ok(()) => {
                    if packet.stream() != self.stream_index {
                        continue;
                    }
                    if let Some(keep) = &self.keep_pts {
                        let wanted = packet.pts().is_some_and(|p| keep.contains(&p));
                        let mode = if wanted {
                            ff::codec::discard::Discard::Default
                        } else {
                            ff::codec::discard::Discard::NonReference
                        };
                        self.decoder.skip_frame(mode);
                    }
                    match self.decoder.send_packet(&packet) {
                        Ok(()) => return Ok(()),
                        Err(ff::Error::InvalidData) => {
                            self.read_error.get_or_insert_with(|| "a damaged packet was skipped".into());
                            continue;
                        }
                        Err(source) => {
                            return Err(VideoError::Ffmpeg { path: self.path.clone(), context: "decoding", source })
                        }
                    }
                }
                Err(ff::Error::Eof) => break,
                Err(ff::Error::InvalidData) => {
                    self.read_error.get_or_insert_with(|| "damaged data was skipped".into());
                    continue;
                }
                Err(e) => {
                    self.read_error.get_or_insert_with(|| format!("read error: {e}"));
                    break;
                }
            }
        }
        self.eof_sent = true;
        let _ = self.decoder.send_eof();
        Ok(())
    }

    /// Seeks so that decoding resumes at the key frame at or before `pts` (stream units).
    pub fn seek_to_pts(&mut self, pts: i64) -> Result<(), VideoError> {
        let us = ff::rescale::Rescale::rescale(&pts, self.time_base, ff::rescale::TIME_BASE);
        self.input.seek(us, ..us).map_err(|source| VideoError::Ffmpeg {
            path: self.path.clone(),
            context: "seeking",
            source,
        })?;
        self.decoder.flush();
        self.eof_sent = false;
        Ok(())
    }

    /// Rewinds to the start of the file.
    pub fn rewind(&mut self) -> Result<(), VideoError> {
        self.input.seek(i64::MIN + 1, ..).or_else(|_| self.input.seek(0, ..0)).map_err(|source| {
            VideoError::Ffmpeg { path: self.path.clone(), context: "seeking to the start", source }
        })?;
        self.decoder.flush();
        self.eof_sent = false;
        Ok(())
    }

    /// Converts a decoded frame to packed RGB24, honouring line stride and rotation.
    pub fn to_rgb(&mut self, raw: &RawFrame) -> Result<RgbFrame, VideoError> {
        let f = &raw.frame;
        let (w, h, fmt) = (f.width(), f.height(), f.format());
        let stale = !matches!(&self.scaler, Some((_, pf, pw, ph)) if *pf == fmt && *pw == w && *ph == h);
        if stale {
            let ctx = scaling::Context::get(fmt, w, h, ff::format::Pixel::RGB24, w, h, scaling::Flags::BILINEAR)
                .map_err(|source| VideoError::Ffmpeg {
                    path: self.path.clone(),
                    context: "setting up colour conversion",
                    source,
                })?;
            self.scaler = Some((ctx, fmt, w, h));
        }
        let Some((scaler, ..)) = self.scaler.as_mut() else { unreachable!("scaler set above") };
        let mut rgb = ff::frame::Video::empty();
        scaler.run(f, &mut rgb).map_err(|source| VideoError::Ffmpeg {
            path: self.path.clone(),
            context: "converting to RGB",
            source,
        })?;
        let stride = rgb.stride(0);
        let row = w as usize * 3;
        let src = rgb.data(0);
        let mut data = Vec::with_capacity(row * h as usize);
        for y in 0..h as usize {
            data.extend_from_slice(&src[y * stride..y * stride + row]);
        }
        let out = RgbFrame { width: w, height: h, data, time_secs: raw.pts.map(|p| self.pts_to_secs(p)) };
        Ok(if self.autorotate { out.rotated_clockwise(self.rotation) } else { out })
    }

    /// Demuxes the whole stream without decoding: packet timestamps in
    /// presentation order and the key-frame ones. `None` when timestamps are
    /// missing or the stream has placeholder packets (packed B-frames), where
    /// packet order cannot stand for frame order.
    fn packet_index(&mut self) -> Option<(Vec<i64>, Vec<i64>)> {
        let mut all = Vec::new();
        let mut keys = Vec::new();
        let mut packet = ff::Packet::empty();
        let ok = loop {
            match packet.read(&mut self.input) {
                Ok(()) if packet.stream() == self.stream_index => {
                    let Some(pts) = packet.pts() else { break false };
                    if packet.size() <= 8 {
                        break false;
                    }
                    all.push(pts);
                    if packet.is_key() {
                        keys.push(pts);
                    }
                }
                Ok(()) => {}
                Err(ff::Error::Eof) => break true,
                Err(_) => break false,
            }
        };
        if self.rewind().is_err() || !ok || keys.is_empty() {
            return None;
        }
        all.sort_unstable();
        all.dedup();
        keys.sort_unstable();
        Some((all, keys))
    }
}

/// Frame counting for `probe`.
pub(crate) struct Counted {
    pub frames: usize,
    pub read_error: Option<String>,
    pub variable: bool,
    first_secs: Option<f64>,
    last_secs: Option<f64>,
}

impl Counted {
    /// Frames per second from the timestamps, when there are any.
    pub fn mean_fps(&self) -> Option<f64> {
        let (a, b) = (self.first_secs?, self.last_secs?);
        (b > a && self.frames > 1).then(|| (self.frames - 1) as f64 / (b - a))
    }

    /// Duration from the timestamps: last frame's time plus one frame.
    pub fn span_secs(&self, fps: f64) -> Option<f64> {
        Some(self.last_secs? + 1.0 / fps)
    }
}

/// Decodes every frame (no colour conversion) to count them.
pub(crate) fn count_frames(reader: &mut StreamReader) -> Result<Counted, VideoError> {
    let mut frames = 0;
    let mut pts_list = Vec::new();
    while let Some(raw) = reader.next_raw()? {
        frames += 1;
        if let Some(p) = raw.pts {
            pts_list.push(p);
        }
    }
    pts_list.sort_unstable();
    let diffs: Vec<i64> = pts_list.windows(2).map(|w| w[1] - w[0]).filter(|d| *d > 0).collect();
    let variable = match (diffs.iter().min(), diffs.iter().max()) {
        (Some(&lo), Some(&hi)) => (hi - lo) as f64 > (lo as f64 * 0.1).max(1.0),
        _ => false,
    };
    Ok(Counted {
        frames,
        read_error: reader.read_error.clone(),
        variable,
        first_secs: pts_list.first().map(|p| reader.pts_to_secs(*p)),
        last_secs: pts_list.last().map(|p| reader.pts_to_secs(*p)),
    })
}

/// The frames of `got` in the order of `keys`, each moved out at its last
/// use: only repeated keys are cloned, so the result never costs twice the frames.
fn take_in_order<K: Ord + Copy>(mut got: BTreeMap<K, RgbFrame>, keys: &[K]) -> Vec<RgbFrame> {
    let mut uses: BTreeMap<K, usize> = BTreeMap::new();
    for k in keys {
        *uses.entry(*k).or_default() += 1;
    }
    keys.iter()
        .filter_map(|k| {
            let left = uses.get_mut(k)?;
            *left -= 1;
            if *left == 0 {
                got.remove(k)
            } else {
                got.get(k).cloned()
            }
        })
        .collect()
}

/// Below this first index, decoding from the start beats building a seek index.
const SEEK_MIN_INDEX: usize = 48;

/// Decodes the frames at `indices` (0-based, in the decoder's presentation
/// order) and returns them in the order asked, duplicates included.
///
/// Only what is needed is decoded: when the first wanted frame is far in,
/// the reader seeks to the key frame before it; decoding stops after the
/// last wanted frame. Asking past the end gives [`VideoError::Truncated`]
/// with the number of readable frames.
pub fn decode_indices(path: &Path, indices: &[usize], opts: &DecodeOptions) -> Result<Vec<RgbFrame>, VideoError> {
    if indices.is_empty() {
        return Ok(Vec::new());
    }
    let mut reader = StreamReader::open(path, opts)?;
    let wanted: std::collections::BTreeSet<usize> = indices.iter().copied().collect();
    let first = *wanted.first().unwrap_or(&0);
    let last = *wanted.last().unwrap_or(&0);
    let mut got: BTreeMap<usize, RgbFrame> = BTreeMap::new();

    if first >= SEEK_MIN_INDEX {
        if let Some((all_pts, key_pts)) = reader.packet_index() {
            if let Some(seek_pts) =
                all_pts.get(first).and_then(|target| key_pts.iter().rev().find(|k| *k <= target).copied())
            {
                reader.seek_to_pts(seek_pts)?;
                let mut exact = true;
                while let Some(raw) = reader.next_raw()? {
                    let Some(idx) = raw.pts.and_then(|p| all_pts.binary_search(&p).ok()) else {
                        exact = false;
                        break;
                    };
                    if wanted.contains(&idx) {
                        got.insert(idx, reader.to_rgb(&raw)?);
                    }
                    if idx >= last {
                        break;
                    }
                }
                if exact && wanted.iter().all(|i| got.contains_key(i)) {
                    return Ok(take_in_order(got, indices));
                }
                // Timestamps did not line up with packet order: decode from the start instead.
                got.clear();
                reader.rewind()?;
            }
        }
    }

    let mut idx = 0usize;
    while let Some(raw) = reader.next_raw()? {
        if wanted.contains(&idx) {
            got.insert(idx, reader.to_rgb(&raw)?);
        }
        if idx >= last {
            break;
        }
        idx += 1;
    }
    if got.is_empty() && idx == 0 {
        return Err(VideoError::NoFrames { path: path.into() });
    }
    if let Some(missing) = wanted.iter().find(|i| !got.contains_key(i)) {
        let readable = if got.contains_key(&idx) { idx + 1 } else { idx };
        return Err(VideoError::Truncated { path: path.into(), wanted: *missing.max(&last), readable });
    }
    Ok(take_in_order(got, indices))
}

/// Frames of a time range.
#[derive(Clone, Debug)]
pub struct TimedFrames {
    /// The frames in presentation order (all of the window's, or the subsample asked for).
    pub frames: Vec<RgbFrame>,
    /// How many frames the window held.
    pub window_frames: usize,
}

/// The raw frames whose timestamps lie in the window, in presentation order.
fn time_range_raw(reader: &mut StreamReader, start_secs: f64, end_secs: f64) -> Result<Vec<RawFrame>, VideoError> {
    let start_pts = reader.secs_to_pts_ceil(start_secs);
    let end_pts = reader.secs_to_pts_ceil(end_secs);
    let seek_to = (start_pts - 1024).max(0);
    if seek_to > reader.start_pts {
        reader.seek_to_pts(seek_to)?;
    }
    let mut by_pts: BTreeMap<i64, RawFrame> = BTreeMap::new();
    let mut decoded_any = false;
    while let Some(raw) = reader.next_raw()? {
        decoded_any = true;
        let Some(pts) = raw.pts else { continue };
        if pts >= end_pts {
            break;
        }
        if pts >= start_pts {
            by_pts.insert(pts, raw);
        }
    }
    if !decoded_any {
        return Err(VideoError::NoFrames { path: reader.path.clone() });
    }
    Ok(by_pts.into_values().collect())
}

/// Decodes the frames whose timestamps lie in `[start_secs, end_secs)` —
/// PyTorchVideo's `EncodedVideo.get_clip` (PyAV decoder): the bounds become
/// stream timestamps rounded up, decoding starts at the key frame before
/// `start - 1024` ticks, and stops at the first frame at or past the end.
pub fn decode_time_range(
    path: &Path,
    start_secs: f64,
    end_secs: f64,
    opts: &DecodeOptions,
) -> Result<TimedFrames, VideoError> {
    let mut reader = StreamReader::open(path, opts)?;
    let raw = time_range_raw(&mut reader, start_secs, end_secs)?;
    let frames = raw.iter().map(|r| reader.to_rgb(r)).collect::<Result<Vec<_>, _>>()?;
    Ok(TimedFrames { window_frames: frames.len(), frames })
}

/// [`decode_time_range`] followed by PyTorchVideo's `UniformTemporalSubsample(n)`,
/// converting only the `n` kept frames to RGB.
pub fn decode_time_range_subsampled(
    path: &Path,
    start_secs: f64,
    end_secs: f64,
    n: usize,
    opts: &DecodeOptions,
) -> Result<TimedFrames, VideoError> {
    let mut reader = StreamReader::open(path, opts)?;
    let raw = time_range_raw(&mut reader, start_secs, end_secs)?;
    let keep = super::indices::uniform_temporal_subsample(raw.len(), n);
    let frames = keep.iter().map(|i| reader.to_rgb(&raw[*i])).collect::<Result<Vec<_>, _>>()?;
    Ok(TimedFrames { window_frames: raw.len(), frames })
}

/// Decodes every frame of the chosen stream.
pub fn decode_all(path: &Path, opts: &DecodeOptions) -> Result<Vec<RgbFrame>, VideoError> {
    let mut out = Vec::new();
    for_each_frame(path, opts, &mut |f| {
        out.push(f);
        true
    })?;
    Ok(out)
}

/// Decodes frames in order and hands each to `each` (with its presentation time)
/// until the stream ends or `each` returns false; returns how many were handed over.
/// For players: nothing is kept here, so memory is the caller's choice.
pub fn for_each_frame(
    path: &Path,
    opts: &DecodeOptions,
    each: &mut dyn FnMut(RgbFrame) -> bool,
) -> Result<usize, VideoError> {
    let mut reader = StreamReader::open(path, opts)?;
    let mut n = 0;
    while let Some(raw) = reader.next_raw()? {
        n += 1;
        if !each(reader.to_rgb(&raw)?) {
            break;
        }
    }
    if n == 0 {
        return Err(VideoError::NoFrames { path: path.into() });
    }
    Ok(n)
}

/// `n` frames spread evenly over the whole video (`np.linspace(0, frames-1, n)`),
/// and the video's decoded frame count. Decodes the stream once, converting
/// only the chosen frames; the container's frame count is used as a first
/// guess and checked against the real count at the end.
pub fn decode_uniform(path: &Path, n: usize, opts: &DecodeOptions) -> Result<(Vec<RgbFrame>, usize), VideoError> {
    decode_spread(path, n, opts, super::indices::whole_video_indices)
}

/// [`decode_uniform`] with another choice of `n` frames of a video of `t` frames:
/// `pick(t, n)` (e.g. [`super::indices::video_processor_indices`]).
pub fn decode_spread(
    path: &Path,
    n: usize,
    opts: &DecodeOptions,
    pick: fn(usize, usize) -> Vec<usize>,
) -> Result<(Vec<RgbFrame>, usize), VideoError> {
    let mut reader = StreamReader::open(path, opts)?;
    if reader.threads == 1 {
        // Frame numbers from packet timestamps (one frame per packet, checked by
        // packet_index): decode only reference frames and the wanted ones.
        if let Some((all_pts, _)) = reader.packet_index() {
            let indices = pick(all_pts.len(), n);
            let wanted: Vec<i64> = indices.iter().map(|i| all_pts[*i]).collect();
            reader.keep_pts = Some(wanted.iter().copied().collect());
            let mut by_pts: BTreeMap<i64, RgbFrame> = BTreeMap::new();
            while let Some(raw) = reader.next_raw()? {
                if let Some(p) = raw.pts.filter(|p| wanted.binary_search(p).is_ok()) {
                    by_pts.insert(p, reader.to_rgb(&raw)?);
                }
            }
            if wanted.iter().all(|p| by_pts.contains_key(p)) && reader.read_error.is_none() {
                return Ok((take_in_order(by_pts, &wanted), all_pts.len()));
            }
            // Timestamps did not line up: decode everything instead.
            reader.keep_pts = None;
            reader.read_error = None;
            reader.rewind()?;
        }
    }
    let guess = {
        let s = reader.input.stream(reader.stream_index);
        s.map(|s| s.frames().max(0) as usize).unwrap_or(0)
    };
    let guessed = pick(guess, n);
    let wanted: std::collections::BTreeSet<usize> = guessed.iter().copied().collect();
    let mut got: BTreeMap<usize, RgbFrame> = BTreeMap::new();
    let mut total = 0usize;
    while let Some(raw) = reader.next_raw()? {
        if wanted.contains(&total) {
            got.insert(total, reader.to_rgb(&raw)?);
        }
        total += 1;
    }
    if total == 0 {
        return Err(VideoError::NoFrames { path: path.into() });
    }
    let indices = pick(total, n);
    if indices.iter().all(|i| got.contains_key(i)) {
        return Ok((take_in_order(got, &indices), total));
    }
    drop(reader); // decode_indices opens its own
    Ok((decode_indices(path, &indices, opts)?, total))
}

/// Frames one after the other, numbered in presentation order, each turned
/// into RGB only when the caller wants it: for timelines over long videos and
/// for live sources, where nothing may hold the whole stream.
pub struct FrameSource {
    reader: StreamReader,
    next_index: usize,
    first_pts: Option<i64>,
}

/// One frame of a [`FrameSource`].
pub struct SourceFrame {
    /// 0-based, in presentation order.
    pub index: usize,
    /// Seconds since the source's first frame (its timestamps; else index / rate).
    pub secs: f64,
    /// The picture, when it was wanted.
    pub rgb: Option<RgbFrame>,
}

impl FrameSource {
    /// A video file's chosen stream.
    pub fn open(path: &Path, opts: &DecodeOptions) -> Result<FrameSource, VideoError> {
        Ok(FrameSource { reader: StreamReader::open(path, opts)?, next_index: 0, first_pts: None })
    }

    /// The first video stream of an already open input (a camera, a network stream).
    pub(crate) fn from_input(name: &Path, input: Input, opts: &DecodeOptions) -> Result<FrameSource, VideoError> {
        let index = super::choose_video_stream(&input, name, opts.stream)?;
        let mut reader = StreamReader::open_stream(name, input, index, opts.threads)?;
        reader.autorotate = opts.autorotate;
        reader.bound = opts.bound;
        Ok(FrameSource { reader, next_index: 0, first_pts: None })
    }

    /// The stream's frame rate (its average, else its base rate), when it states one.
    pub fn frame_rate(&self) -> Option<f64> {
        let s = self.reader.input.stream(self.reader.stream_index)?;
        [s.avg_frame_rate(), s.rate()]
            .into_iter()
            .find(|r| r.numerator() > 0 && r.denominator() > 0)
            .map(f64::from)
            .filter(|f| f.is_finite() && *f > 0.0)
    }

    /// Why reading stopped early, if it did (damaged data, a broken connection).
    pub fn read_error(&self) -> Option<&str> {
        self.reader.read_error.as_deref()
    }

    /// The next frame, in RGB when `want(index)` says so; `None` at the end.
    pub fn next(&mut self, want: impl FnOnce(usize) -> bool) -> Result<Option<SourceFrame>, VideoError> {
        let Some(raw) = self.reader.next_raw()? else { return Ok(None) };
        let index = self.next_index;
        self.next_index += 1;
        let secs = match raw.pts {
            Some(p) => {
                let first = *self.first_pts.get_or_insert(p);
                (p - first) as f64 * f64::from(self.reader.time_base)
            }
            None => index as f64 / self.frame_rate().unwrap_or(25.0),
        };
        let rgb = if want(index) { Some(self.reader.to_rgb(&raw)?) } else { None };
        Ok(Some(SourceFrame { index, secs, rgb }))
    }
}

/// Decodes every frame without colour conversion and returns how many there were (the FFmpeg-only ceiling).
pub fn decode_count_only(path: &Path, opts: &DecodeOptions) -> Result<usize, VideoError> {
    let mut reader = StreamReader::open(path, opts)?;
    Ok(count_frames(&mut reader)?.frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_frames_larger_than_any_ordinary_video_are_scaled() {
        let b = FrameBound { short_side: 224 };
        // 1080p either way, and anything with a short side within 4 x 224: untouched.
        for (w, h) in [(1920, 1080), (1080, 1920), (1920, 1920), (320, 240), (6000, 896), (897, 1920)] {
            assert_eq!(b.reduced_size(w, h), None, "{w}x{h}");
        }
        assert_eq!(b.reduced_size(4000, 4000), Some((896, 896)));
        assert_eq!(b.reduced_size(2560, 1440), Some((1593, 896)));
        assert_eq!(b.reduced_size(1440, 2560), Some((896, 1593)));
        assert_eq!(FrameBound { short_side: 320 }.reduced_size(8000, 8000), Some((1280, 1280)));
    }
}
