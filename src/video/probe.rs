//! `probe`: what a video file holds, with the frame count a decoder really yields.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::decode::{count_frames, StreamReader};
use super::{open_input, VideoError};

/// The longest a stream's duration may give each decoded frame on average:
/// even a slideshow does not hold a picture for an hour.
const MAX_SECONDS_PER_FRAME: f64 = 3600.0;

/// What `probe` learns about a video file's chosen video stream.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct VideoInfo {
    /// The file.
    pub path: PathBuf,
    /// Container format, FFmpeg's short name (e.g. `avi`, `mov,mp4,m4a,3gp,3g2,mj2`).
    pub container: String,
    /// Codec short name (e.g. `mpeg4`, `h264`, `vp9`).
    pub codec: String,
    /// Index in the container of the video stream read: the first video stream unless one was asked for.
    pub stream_index: usize,
    /// How many video streams the container has (attached pictures excluded).
    pub video_streams: usize,
    /// Coded width in pixels, before rotation.
    pub width: u32,
    /// Coded height in pixels, before rotation.
    pub height: u32,
    /// Clockwise rotation applied for display (0, 90, 180, 270), from the display matrix.
    pub rotation: i32,
    /// Frame rate as a fraction `[numerator, denominator]` (average rate, else the stream's base rate).
    pub fps_rational: [i32; 2],
    /// Frame rate as a float.
    pub fps: f64,
    /// Duration of the video stream in seconds (header; else frames / fps).
    pub duration_s: f64,
    /// Duration of the first audio stream in seconds, if any.
    pub audio_duration_s: Option<f64>,
    /// Frames the decoder yields, counted by decoding (what `ffprobe -count_frames` reports).
    pub frames: usize,
    /// The container's own frame count, when it states one.
    pub header_frames: Option<u64>,
    /// True when the stream's timestamps are not evenly spaced (variable frame rate).
    pub variable_frame_rate: bool,
    /// Problems found while reading that did not stop it (e.g. a truncated file).
    pub warnings: Vec<String>,
}

impl VideoInfo {
    /// Width after rotation: what a viewer shows.
    pub fn display_width(&self) -> u32 {
        if self.rotation % 180 == 90 {
            self.height
        } else {
            self.width
        }
    }

    /// Height after rotation.
    pub fn display_height(&self) -> u32 {
        if self.rotation % 180 == 90 {
            self.width
        } else {
            self.height
        }
    }

    /// The duration clip samplers work with: the video stream's, as
    /// PyTorchVideo's `EncodedVideo.duration` with `decode_audio=False`
    /// (the guide's setting).
    pub fn sampling_duration_s(&self) -> f64 {
        self.duration_s
    }
}

/// Reads a file's container and stream facts and counts its frames by decoding them.
///
/// The frame count is exact (the decoder's yield); a file that stops early
/// still probes, with a warning naming how far it got.
pub fn probe(path: &Path) -> Result<VideoInfo, VideoError> {
    probe_stream(path, None)
}

/// [`probe`] of stream `stream` (its index in the container), or of the first
/// video stream when `None`. A file with several video streams gets a warning
/// that names them and the one read.
pub fn probe_stream(path: &Path, wanted: Option<usize>) -> Result<VideoInfo, VideoError> {
    let input = open_input(path)?;
    let container = input.format().name().to_string();
    let stream_index = super::choose_video_stream(&input, path, wanted)?;
    let all_video = super::video_streams(&input);
    let video_streams = all_video.len();
    let stream = input.stream(stream_index).ok_or_else(|| VideoError::NoVideoStream { path: path.into() })?;
    let tb = stream.time_base();
    let rotation = super::stream_rotation(&stream);
    let header_frames = (stream.frames() > 0).then_some(stream.frames() as u64);
    let rate = {
        let avg = stream.avg_frame_rate();
        if avg.numerator() > 0 && avg.denominator() > 0 {
            avg
        } else {
            stream.rate()
        }
    };
    let stream_duration =
        (stream.duration() > 0 && tb.denominator() > 0).then(|| stream.duration() as f64 * f64::from(tb));
    let audio_duration_s =
        input.streams().find(|s| s.parameters().medium() == ffmpeg_next::media::Type::Audio).and_then(|s| {
            let atb = s.time_base();
            (s.duration() > 0 && atb.denominator() > 0).then(|| s.duration() as f64 * f64::from(atb))
        });
    let container_duration =
        (input.duration() > 0).then(|| input.duration() as f64 / f64::from(ffmpeg_next::ffi::AV_TIME_BASE));
    drop(stream);

    let mut reader = StreamReader::open_stream(path, input, stream_index, 0)?;
    let codec = reader.codec_name();
    let (width, height) = reader.coded_size();
    let counted = count_frames(&mut reader)?;
    if counted.frames == 0 {
        return Err(VideoError::NoFrames { path: path.into() });
    }
    let mut warnings = Vec::new();
    warnings.extend(super::stream_note(stream_index, &all_video, wanted.is_some()));
    if let Some(err) = &counted.read_error {
        warnings.push(format!("reading stopped early after {} frames: {err}", counted.frames));
    }
    if let Some(h) = header_frames {
        if h as usize != counted.frames {
            warnings.push(format!("the container says {h} frames; {} were decodable", counted.frames));
        }
    }

    let mut fps_rational = [rate.numerator(), rate.denominator()];
    let mut fps = if rate.denominator() > 0 { f64::from(rate) } else { 0.0 };
    if !(fps.is_finite() && fps > 0.0) {
        // Raw elementary streams may state no rate at all: derive it from timestamps, else assume 25 (FFmpeg's default).
        fps = counted.mean_fps().unwrap_or(25.0);
        fps_rational = [(fps * 1000.0).round() as i32, 1000];
    }
    let duration_s =
        stream_duration.or(counted.span_secs(fps)).or(container_duration).unwrap_or(counted.frames as f64 / fps);
    let per_frame = duration_s / counted.frames as f64;
    if !(per_frame.is_finite() && per_frame <= MAX_SECONDS_PER_FRAME) {
        return Err(VideoError::ImplausibleTiming { path: path.into(), frames: counted.frames, duration_s });
    }

    Ok(VideoInfo {
        path: path.into(),
        container,
        codec,
        stream_index,
        video_streams,
        width,
        height,
        rotation,
        fps_rational,
        fps,
        duration_s,
        audio_duration_s,
        frames: counted.frames,
        header_frames,
        variable_frame_rate: counted.variable,
        warnings,
    })
}
