//! `sotto-stt-worker --model FILE [--threads N] [--audio-ctx-floor N]`: Whisper speech-to-text
//! (whisper.cpp via whisper-rs) as a worker process speaking the `sotto-workers` protocol.
//!
//! One utterance per request: single segment, no context carried between requests, the encoder
//! context sized to the utterance (a 3 s command does not pay for a 30 s window), whisper.cpp's
//! temperature fallback, and a guard that flags loops and stock hallucinations instead of passing
//! them on as text.

mod guard;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, bail, Context as _};
use clap::Parser as _;
use sotto_workers::frame::bytes_to_samples;
use sotto_workers::messages::{Reply, Request};
use sotto_workers::server::{log, run_worker};
use sotto_workers::word_graph::{Cursor, WordGraph};
use sotto_workers::Token;
use sotto_workers::{Hello, ModelInfo, SttTimings, TranscribeOptions, Transcript, PROTOCOL_VERSION};
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState};

const SAMPLE_RATE: usize = 16_000;
/// Encoder frames per second of audio (10 ms mel hop, stride-2 convolution).
const FRAMES_PER_SEC: usize = 50;
/// Whisper's full window: 30 s.
const MAX_AUDIO_CTX: u32 = 1500;
/// whisper.cpp refuses less than a second of audio.
const MIN_SAMPLES: usize = SAMPLE_RATE + SAMPLE_RATE / 10;
/// Smallest encoder context used (see README: shorter contexts make base repeat itself).
const DEFAULT_AUDIO_CTX_FLOOR: u32 = 384;
/// whisper.cpp keeps at most this many decoders.
const MAX_BEAMS: u32 = 8;

fn main() -> ExitCode {
    run_worker(
        |args| Args::try_parse_from(args).map_err(|e| e.to_string()),
        |args: &Args| Stt::load(args).map_err(|e| format!("{e:#}")),
        Stt::hello,
        |engine, request, body| match request {
            Request::Transcribe { options } => match engine.transcribe(options, &body) {
                Ok(t) => Reply::Transcript(t),
                Err(e) => Reply::Error { message: format!("{e:#}") },
            },
            other => Reply::Error { message: format!("the STT worker does not handle {other:?}") },
        },
    )
}

/// Arguments as the supervisor passes them: `--model FILE` first, then the config's extras.
#[derive(clap::Parser)]
#[command(no_binary_name = true, args_override_self = true)]
struct Args {
    /// The ggml Whisper model file.
    #[arg(long)]
    model: PathBuf,
    /// whisper.cpp threads; default every core but one.
    #[arg(long, default_value_t = sotto_workers::server::default_threads())]
    threads: i32,
    /// Smallest encoder context, in frames of 20 ms.
    #[arg(long, default_value_t = DEFAULT_AUDIO_CTX_FLOOR)]
    audio_ctx_floor: u32,
}

struct Stt {
    ctx: &'static WhisperContext,
    state: WhisperState,
    threads: i32,
    audio_ctx_floor: u32,
    path: String,
    load_ms: f64,
    /// Text of every ordinary token (below end-of-text); `None` for byte pieces that are not
    /// UTF-8 on their own, which a word-graph constraint never allows.
    vocab: Vec<Option<String>>,
    eot: i32,
    n_vocab: usize,
    /// The last word graph and its text: a daemon sends the same graph with every second pass,
    /// and the parsed graph keeps its frontier cache between requests.
    graph: Option<(String, std::sync::Arc<WordGraph>)>,
}

impl Stt {
    fn load(args: &Args) -> anyhow::Result<Self> {
        let t0 = Instant::now();
        check_ggml_magic(&args.model)?;
        let ctx = WhisperContext::new_with_params(&args.model, WhisperContextParameters::default()).map_err(|e| {
            anyhow!("whisper.cpp could not load {}: {e} (see the log lines above)", args.model.display())
        })?;
        // The state borrows nothing at the type level but must not outlive the context; the
        // process serves one model for its whole life.
        let ctx: &'static WhisperContext = Box::leak(Box::new(ctx));
        let state = ctx.create_state().context("allocating the whisper.cpp state")?;
        let eot = ctx.token_eot();
        let vocab = (0..eot)
            .map(|id| ctx.token_to_bytes(id).ok().and_then(|b| std::str::from_utf8(b).ok()).map(str::to_string))
            .collect();
        Ok(Self {
            vocab,
            eot,
            n_vocab: ctx.n_vocab() as usize,
            ctx,
            state,
            threads: args.threads,
            audio_ctx_floor: args.audio_ctx_floor.clamp(64, MAX_AUDIO_CTX),
            path: args.model.display().to_string(),
            load_ms: t0.elapsed().as_secs_f64() * 1e3,
            graph: None,
        })
    }

