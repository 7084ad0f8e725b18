//! The whole front end (wake word → Silero VAD → endpointing) on the generated fixtures, against
//! the manifest's known timings; format twins; broken files.

mod common;

use sotto_audio::{process_file, AudioError, EndpointConfig, Report, TriggerConfig};

const SR: f64 = 16_000.0;
/// Utterance boundaries must be this close to the command's speech.
const BOUNDARY_TOLERANCE_S: f64 = 0.150;
/// The detector fires after the wake word's end (the model peaks on its end) but before this.
const MAX_WAKE_LATENCY_S: f64 = 0.6;

fn run(file: &str) -> Report {
    let models = common::models(&TriggerConfig::default());
    process_file(&common::fixtures().join(file), &models, EndpointConfig::default())
        .unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn describe(r: &Report) -> String {
    let d: Vec<String> =
        r.detections.iter().map(|d| format!("{} at {:.3}s ({:.3})", d.wake, d.sample as f64 / SR, d.score)).collect();
    let u: Vec<String> = r
        .utterances
        .iter()
        .map(|u| format!("{:.3}-{:.3}s", u.start_sample as f64 / SR, u.end_sample as f64 / SR))
        .collect();
    format!("detections [{}], utterances [{}], no speech after {:?}", d.join(", "), u.join(", "), r.no_speech)
}

#[test]
fn each_positive_gives_one_detection_and_one_utterance_on_the_command() {
    let positives: Vec<_> = common::manifest().into_iter().filter(|f| f.kind == "positive").collect();
    assert!(positives.len() >= 6, "only {} positive fixtures", positives.len());
    let mut failures = Vec::new();
    for f in &positives {
        let r = run(&f.file);
        eprintln!("{}: {}", f.file, describe(&r));
        let (wake_start, wake_end) = (f.wake_start_s.unwrap(), f.wake_end_s.unwrap());
        let (speech_start, speech_end) = (f.speech_start_s.unwrap(), f.speech_end_s.unwrap());
        let ok_detection = matches!(&r.detections[..], [d] if Some(&d.wake) == f.wake.as_ref()
            && (wake_start..=wake_end + MAX_WAKE_LATENCY_S).contains(&(d.sample as f64 / SR)));
        let ok_utterance = matches!(&r.utterances[..], [u]
            if (u.start_sample as f64 / SR - speech_start).abs() <= BOUNDARY_TOLERANCE_S
            && (u.end_sample as f64 / SR - speech_end).abs() <= BOUNDARY_TOLERANCE_S
            && u.samples.len() as u64 == u.end_sample - u.start_sample);
        if !ok_detection || !ok_utterance || !r.no_speech.is_empty() {
            failures.push(format!(
                "{}: want {:?} in {wake_start:.3}..{:.3}s and speech {speech_start:.3}-{speech_end:.3}s; got {}",
                f.file,
                f.wake,
                wake_end + MAX_WAKE_LATENCY_S,
                describe(&r)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn negatives_give_no_detection() {
    let negatives: Vec<_> = common::manifest().into_iter().filter(|f| f.kind == "negative").collect();
    assert!(negatives.len() >= 4);
    for f in &negatives {
        let r = run(&f.file);
        eprintln!("{}: {}", f.file, describe(&r));
        assert!(r.detections.is_empty() && r.utterances.is_empty(), "{}: {}", f.file, describe(&r));
    }
}

#[test]
fn other_rates_channels_and_float_give_the_same_result_as_the_16k_twin() {
    let twins: Vec<_> = common::manifest().into_iter().filter(|f| f.kind == "twin").collect();
    assert!(twins.len() >= 2);
    for t in &twins {
        let a = run(t.twin_of.as_ref().unwrap());
        let b = run(&t.file);
        eprintln!("{}: {}\n  twin of {}", t.file, describe(&b), describe(&a));
        assert_eq!(a.detections.len(), b.detections.len(), "{}", t.file);
        for (x, y) in a.detections.iter().zip(&b.detections) {
            assert_eq!(x.wake, y.wake);
            // Same 80 ms frame, or the neighbouring one.
            assert!(x.sample.abs_diff(y.sample) <= 1280, "{}: {} vs {}", t.file, x.sample, y.sample);
        }
        assert_eq!(a.utterances.len(), b.utterances.len(), "{}", t.file);
        for (x, y) in a.utterances.iter().zip(&b.utterances) {
            assert!(x.start_sample.abs_diff(y.start_sample) as f64 / SR <= 0.064, "{}: start", t.file);
            assert!(x.end_sample.abs_diff(y.end_sample) as f64 / SR <= 0.064, "{}: end", t.file);
        }
        assert!(a.samples.abs_diff(b.samples) <= 1, "{}: {} vs {} samples", t.file, a.samples, b.samples);
    }
}

fn read_err(bytes: &[u8]) -> AudioError {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.wav");
    std::fs::write(&path, bytes).unwrap();
    sotto_audio::read_wav(&path).expect_err("must fail")
}

#[test]
fn broken_files_give_clear_errors() {
    let empty = read_err(b"").to_string();
    assert!(empty.contains("empty") && empty.contains("bad.wav"), "{empty}");

    let good = std::fs::read(common::fixtures().join("neg_home_lights.wav")).unwrap();
    let truncated = read_err(&good[..30]).to_string();
    assert!(truncated.contains("truncated") && truncated.contains("bad.wav"), "{truncated}");

    let text = read_err(b"{\"this\": \"is json, not audio\"}\n").to_string();
    assert!(text.contains("not a WAV file") && text.contains("bad.wav"), "{text}");

    let missing = sotto_audio::read_wav(std::path::Path::new("/nonexistent/x.wav")).unwrap_err().to_string();
    assert!(missing.contains("/nonexistent/x.wav"), "{missing}");
}

#[test]
fn a_data_chunk_cut_short_is_read_up_to_the_cut() {
    let good = std::fs::read(common::fixtures().join("neg_home_lights.wav")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.wav");
    std::fs::write(&path, &good[..good.len() / 2]).unwrap();
    let samples = sotto_audio::read_wav(&path).unwrap();
    assert_eq!(samples.len(), (good.len() / 2 - 44) / 2);
}

#[test]
fn raw_pcm_stream_reads_like_the_same_wav() {
    // The 8 kHz stereo twin: its data chunk, fed as raw s16le in odd pieces, equals the WAV reading.
    let path = common::fixtures().join("twin_jarvis_vehicle_temp_8k_stereo.wav");
    let bytes = std::fs::read(&path).unwrap();
    let data_at = bytes.windows(4).position(|w| w == b"data").unwrap() + 8;
    struct Dribble<'a>(&'a [u8]);
    impl std::io::Read for Dribble<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(1001);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let format = sotto_audio::PcmFormat { sample_rate: 8000, channels: 2, encoding: sotto_audio::PcmEncoding::S16le };
    let mut reader = sotto_audio::PcmReader::new(Dribble(&bytes[data_at..]), format).unwrap();
    let mut got = Vec::new();
    while let Some(block) = reader.next_block().unwrap() {
        got.extend(block);
    }
    let want = sotto_audio::read_wav(&path).unwrap();
    assert_eq!(got.len(), want.len());
    let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(worst < 1e-5, "max difference {worst}");
}

#[test]
fn block_size_does_not_change_the_result_and_listen_now_needs_no_wake_word() {
    let models = common::models(&TriggerConfig::default());
    let samples = sotto_audio::read_wav(&common::fixtures().join("pos_alexa_home_thermostat.wav")).unwrap();
    let mut front = sotto_audio::FrontEnd::load(&models, EndpointConfig::default()).unwrap();
    let whole = sotto_audio::run_samples(&mut front, &samples).unwrap();
    for block in [160usize, 1280, 7777, samples.len()] {
        front.reset().unwrap();
        let mut events = Vec::new();
        for piece in samples.chunks(block) {
            events.extend(front.feed(piece).unwrap());
        }
        events.extend(front.finish());
        let wakes: Vec<_> = events
            .iter()
            .filter_map(|e| if let sotto_audio::Event::Wake(d) = e { Some(d.sample) } else { None })
            .collect();
        let utts: Vec<_> = events
            .iter()
            .filter_map(|e| {
                if let sotto_audio::Event::Utterance(u) = e {
                    Some((u.start_sample, u.end_sample))
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(wakes, whole.detections.iter().map(|d| d.sample).collect::<Vec<_>>(), "block {block}");
        assert_eq!(
            utts,
            whole.utterances.iter().map(|u| (u.start_sample, u.end_sample)).collect::<Vec<_>>(),
            "block {block}"
        );
    }

    // A follow-up answer: no wake word in the file, listening starts at once.
    let f = common::manifest().into_iter().find(|f| f.file == "neg_home_lights.wav").unwrap();
    let samples = sotto_audio::read_wav(&common::fixtures().join(&f.file)).unwrap();
    front.reset().unwrap();
    let mut events = front.listen_now().unwrap();
    events.extend(front.feed(&samples).unwrap());
    events.extend(front.finish());
    // Pauses inside the answer (speculative transcription points) aside.
    events.retain(|e| !matches!(e, sotto_audio::Event::Pause(_)));
    match &events[..] {
        [sotto_audio::Event::Utterance(u)] => {
            assert!((u.start_sample as f64 / SR - f.speech_start_s.unwrap()).abs() <= BOUNDARY_TOLERANCE_S, "{u:?}");
            assert!((u.end_sample as f64 / SR - f.speech_end_s.unwrap()).abs() <= BOUNDARY_TOLERANCE_S, "{u:?}");
        }
        other => panic!("expected one utterance, got {} events", other.len()),
    }
}
