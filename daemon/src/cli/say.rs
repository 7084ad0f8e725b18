//! `sotto say`: front end of the `sotto-tts` crate — speak a text on a loudspeaker, or write it
//! to a WAV file or stdout.

use std::io::{Read as _, Write as _};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::json;
use sotto_tts::{Voice, VoiceOptions, DEFAULT_VOICE};

#[derive(clap::Args)]
pub struct SayArgs {
    /// The text to speak (several words are joined with spaces); `-` reads it from stdin.
    #[arg(required = true, num_args = 1.., value_name = "TEXT")]
    text: Vec<String>,
    /// Write the audio to this WAV file instead of playing it; `-` writes to stdout.
    #[arg(long, short, value_name = "FILE.wav|-")]
    output: Option<PathBuf>,
    /// With --output: raw mono 16-bit little-endian PCM at the voice's rate instead of WAV,
    /// written sentence by sentence as it is synthesised (for pipes).
    #[arg(long, requires = "output")]
    raw: bool,
    /// Voice id in the model store (see `sotto models list`, role tts).
    #[arg(long, default_value = DEFAULT_VOICE)]
    voice: String,
    /// Output device name as `sotto audio devices --output` lists it (exact or a unique substring);
    /// default output device if omitted.
    #[arg(long, default_value = "", conflicts_with = "output")]
    device: String,
    /// espeak-ng data directory; default $SOTTO_ESPEAK_DATA, else the system's.
    #[arg(long, value_name = "DIR")]
    espeak_data: Option<PathBuf>,
    /// ONNX Runtime threads for the voice model.
    #[arg(long, default_value_t = VoiceOptions::default().threads)]
    threads: usize,
}

/// Where the audio goes.
enum Sink {
    Speaker(Box<sotto_audio::Playback>),
    Wav { path: Option<PathBuf>, samples: Vec<f32> },
    Raw(Box<dyn std::io::Write>),
}

pub fn say(args: SayArgs) -> anyhow::Result<ExitCode> {
    let text = if args.text == ["-"] {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("reading the text from stdin")?;
        s
    } else {
        args.text.join(" ")
    };
    // Before loading anything: an empty or oversized text, or an output nowhere to write, fails at once.
    sotto_tts::check_text(&text)?;
    if let Some(dir) = args.output.as_deref().filter(|p| p.as_os_str() != "-").and_then(|p| p.parent()) {
        if !dir.as_os_str().is_empty() && !dir.is_dir() {
            anyhow::bail!("cannot write {}: no directory {}", args.output.as_ref().unwrap().display(), dir.display());
        }
    }
    let mut opts = VoiceOptions { threads: args.threads, ..Default::default() };
    if let Some(dir) = args.espeak_data {
        opts.espeak_data = dir;
    }
    let store = sotto_models::Store::open()?;
    let mut voice = Voice::from_store(&store, &args.voice, &opts)?;
    let rate = voice.sample_rate();
    let to_stdout = args.output.as_deref().is_some_and(|p| p.as_os_str() == "-");
    let mut sink = match (&args.output, args.raw) {
        (None, _) => Sink::Speaker(Box::new(sotto_audio::Playback::open(&args.device, rate)?)),
        (Some(_), true) if to_stdout => Sink::Raw(Box::new(std::io::stdout().lock())),
        (Some(path), true) => {
            let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
            Sink::Raw(Box::new(std::io::BufWriter::new(f)))
        }
        (Some(path), false) => Sink::Wav { path: (!to_stdout).then(|| path.clone()), samples: Vec::new() },
    };
    let mut failure: Option<anyhow::Error> = None;
    let report = voice.speak(&text, |chunk| {
        let written: anyhow::Result<()> = match &mut sink {
            Sink::Speaker(p) => p.write(chunk).map_err(Into::into),
            Sink::Wav { samples, .. } => {
                samples.extend_from_slice(chunk);
                Ok(())
            }
            Sink::Raw(w) => w.write_all(&sotto_tts::wav::raw_s16le(chunk)).and_then(|()| w.flush()).map_err(Into::into),
        };
        match written {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                failure = Some(e);
                ControlFlow::Break(())
            }
        }
    })?;
    if let Some(e) = failure {
        return Err(e.context("writing the audio"));
    }
    let output = match sink {
        Sink::Speaker(p) => {
            let device = p.device().to_string();
            p.finish()?;
            format!("device {device}")
        }
        Sink::Wav { path: Some(path), samples } => {
            sotto_tts::wav::write_wav(&path, &samples, rate)?;
            path.display().to_string()
        }
        Sink::Wav { path: None, samples } => {
            let mut out = std::io::stdout().lock();
            out.write_all(&sotto_tts::wav::encode_wav(&samples, rate))
                .and_then(|()| out.flush())
                .context("writing to stdout")?;
            "-".to_string()
        }
        Sink::Raw(mut w) => {
            w.flush().context("writing the audio")?;
            args.output.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
        }
    };
    let seconds = report.samples as f64 / rate as f64;
    let summary = json!({
        "voice": voice.id(),
        "output": output,
        "sentences": report.sentences,
        "audio_s": (seconds * 1000.0).round() / 1000.0,
        "sample_rate": rate,
        "first_audio_ms": (report.first_audio.as_secs_f64() * 1e4).round() / 10.0,
        "real_time_factor": if seconds > 0.0 { (report.synthesis.as_secs_f64() / seconds * 1e4).round() / 1e4 } else { 0.0 },
    });
    // stdout carries the audio with `--output -`: the summary goes to the log then.
    if to_stdout {
        tracing::info!(%summary, "spoken");
    } else {
        println!("{summary}");
    }
    Ok(ExitCode::SUCCESS)
}