    /// The parsed graph of `text`, parsed again only when the text changed.
    fn word_graph(&mut self, text: &str) -> anyhow::Result<std::sync::Arc<WordGraph>> {
        match &self.graph {
            Some((seen, graph)) if seen == text => Ok(graph.clone()),
            _ => {
                let graph = std::sync::Arc::new(WordGraph::parse(text)?);
                self.graph = Some((text.to_string(), graph.clone()));
                Ok(graph)
            }
        }
    }

    fn hello(&self) -> Hello {
        let c = self.ctx;
        let kind = c.model_type_readable_str_lossy().map(|s| s.into_owned()).unwrap_or_else(|_| "?".into());
        let mut metadata = std::collections::BTreeMap::new();
        metadata.insert("multilingual".into(), c.is_multilingual().to_string());
        metadata.insert("ftype".into(), c.model_ftype().to_string());
        metadata.insert("n_audio_layer".into(), c.model_n_audio_layer().to_string());
        metadata.insert("n_text_layer".into(), c.model_n_text_layer().to_string());
        metadata.insert("audio_ctx_floor".into(), self.audio_ctx_floor.to_string());
        Hello {
            protocol: PROTOCOL_VERSION,
            worker: "stt".into(),
            engine: "whisper.cpp (whisper-rs 0.16)".into(),
            model: ModelInfo {
                path: self.path.clone(),
                description: format!(
                    "Whisper {kind}{}, ftype {}",
                    if c.is_multilingual() { "" } else { ".en" },
                    c.model_ftype()
                ),
                chat_template: None,
                n_ctx: c.model_n_audio_ctx() as u32,
                n_vocab: c.model_n_vocab() as u32,
                adds_bos: false,
                metadata,
            },
            load_ms: self.load_ms,
        }
    }

    /// Encoder context for `n` samples: the utterance plus a margin, never under the floor.
    fn audio_ctx_for(&self, n: usize) -> u32 {
        let frames = (n * FRAMES_PER_SEC).div_ceil(SAMPLE_RATE) as u32 + 32;
        frames.max(self.audio_ctx_floor).min(MAX_AUDIO_CTX)
    }

    fn transcribe(&mut self, options: &TranscribeOptions, body: &[u8]) -> anyhow::Result<Transcript> {
        let t0 = Instant::now();
        let mut samples = bytes_to_samples(body).map_err(|e| anyhow!(e))?;
        if samples.is_empty() {
            bail!("no audio samples");
        }
        if samples.len() > 30 * SAMPLE_RATE {
            bail!(
                "{:.1} s of audio: one request takes at most 30 s (one utterance)",
                samples.len() as f32 / SAMPLE_RATE as f32
            );
        }
        if let Some(bad) = samples.iter().position(|s| !s.is_finite()) {
            bail!("sample {bad} is not a finite number");
        }
        let audio_secs = samples.len() as f32 / SAMPLE_RATE as f32;
        if samples.len() < MIN_SAMPLES {
            samples.resize(MIN_SAMPLES, 0.0);
        }
        let sized = match options.audio_ctx {
            Some(n) => n.clamp(64, MAX_AUDIO_CTX),
            None => self.audio_ctx_for(samples.len()),
        };
        let graph = match options.word_graph.as_deref() {
            Some(text) => Some(self.word_graph(text)?),
            None => None,
        };
        let options = &TranscribeOptions { word_graph: None, ..options.clone() };
        let mut attempts = 1;
        let mut audio_ctx = sized;
        let (mut text, mut tokens) = self.run(options, graph.as_deref(), &samples, audio_ctx)?;
        let mut flagged = guard::check(&text, audio_secs);
        // A shortened encoder window is the usual cause of loops: retry once at full width. Not
        // for a constrained reading: a flagged one is refused by its caller anyway, and the retry
        // costs a full 30 s window.
        if flagged.is_some() && graph.is_none() && audio_ctx < MAX_AUDIO_CTX && options.audio_ctx.is_none() {
            log(
                "WARN",
                &format!(
                    "flagged at audio_ctx {audio_ctx} ({}); retrying with the full window",
                    flagged.as_deref().unwrap_or("")
                ),
            );
            attempts += 1;
            audio_ctx = MAX_AUDIO_CTX;
            (text, tokens) = self.run(options, graph.as_deref(), &samples, audio_ctx)?;
            flagged = guard::check(&text, audio_secs);
        }
        Ok(Transcript {
            text,
            tokens,
            flagged,
            timings: SttTimings {
                audio_ms: audio_secs as f64 * 1e3,
                total_ms: t0.elapsed().as_secs_f64() * 1e3,
                audio_ctx,
                attempts,
            },
        })
    }

