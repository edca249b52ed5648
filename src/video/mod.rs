//! Video files: probing and frame decoding over FFmpeg (ffmpeg-next).
//!
//! This module owns every call into FFmpeg; nothing else in vidi touches it.
//! Frames come out as tightly packed RGB24 ([`RgbFrame`]), whatever the
//! decoder's pixel format and line stride. Frame *indices* count the frames a
//! decoder yields from the start of the chosen stream, in presentation order —
//! the numbering PyAV's `container.decode(video=0)` and the transformers
//! pipeline use.

mod budget;
mod decode;
mod encode;
pub mod indices;
mod probe;

use std::path::{Path, PathBuf};
use std::sync::Once;

pub use decode::{
    decode_all, decode_count_only, decode_indices, decode_spread, decode_time_range, decode_time_range_subsampled,
    decode_uniform, for_each_frame, DecodeOptions, FrameBound, FrameSource, SourceFrame, TimedFrames,
};
pub use encode::encode_rgb;
pub use probe::{probe, probe_stream, VideoInfo};

/// Something went wrong reading a video. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    /// The path does not exist.
    #[error("{path}: no such file")]
    NotFound {
        /// The path that was asked for.
        path: PathBuf,
    },
    /// The path names a FIFO, a device or a socket, not a video file: opening
    /// a FIFO nobody writes to would wait forever.
    #[error("{path}: not a regular file ({kind})")]
    NotRegularFile {
        /// The path.
        path: PathBuf,
        /// What it is instead, e.g. "a FIFO".
        kind: &'static str,
    },
    /// The file exists but FFmpeg cannot read it as a media container.
    #[error("{path}: not a video FFmpeg can read ({source})")]
    NotAVideo {
        /// The file.
        path: PathBuf,
        /// FFmpeg's reason.
        #[source]
        source: ffmpeg_next::Error,
    },
    /// The container holds no video stream (audio only, subtitles, ...).
    #[error("{path}: the file has no video stream")]
    NoVideoStream {
        /// The file.
        path: PathBuf,
    },
    /// The requested stream index does not exist or is not video.
    #[error("{path}: stream {index} is not a video stream (its video streams: {video_streams})")]
    BadStream {
        /// The file.
        path: PathBuf,
        /// The stream index asked for.
        index: usize,
        /// The file's video stream indices, e.g. "0, 3" ("none" when there are none).
        video_streams: String,
    },
    /// This FFmpeg build has no decoder for the stream's codec.
    #[error("{path}: no decoder for codec '{codec}' in this FFmpeg")]
    UnsupportedCodec {
        /// The file.
        path: PathBuf,
        /// The codec's short name.
        codec: String,
    },
    /// The stream decodes to nothing at all.
    #[error("{path}: no frame could be decoded")]
    NoFrames {
        /// The file.
        path: PathBuf,
    },
    /// The stream's timing cannot be right: its frames would be more than an
    /// hour apart (a damaged header or time base). Clip samplers would lay
    /// out millions of windows over such a duration.
    #[error("{path}: the file says its {frames} frames last {duration_s} s, over an hour a frame (damaged timing)")]
    ImplausibleTiming {
        /// The file.
        path: PathBuf,
        /// Frames decoded.
        frames: usize,
        /// The duration the file states.
        duration_s: f64,
    },
    /// Frames were asked for past the end of what is decodable.
    #[error(
        "{path}: frame {wanted} was asked for but only {readable} frames are readable (file truncated or damaged?)"
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// The highest frame index asked for.
        wanted: usize,
        /// How many frames could be decoded.
        readable: usize,
    },
    /// Any other FFmpeg failure, with what vidi was doing at the time.
    #[error("{path}: {context}: {source}")]
    Ffmpeg {
        /// The file.
        path: PathBuf,
        /// What was being done.
        context: &'static str,
        /// FFmpeg's error.
        #[source]
        source: ffmpeg_next::Error,
    },
    /// A clip could not be made from what was decoded.
    #[error("{path}: {message}")]
    Clip {
        /// The file.
        path: PathBuf,
        /// Why, without the path.
        message: String,
    },
}

