//! Writing RGB frames as a video file with FFmpeg (MPEG-4 Part 2, yuv420p,
//! the container chosen by the file extension). Used by the offline demo to
//! make its synthetic dataset; the file is written aside and renamed into place.

use std::path::Path;

use ffmpeg_next::{codec, encoder, format, frame, software::scaling, Dictionary, Packet, Rational};

use super::{RgbFrame, VideoError};

/// Encodes `frames` (all the same even size) at `fps` into `path`.
pub fn encode_rgb(path: &Path, frames: &[RgbFrame], fps: u32) -> Result<(), VideoError> {
    super::init();
    let err = |context: &'static str| move |source| VideoError::Ffmpeg { path: path.into(), context, source };
    let Some(first) = frames.first() else { return Err(VideoError::NoFrames { path: path.into() }) };
    let (w, h) = (first.width, first.height);
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("mp4").to_string();
    let tmp = path.with_extension(format!("partial.{ext}"));
    let result = (|| {
        let mut octx = format::output(&tmp).map_err(err("opening the output"))?;
        let global_header = octx.format().flags().contains(format::Flags::GLOBAL_HEADER);
        let codec = encoder::find(codec::Id::MPEG4)
            .ok_or(VideoError::UnsupportedCodec { path: path.into(), codec: "mpeg4 (encoder)".into() })?;
        let mut ost = octx.add_stream(codec).map_err(err("adding the stream"))?;
        let mut enc =
            codec::context::Context::new_with_codec(codec).encoder().video().map_err(err("creating the encoder"))?;
        let time_base = Rational(1, fps as i32);
        enc.set_width(w);
        enc.set_height(h);
        enc.set_format(format::Pixel::YUV420P);
        enc.set_time_base(time_base);
        enc.set_frame_rate(Some(Rational(fps as i32, 1)));
        enc.set_gop(12);
        enc.set_max_b_frames(0);
        // Fixed quantiser 2 (near lossless): the demo's motion cues survive encoding.
        let mut flags = codec::Flags::QSCALE;
        if global_header {
            flags |= codec::Flags::GLOBAL_HEADER;
        }
        enc.set_flags(flags);
        enc.set_global_quality(2 * 118); // FF_QP2LAMBDA * 2
        let mut enc = enc.open_with(Dictionary::new()).map_err(err("opening the encoder"))?;
        ost.set_parameters(&enc);
        ost.set_time_base(time_base);
        octx.write_header().map_err(err("writing the header"))?;
        let ost_tb = octx.stream(0).map(|s| s.time_base()).unwrap_or(time_base);
        let mut scaler =
            scaling::Context::get(format::Pixel::RGB24, w, h, format::Pixel::YUV420P, w, h, scaling::Flags::BILINEAR)
                .map_err(err("creating the scaler"))?;
        let drain = |enc: &mut encoder::Video, octx: &mut format::context::Output| -> Result<(), VideoError> {
            let mut pkt = Packet::empty();
            while enc.receive_packet(&mut pkt).is_ok() {
                pkt.set_stream(0);
                pkt.set_duration(1);
                pkt.rescale_ts(time_base, ost_tb);
                pkt.write_interleaved(octx).map_err(err("writing a packet"))?;
            }
            Ok(())
        };
        for (i, f) in frames.iter().enumerate() {
            let mut rgb = frame::Video::new(format::Pixel::RGB24, w, h);
            let stride = rgb.stride(0);
            let row = w as usize * 3;
            for y in 0..h as usize {
                rgb.data_mut(0)[y * stride..y * stride + row].copy_from_slice(&f.data[y * row..(y + 1) * row]);
            }
            let mut yuv = frame::Video::empty();
            scaler.run(&rgb, &mut yuv).map_err(err("converting to yuv420p"))?;
            yuv.set_pts(Some(i as i64));
            enc.send_frame(&yuv).map_err(err("encoding"))?;
            drain(&mut enc, &mut octx)?;
        }
        enc.send_eof().map_err(err("flushing the encoder"))?;
        drain(&mut enc, &mut octx)?;
        octx.write_trailer().map_err(err("writing the trailer"))?;
        Ok(())
    })();
    match result {
        Ok(()) => std::fs::rename(&tmp, path).map_err(|_| VideoError::NotFound { path: path.into() }),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}