    fn run(
        &mut self,
        options: &TranscribeOptions,
        graph: Option<&WordGraph>,
        samples: &[f32],
        audio_ctx: u32,
    ) -> anyhow::Result<(String, Vec<Token>)> {
        let strategy = match options.beam_size {
            // The constraint's probability bookkeeping follows one decoder.
            Some(beams) if beams > 1 && graph.is_none() => {
                SamplingStrategy::BeamSearch { beam_size: beams.min(MAX_BEAMS) as i32, patience: -1.0 }
            }
            _ => SamplingStrategy::Greedy { best_of: 1 },
        };
        let mut params = FullParams::new(strategy);
        params.set_n_threads(self.threads);
        params.set_language(options.language.as_deref());
        params.set_detect_language(false);
        if let Some(prompt) = options.initial_prompt.as_deref().filter(|p| !p.is_empty()) {
            params.set_initial_prompt(prompt);
        }
        params.set_audio_ctx(audio_ctx as i32);
        params.set_single_segment(true);
        params.set_no_context(true);
        if graph.is_some() {
            // A graph with free-text slots lets a forced reading run on; people say at most
            // about four words a second.
            params.set_max_tokens((samples.len() as f32 / SAMPLE_RATE as f32 * 8.0) as i32 + 8);
        }
        params.set_no_timestamps(true);
        params.set_suppress_blank(true);
        params.set_suppress_nst(true);
        // whisper.cpp's fallback: decode again at temperature +0.2 while the result looks
        // degenerate (entropy / average log-probability thresholds).
        params.set_temperature(0.0);
        params.set_temperature_inc(0.2);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_special(false);
        params.set_print_timestamps(false);
        let mut constraint = graph.map(|graph| Constraint::new(graph, &self.vocab, self.eot, self.n_vocab));
        if let Some(c) = constraint.as_mut() {
            // A forced reading is scored, not resampled: fallback would only add randomness.
            params.set_temperature_inc(0.0);
            // SAFETY: the callback only touches `c` (alive until `full` returns, which is when
            // whisper.cpp stops calling it) and the logits array whisper.cpp passes, of
            // `n_vocab` floats.
            unsafe {
                params.set_filter_logits_callback(Some(constrain_logits));
                params.set_filter_logits_callback_user_data(c as *mut Constraint as *mut std::ffi::c_void);
            }
        }
        self.state.full(params, samples).map_err(|e| anyhow!("whisper.cpp transcription failed: {e}"))?;
        if let Some(c) = constraint {
            let mut text = String::new();
            let tokens = c
                .chosen
                .iter()
                .filter(|(id, _)| *id < self.eot)
                .map(|&(id, logprob)| {
                    let piece = self.vocab[id as usize].clone().unwrap_or_default();
                    text.push_str(&piece);
                    Token::new(piece, logprob.exp())
                })
                .collect();
            return Ok((text.trim().to_string(), tokens));
        }
        let mut text = String::new();
        let mut tokens = Vec::new();
        for i in 0..self.state.full_n_segments() {
            let Some(seg) = self.state.get_segment(i) else { continue };
            text.push_str(&seg.to_str_lossy().map_err(|e| anyhow!("segment text: {e}"))?);
            for j in 0..seg.n_tokens() {
                let Some(tok) = seg.get_token(j) else { continue };
                if tok.token_id() >= self.eot {
                    continue; // special and timestamp tokens
                }
                let piece = tok.to_str_lossy().map(|s| s.into_owned()).unwrap_or_default();
                tokens.push(Token::new(piece, tok.token_probability()));
            }
        }
        Ok((text.trim().to_string(), tokens))
    }
}

/// Allowed tokens kept per step (see [`Constraint::step`]).
const KEEP: usize = 8;
/// Tokens checked first, best logits first; then four times as many, and so on.
const FIRST_WINDOW: usize = 64;

/// State of one constrained decode, shared with [`constrain_logits`].
struct Constraint<'a> {
    graph: &'a WordGraph,
    vocab: &'a [Option<String>],
    eot: i32,
    n_vocab: usize,
    /// The previous step's logits (before the constraint) and their log-sum-exp: the chosen
    /// token is only known at the next step.
    previous: Option<(Vec<f32>, f32)>,
    /// Each chosen token with its log-probability before the constraint.
    chosen: Vec<(i32, f32)>,
}

impl<'a> Constraint<'a> {
    fn new(graph: &'a WordGraph, vocab: &'a [Option<String>], eot: i32, n_vocab: usize) -> Self {
        Self { graph, vocab, eot, n_vocab, previous: None, chosen: Vec::new() }
    }