/// One decoded picture, RGB24, rows packed with no padding (`data.len() == width * height * 3`).
#[derive(Clone, Debug, PartialEq)]
pub struct RgbFrame {
    /// Width in pixels (after rotation, when rotation is applied).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `height` rows of `width * 3` bytes, R, G, B.
    pub data: Vec<u8>,
    /// Presentation time in seconds from the stream's start, when known.
    pub time_secs: Option<f64>,
}

impl RgbFrame {
    /// The pixel at (x, y) as [r, g, b].
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = ((y * self.width + x) * 3) as usize;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// Rotates the picture clockwise by a multiple of 90 degrees.
    pub fn rotated_clockwise(self, degrees: i32) -> RgbFrame {
        let turns = degrees.rem_euclid(360) / 90;
        if turns == 0 {
            return self;
        }
        let (w, h) = (self.width as usize, self.height as usize);
        let (nw, nh) = if turns % 2 == 1 { (h, w) } else { (w, h) };
        let mut out = vec![0u8; self.data.len()];
        for y in 0..h {
            for x in 0..w {
                let (nx, ny) = match turns {
                    1 => (h - 1 - y, x),
                    2 => (w - 1 - x, h - 1 - y),
                    _ => (y, w - 1 - x),
                };
                let s = (y * w + x) * 3;
                let d = (ny * nw + nx) * 3;
                out[d..d + 3].copy_from_slice(&self.data[s..s + 3]);
            }
        }
        RgbFrame { width: nw as u32, height: nh as u32, data: out, time_secs: self.time_secs }
    }
}

/// Initialises FFmpeg once per process and keeps its own logging quiet:
/// vidi reports problems itself, as typed errors. Set `VIDI_FFMPEG_LOG=1`
/// to see FFmpeg's messages.
pub(crate) fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // ffmpeg::init only registers devices on FFmpeg >= 4; failure is harmless.
        let _ = ffmpeg_next::init();
        let level = if std::env::var_os("VIDI_FFMPEG_LOG").is_some() {
            ffmpeg_next::util::log::Level::Warning
        } else {
            ffmpeg_next::util::log::Level::Fatal
        };
        ffmpeg_next::util::log::set_level(level);
    });
}

/// What `path` is when it is neither a regular file nor a directory (after
/// following links): "a FIFO", "a character device", "a block device", "a
/// socket". `None` for files, folders and paths that cannot be read.
pub fn special_file_kind(path: &Path) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let t = std::fs::metadata(path).ok()?.file_type();
    if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else if t.is_socket() {
        Some("a socket")
    } else {
        None
    }
}

/// Why an entry named like a video cannot be one, when it cannot: a FIFO or
/// device (see [`special_file_kind`]), a folder, a symbolic link to nothing or
/// a link loop. `None` for a regular file (which may still fail to decode).
pub fn not_a_file_reason(path: &Path) -> Option<String> {
    if let Some(kind) = special_file_kind(path) {
        return Some(format!("not a regular file ({kind})"));
    }
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => None,
        Ok(m) if m.is_dir() => Some("a folder, not a video file".into()),
        Ok(_) => Some("not a regular file".into()),
        Err(e) => {
            let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            Some(match (link, e.raw_os_error()) {
                (true, Some(libc::ELOOP)) => "a symbolic link that loops back on itself".into(),
                (true, _) => match std::fs::read_link(path) {
                    Ok(t) => format!("a symbolic link to {}, which does not exist", t.display()),
                    Err(_) => "a broken symbolic link".into(),
                },
                (false, _) => e.to_string(),
            })
        }
    }
}

/// Opens a container, mapping failures to typed errors. Only regular files
/// are opened: FFmpeg would block on a FIFO nobody writes to, and a device
/// (`/dev/zero`) or a socket is no video file.
pub(crate) fn open_input(path: &Path) -> Result<ffmpeg_next::format::context::Input, VideoError> {
    init();
    if !path.exists() {
        return Err(VideoError::NotFound { path: path.to_path_buf() });
    }
    if path.is_dir() {
        return Err(VideoError::NotAVideo { path: path.to_path_buf(), source: ffmpeg_next::Error::InvalidData });
    }
    if let Some(kind) = special_file_kind(path) {
        return Err(VideoError::NotRegularFile { path: path.to_path_buf(), kind });
    }
    ffmpeg_next::format::input(path).map_err(|source| VideoError::NotAVideo { path: path.to_path_buf(), source })
}

