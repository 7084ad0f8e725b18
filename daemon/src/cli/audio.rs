//! `sotto audio …`: front end of the `sotto-audio` crate.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::json;
use sotto_audio::{
    EndpointConfig, FrontEnd, FrontEndModels, PcmEncoding, PcmFormat, Report, TriggerConfig, SAMPLE_RATE,
};

#[derive(clap::Subcommand)]
pub enum AudioCommand {
    /// List capture devices (output devices with --output).
    Devices {
        /// One JSON object per device instead of a table.
        #[arg(long)]
        json: bool,
        /// Output devices (for `sotto say --device`) instead of capture devices.
        #[arg(long)]
        output: bool,
    },
    /// Run wake-word detection on WAV files (any format) or raw PCM on stdin (`-`); prints one
    /// JSON line per file: {"file", "detections": [{"wake", "time_s", "score"}]}.
    Detect(DetectArgs),
    /// Listen on a microphone and print wake words and utterance boundaries as JSON lines.
    Listen(ListenArgs),
}

#[derive(clap::Args)]
pub struct WakeArgs {
    /// Wake words to detect (shipped: hey_jarvis, alexa, hey_mycroft, hey_rhasspy); default all.
    #[arg(long = "wake", value_name = "NAME")]
    wakes: Vec<String>,
    /// Score threshold of every selected wake word.
    #[arg(long, default_value_t = TriggerConfig::default().threshold)]
    threshold: f32,
    /// Consecutive 80 ms frames over the threshold needed to fire.
    #[arg(long, default_value_t = TriggerConfig::default().patience)]
    patience: u32,
    /// Also run VAD endpointing after each wake word and print the utterances.
    #[arg(long)]
    utterances: bool,
}

#[derive(clap::Args)]
pub struct DetectArgs {
    #[command(flatten)]
    wake: WakeArgs,
    /// Sample rate of raw PCM on stdin.
    #[arg(long, default_value_t = SAMPLE_RATE)]
    rate: u32,
    /// Channels of raw PCM on stdin.
    #[arg(long, default_value_t = 1)]
    channels: u16,
    /// Encoding of raw PCM on stdin: s16le or f32le.
    #[arg(long, default_value = "s16le")]
    encoding: String,
    /// WAV files, directories of WAV files (searched recursively), or `-` for raw PCM on stdin.
    #[arg(required = true, value_name = "FILE_OR_DIR")]
    inputs: Vec<PathBuf>,
}

#[derive(clap::Args)]
pub struct ListenArgs {
    #[command(flatten)]
    wake: WakeArgs,
    /// Capture device name (see `sotto audio devices`); default input device if omitted.
    #[arg(long, default_value = "")]
    device: String,
}

pub fn run(command: AudioCommand) -> anyhow::Result<ExitCode> {
    match command {
        AudioCommand::Devices { json, output } => devices(json, output),
        AudioCommand::Detect(args) => detect(args),
        AudioCommand::Listen(args) => listen(args),
    }
}