    /// One decoding step: `sequence` is what was decoded so far, `logits` the next token's.
    fn step(&mut self, sequence: &[i32], logits: &mut [f32]) {
        if sequence.is_empty() {
            self.chosen.clear();
        } else if let Some((prev, lse)) = self.previous.take() {
            let id = sequence[sequence.len() - 1];
            self.chosen.push((id, prev[id as usize] - lse));
        }
        self.previous = Some((logits.to_vec(), log_sum_exp(logits)));
        let cursor = sequence.iter().filter(|&&id| id < self.eot).try_fold(self.graph.start(), |c, &id| {
            self.vocab[id as usize].as_deref().and_then(|t| self.graph.feed(&c, t))
        });
        let eot = self.eot as usize;
        let end_ok = cursor.as_ref().is_some_and(|c| self.graph.can_end(c));
        // Greedy decoding takes the best allowed token, so only the best few need checking
        // against the graph: tokens in falling logit order until KEEP are allowed (a few spare
        // in case whisper.cpp's own filters, which run after this one, drop the best).
        let mut order: Vec<u32> = (0..eot as u32).filter(|&id| logits[id as usize] > f32::NEG_INFINITY).collect();
        let by_logit = |a: &u32, b: &u32| logits[*b as usize].total_cmp(&logits[*a as usize]);
        let mut keep: Vec<u32> = Vec::with_capacity(KEEP);
        if let Some(c) = cursor.as_ref() {
            let mut checked = 0;
            let mut window = FIRST_WINDOW.min(order.len());
            while keep.len() < KEEP && checked < order.len() {
                // Sort only the next window, best first; most steps end in the first.
                let rest = &mut order[checked..];
                if window < rest.len() {
                    rest.select_nth_unstable_by(window, by_logit);
                }
                let w = window.min(rest.len());
                rest[..w].sort_unstable_by(by_logit);
                for &id in &rest[..w] {
                    if self.vocab[id as usize].as_deref().is_some_and(|t| self.feeds(c, t)) {
                        keep.push(id);
                        if keep.len() == KEEP {
                            break;
                        }
                    }
                }
                checked += w;
                window *= 4;
            }
        }
        let kept: Vec<f32> = keep.iter().map(|&id| logits[id as usize]).collect();
        let eot_logit = logits[eot];
        logits.iter_mut().for_each(|l| *l = f32::NEG_INFINITY);
        for (&id, &l) in keep.iter().zip(&kept) {
            logits[id as usize] = l;
        }
        // End-of-text only after a whole sentence, or when nothing else is left (a dead end must
        // still stop). Special and timestamp tokens never belong to a sentence.
        if end_ok || keep.is_empty() {
            logits[eot] = eot_logit;
        }
    }

    fn feeds(&self, cursor: &Cursor, text: &str) -> bool {
        !text.is_empty() && self.graph.feed(cursor, text).is_some()
    }
}

fn log_sum_exp(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return max;
    }
    max + logits.iter().map(|&l| (l - max).exp()).sum::<f32>().ln()
}

/// whisper.cpp's logits filter: masks every token that would leave the word graph.
unsafe extern "C" fn constrain_logits(
    _ctx: *mut whisper_rs::WhisperSysContext,
    _state: *mut whisper_rs::WhisperSysState,
    tokens: *const whisper_rs::WhisperTokenData,
    n_tokens: std::ffi::c_int,
    logits: *mut f32,
    user_data: *mut std::ffi::c_void,
) {
    if user_data.is_null() || logits.is_null() {
        return;
    }
    // SAFETY: `user_data` is the `Constraint` set in `Stt::run`, alive during `full`; whisper.cpp
    // passes `n_tokens` token records and one logit per vocabulary entry.
    let c = unsafe { &mut *(user_data as *mut Constraint) };
    let logits = unsafe { std::slice::from_raw_parts_mut(logits, c.n_vocab) };
    let sequence: Vec<i32> = if tokens.is_null() || n_tokens <= 0 {
        Vec::new()
    } else {
        unsafe { std::slice::from_raw_parts(tokens, n_tokens as usize) }.iter().map(|t| t.id).collect()
    };
    // A panic must not unwind into C; the step is then left unconstrained and the caller's
    // validation still stands between the text and any action.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.step(&sequence, logits)));
}

/// whisper.cpp reports a wrong file only in its log; name it here.
fn check_ggml_magic(path: &Path) -> anyhow::Result<()> {
    use std::io::Read;
    if !path.is_file() {
        bail!("model file {} does not exist", path.display());
    }
    let mut magic = [0u8; 4];
    let mut f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    f.read_exact(&mut magic).with_context(|| format!("{} is too short to be a ggml Whisper model", path.display()))?;
    if u32::from_le_bytes(magic) != 0x6767_6d6c {
        bail!("{} is not a ggml Whisper model (magic {:02x?}, expected 6c 6d 67 67)", path.display(), magic);
    }
    Ok(())
}