/// `msg` without a leading "PATH: " (errors name their file; a line that
/// already names it, or a field beside the path, need not repeat it).
pub fn without_path(msg: &str, path: &Path) -> String {
    let prefix = format!("{}: ", path.display());
    msg.strip_prefix(&prefix).unwrap_or(msg).to_string()
}

/// What to tell the user when a file has several video streams: which ones,
/// and which is read (`used`; `asked` when `--stream` chose it). `None` for one.
pub fn stream_note(used: usize, all: &[usize], asked: bool) -> Option<String> {
    (all.len() > 1).then(|| {
        let list = all.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ");
        let how = if asked { "" } else { " (the first; --stream N reads another)" };
        format!("{} video streams ({list}); stream {used} is read{how}", all.len())
    })
}

/// Which video stream of `path` is read for `wanted` (see [`probe_stream`]),
/// and all its video streams, from the container's header alone (nothing is decoded).
pub fn stream_choice(path: &Path, wanted: Option<usize>) -> Result<(usize, Vec<usize>), VideoError> {
    let input = open_input(path)?;
    Ok((choose_video_stream(&input, path, wanted)?, video_streams(&input)))
}

/// The video streams of a container, in container order (attached pictures,
/// such as cover art, excluded).
pub(crate) fn video_streams(input: &ffmpeg_next::format::context::Input) -> Vec<usize> {
    use ffmpeg_next::format::stream::Disposition;
    input
        .streams()
        .filter(|s| {
            s.parameters().medium() == ffmpeg_next::media::Type::Video
                && !s.disposition().contains(Disposition::ATTACHED_PIC)
        })
        .map(|s| s.index())
        .collect()
}

/// The stream to read: `wanted` when given (it must be one of the video
/// streams), else the first video stream, the one PyAV's `streams.video[0]`
/// and ffprobe's `v:0` read.
pub(crate) fn choose_video_stream(
    input: &ffmpeg_next::format::context::Input,
    path: &Path,
    wanted: Option<usize>,
) -> Result<usize, VideoError> {
    let streams = video_streams(input);
    match wanted {
        None => streams.first().copied().ok_or_else(|| VideoError::NoVideoStream { path: path.into() }),
        Some(i) if streams.contains(&i) => Ok(i),
        Some(_) if streams.is_empty() => Err(VideoError::NoVideoStream { path: path.into() }),
        Some(i) => Err(VideoError::BadStream {
            path: path.into(),
            index: i,
            video_streams: streams.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", "),
        }),
    }
}

/// Reads the display-matrix rotation of a stream, in degrees clockwise as
/// the picture must be turned to be shown upright (0, 90, 180 or 270), the
/// way the ffmpeg command line applies it.
pub(crate) fn stream_rotation(stream: &ffmpeg_next::format::stream::Stream) -> i32 {
    for side in stream.side_data() {
        if side.kind() == ffmpeg_next::codec::packet::side_data::Type::DisplayMatrix {
            let d = side.data();
            if d.len() < 36 {
                continue;
            }
            let m =
                |i: usize| i32::from_le_bytes([d[i * 4], d[i * 4 + 1], d[i * 4 + 2], d[i * 4 + 3]]) as f64 / 65536.0;
            // av_display_rotation_get: counter-clockwise angle of the matrix.
            let scale0 = m(0).hypot(m(3));
            let scale1 = m(1).hypot(m(4));
            if scale0 == 0.0 || scale1 == 0.0 {
                continue;
            }
            let ccw = -(m(1) / scale1).atan2(m(0) / scale0).to_degrees();
            // Displaying needs the inverse turn: clockwise by -ccw, i.e. the CLI's "transpose".
            let cw = (-ccw).round() as i32;
            return (cw.rem_euclid(360) + 45) / 90 * 90 % 360;
        }
    }
    0
}