fn devices(as_json: bool, output: bool) -> anyhow::Result<ExitCode> {
    let devices = if output { sotto_audio::list_output_devices()? } else { sotto_audio::list_devices()? };
    if devices.is_empty() && !as_json {
        eprintln!("no {} devices found", if output { "output" } else { "capture" });
    }
    for d in devices {
        if as_json {
            println!("{}", serde_json::to_string(&d)?);
        } else {
            println!(
                "{}{}  {}",
                if d.default { "* " } else { "  " },
                d.name,
                d.config.as_deref().unwrap_or("(no default configuration)")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Models from the store, ONNX Runtime loaded, front end built.
fn load_front_end(args: &WakeArgs) -> anyhow::Result<FrontEnd> {
    let store = sotto_models::Store::open()?;
    let runtime = store.path(sotto_audio::ONNXRUNTIME_ID).context("ONNX Runtime (model `onnxruntime`)")?;
    sotto_audio::init_onnx_runtime(&runtime)?;
    let wakes: Vec<String> = if args.wakes.is_empty() {
        sotto_audio::SHIPPED_WAKE_WORDS.iter().map(|s| s.to_string()).collect()
    } else {
        args.wakes.clone()
    };
    let trigger = TriggerConfig { threshold: args.threshold, patience: args.patience, ..TriggerConfig::default() };
    let models = FrontEndModels::resolve(&wakes, &trigger, |id| store.path(id))?;
    Ok(FrontEnd::load(&models, EndpointConfig::default())?)
}

fn wav_files(input: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if input.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(input)
            .with_context(|| format!("reading directory {}", input.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for e in entries {
            if e.is_dir() || e.extension().is_some_and(|x| x.eq_ignore_ascii_case("wav")) {
                wav_files(&e, out)?;
            }
        }
    } else {
        out.push(input.to_path_buf());
    }
    Ok(())
}

/// One output line; fields in this order (`file` first) for people reading the output.
#[derive(serde::Serialize)]
struct FileLine<'a> {
    file: &'a str,
    detections: Vec<DetectionLine<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    utterances: Option<Vec<UtteranceLine>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    no_speech_after_s: Option<Vec<f64>>,
}

#[derive(serde::Serialize)]
struct DetectionLine<'a> {
    wake: &'a str,
    time_s: f64,
    score: f64,
}

#[derive(serde::Serialize)]
struct UtteranceLine {
    start_s: f64,
    end_s: f64,
    truncated: bool,
}

fn report_json(file: &str, report: &Report, with_utterances: bool) -> String {
    let s = |samples: u64| round3(samples as f64 / SAMPLE_RATE as f64);
    let line = FileLine {
        file,
        detections: report
            .detections
            .iter()
            .map(|d| DetectionLine { wake: &d.wake, time_s: s(d.sample), score: round3(d.score as f64) })
            .collect(),
        utterances: with_utterances.then(|| {
            report
                .utterances
                .iter()
                .map(|u| UtteranceLine { start_s: s(u.start_sample), end_s: s(u.end_sample), truncated: u.truncated })
                .collect()
        }),
        no_speech_after_s: with_utterances.then(|| report.no_speech.iter().map(|&w| s(w)).collect()),
    };
    serde_json::to_string(&line).expect("plain data serialises")
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn detect(args: DetectArgs) -> anyhow::Result<ExitCode> {
    let mut front = load_front_end(&args.wake)?;
    let mut files = Vec::new();
    for input in &args.inputs {
        wav_files(input, &mut files)?;
    }
    let mut failed = 0;
    for file in files {
        front.reset()?;
        let name = file.display().to_string();
        let result = if name == "-" {
            let format = PcmFormat {
                sample_rate: args.rate,
                channels: args.channels,
                encoding: args.encoding.parse::<PcmEncoding>()?,
            };
            run_pcm_stdin(&mut front, format)
        } else {
            sotto_audio::read_wav(&file).and_then(|samples| sotto_audio::run_samples(&mut front, &samples))
        };
        match result {
            Ok(report) => println!("{}", report_json(&name, &report, args.wake.utterances)),
            Err(e) => {
                failed += 1;
                println!("{}", json!({"file": name, "error": e.to_string()}));
                tracing::error!(file = %name, error = %e, "cannot process");
            }
        }
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn run_pcm_stdin(front: &mut FrontEnd, format: PcmFormat) -> Result<Report, sotto_audio::AudioError> {
    let mut reader = sotto_audio::PcmReader::new(std::io::stdin().lock(), format)?;
    let mut all = Vec::new();
    while let Some(block) = reader.next_block()? {
        all.extend(block);
    }
    sotto_audio::run_samples(front, &all)
}

fn listen(args: ListenArgs) -> anyhow::Result<ExitCode> {
    let mut front = load_front_end(&args.wake)?;
    let cfg = sotto_audio::CaptureConfig { device: args.device.clone(), ..Default::default() };
    let mut capture = sotto_audio::Capture::start(cfg)?;
    let sr = SAMPLE_RATE as f64;
    let mut last_state = String::new();
    loop {
        let block = capture.read(std::time::Duration::from_millis(200))?;
        let status = capture.status();
        if status.state != last_state {
            eprintln!(
                "capture: {} {}",
                status.state,
                status.device.as_deref().or(status.last_error.as_deref()).unwrap_or("")
            );
            last_state = status.state.clone();
        }
        for event in front.feed(&block)? {
            let line = match event {
                sotto_audio::Event::Wake(d) => {
                    json!({"wake": d.wake, "time_s": round3(d.sample as f64 / sr), "score": round3(d.score as f64)})
                }
                sotto_audio::Event::Utterance(u) => {
                    json!({"utterance": {"start_s": round3(u.start_sample as f64 / sr), "end_s": round3(u.end_sample as f64 / sr)}})
                }
                sotto_audio::Event::NoSpeech { wake_sample, .. } => {
                    json!({"no_speech_after_s": round3(wake_sample as f64 / sr)})
                }
                sotto_audio::Event::Pause(_) => continue,
            };
            println!("{line}");
        }
    }
}
