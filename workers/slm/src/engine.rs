//! The loaded model, its context and the cached token prefix.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context as _};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaLoraAdapter, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::LlamaToken;
use llguidance::api::TopLevelGrammar;
use llguidance::toktrie::{InferenceCapabilities, TokEnv, TokTrie, TokenId, TokenizerEnv};
use llguidance::{Matcher, ParserFactory};
use sotto_workers::messages::{Reply, Request};
use sotto_workers::server::log;
use sotto_workers::{Generation, Grammar, Hello, ModelInfo, Scores, SlmTimings, PROTOCOL_VERSION};

/// Candidates scored side by side in one batch, each in its own KV-cache sequence.
const SCORE_SEQUENCES: usize = 15;

/// Candidate tokens scored in one batch (a longer candidate gets a batch of its own). Each needs a
/// row of logits over the whole vocabulary (1 MiB with Gemma's 262k tokens), once in the compute
/// buffer and once in the output buffer, which llama.cpp keeps at the largest batch it has seen.
/// Measured with the adapter on the benchmark's language-model run (bench/run.py's 24
/// paraphrases): peak 506 MiB unbounded, 460 at 32, and with the short prompt's context 432 at 32
/// and 394 at 16, with the same intent-stage p50 at 16 and 32 (605 vs 604 ms): the weights are
/// read once per batch, and the logits cost the same in smaller batches.
const SCORE_OUTPUTS: usize = 16;

/// A LoRA adapter to apply on the base model.
pub struct Lora<'a> {
    pub path: &'a Path,
    pub scale: f32,
}

pub struct Engine {
    model: &'static LlamaModel,
    /// Kept for the context's whole life: llama.cpp reads its tensors at every decode.
    _lora: Option<LlamaLoraAdapter>,
    ctx: LlamaContext<'static>,
    /// Tokens whose KV entries are in sequence 0, in order.
    cached: Vec<LlamaToken>,
    n_ctx: u32,
    n_batch: usize,
    llg: Option<ParserFactory>,
    /// Apply the grammar to the whole vocabulary every step (for benchmarks) instead of first
    /// checking the unconstrained choice.
    grammar_full_vocab: bool,
    path: String,
    load_ms: f64,
}

impl Engine {
    pub fn load(
        path: &Path,
        threads: Option<i32>,
        n_ctx: u32,
        grammar_full_vocab: bool,
        lora: Option<Lora<'_>>,
    ) -> anyhow::Result<Self> {
        let t0 = Instant::now();
        if !path.is_file() {
            bail!("model file {} does not exist", path.display());
        }
        check_gguf_magic(path)?;
        // Leaked on purpose: the process serves exactly one model for its whole life, and the
        // context borrows both.
        let backend: &'static LlamaBackend =
            Box::leak(Box::new(LlamaBackend::init().context("initialising the llama.cpp backend")?));
        // Read into memory rather than mmapped: llama.cpp repacks some weights for the CPU (AVX2),
        // and with mmap the file's pages of those tensors stay resident beside their repacked copy.
        // Same weights, same results; 13 MiB less at the peak (bench/run.py's language-model run).
        let params = LlamaModelParams::default().with_use_mmap(false);
        let mut model = LlamaModel::load_from_file(backend, path, &params)
            .map_err(|e| anyhow!("llama.cpp could not load {}: {e} (see the log lines above)", path.display()))?;
        let mut adapter = match &lora {
            Some(l) => {
                if !l.path.is_file() {
                    bail!("LoRA adapter {} does not exist", l.path.display());
                }
                check_gguf_magic(l.path)?;
                // llama.cpp checks the adapter's architecture and tensor shapes against the model.
                Some(model.lora_adapter_init(l.path).map_err(|e| {
                    anyhow!(
                        "llama.cpp could not load the LoRA adapter {} for {}: {e}",
                        l.path.display(),
                        path.display()
                    )
                })?)
            }
            None => None,
        };
        let model: &'static LlamaModel = Box::leak(Box::new(model));
        let threads = threads.unwrap_or_else(sotto_workers::server::default_threads);
        let n_ctx = n_ctx.min(model.n_ctx_train());
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(512)
            .with_n_threads(threads)
            .with_n_threads_batch(threads)
            // Sliding-window models (Gemma 3) can only drop a cache suffix with a full-size cache.
            .with_swa_full(true)
            // Scoring runs candidates as parallel sequences over one shared prompt: they must
            // share the cache cells (unified) rather than split the context between them.
            .with_n_seq_max(SCORE_SEQUENCES as u32 + 1)
            .with_kv_unified(true);
        let mut ctx = model
            .new_context(backend, params)
            .map_err(|e| anyhow!("cannot create a llama.cpp context of {n_ctx} tokens: {e}"))?;
        if let (Some(adapter), Some(l)) = (adapter.as_mut(), &lora) {
            ctx.lora_adapter_set(adapter, l.scale)
                .map_err(|e| anyhow!("cannot apply the LoRA adapter {}: {e}", l.path.display()))?;
            log("INFO", &format!("LoRA adapter {} applied at scale {}", l.path.display(), l.scale));
        }
        let path = match &lora {
            Some(l) => format!("{} + {} (scale {})", path.display(), l.path.display(), l.scale),
            None => path.display().to_string(),
        };
        Ok(Self {
            model,
            _lora: adapter,
            ctx,
            cached: Vec::new(),
            n_ctx,
            n_batch: 512,
            llg: None,
            grammar_full_vocab,
            path,
            load_ms: t0.elapsed().as_secs_f64() * 1e3,
        })
    }

    pub fn hello(&self) -> Hello {
        let m = self.model;
        let mut metadata = BTreeMap::new();
        for i in 0..m.meta_count() {
            let (Ok(key), Ok(val)) = (m.meta_key_by_index(i), m.meta_val_str_by_index(i)) else { continue };
            // Token tables and the template are huge and not metadata anyone reads from here.
            if key.starts_with("tokenizer.ggml.") || key == "tokenizer.chat_template" || val.len() > 256 {
                continue;
            }
            metadata.insert(key, val);
        }
        let get = |k: &str| metadata.get(k).cloned().unwrap_or_else(|| "?".into());
        let description = format!(
            "{} ({}), {:.0} M params, {:.0} MiB, file type {}",
            get("general.name"),
            get("general.architecture"),
            m.n_params() as f64 / 1e6,
            m.size() as f64 / (1 << 20) as f64,
            get("general.file_type"),
        );
        Hello {
            protocol: PROTOCOL_VERSION,
            worker: "slm".into(),
            engine: "llama.cpp (llama-cpp-2 0.1.160)".into(),
            model: ModelInfo {
                path: self.path.clone(),
                description,
                chat_template: m.chat_template(None).ok().and_then(|t| t.to_string().ok()),
                n_ctx: self.n_ctx,
                n_vocab: m.n_vocab() as u32,
                adds_bos: m.vocab().should_add_bos(),
                metadata,
            },
            load_ms: self.load_ms,
        }
    }

    pub fn handle(&mut self, request: &Request, _body: Vec<u8>) -> Reply {
        let result = match request {
            Request::Generate { prompt, grammar, max_tokens } => {
                self.generate(prompt, grammar.as_ref(), *max_tokens).map(Reply::Generation)
            }
            Request::Score { prompt, candidates, choice_among } => {
                self.score(prompt, candidates, choice_among.as_deref()).map(Reply::Scores)
            }
            other => Err(anyhow!("the SLM worker does not handle {other:?}")),
        };
        result.unwrap_or_else(|e| Reply::Error { message: format!("{e:#}") })
    }

    fn tokenize_prompt(&self, prompt: &str) -> anyhow::Result<Vec<LlamaToken>> {
        // add_special: BOS exactly when the model wants it; parse_special: the chat template's
        // control tokens (`<start_of_turn>`, `<|im_start|>`) must become those tokens, not text.
        let tokens = self.model.vocab().tokenize(prompt.as_bytes(), true, true);
        if tokens.is_empty() {
            bail!("empty prompt");
        }
        Ok(tokens)
    }

    /// Keeps the cached tokens that begin `tokens` (all but the last, whose logits are wanted)
    /// and drops the rest from sequence 0; returns how many were kept.
    fn reuse_cache(&mut self, tokens: &[LlamaToken]) -> anyhow::Result<usize> {
        let extra = 1; // room for at least one generated token
        if tokens.len() + extra > self.n_ctx as usize {
            bail!("prompt of {} tokens does not fit the context of {} tokens", tokens.len(), self.n_ctx);
        }
        let mut keep = common_prefix(&self.cached, tokens).min(tokens.len() - 1);
        match self.ctx.clear_kv_cache_seq(Some(0), Some(keep as u32), None) {
            Ok(true) => {}
            _ => {
                // The cache cannot drop a suffix (some memory types): start over.
                self.ctx.clear_kv_cache();
                keep = 0;
            }
        }
        self.cached.truncate(keep);
        Ok(keep)
    }

    /// Brings the KV cache to exactly `tokens`, evaluating only what is not cached. Always
    /// evaluates at least the last token, so its logits are at index `returned.1`.
    /// Returns (tokens reused from the cache, logits index of the last token).
    fn prefill(&mut self, tokens: &[LlamaToken]) -> anyhow::Result<(usize, i32)> {
        let keep = self.reuse_cache(tokens)?;
        let mut last_index = 0;
        let rest = &tokens[keep..];
        for (chunk_no, chunk) in rest.chunks(self.n_batch).enumerate() {
            let mut batch = LlamaBatch::new(chunk.len(), 1);
            let start = keep + chunk_no * self.n_batch;
            let is_last_chunk = start + chunk.len() == tokens.len();
            for (i, &t) in chunk.iter().enumerate() {
                let logits = is_last_chunk && i + 1 == chunk.len();
                batch.add(t, (start + i) as i32, &[0], logits)?;
            }
            if let Err(e) = self.ctx.decode(&mut batch) {
                self.reset_cache();
                bail!("llama.cpp decode failed while evaluating the prompt: {e}");
            }
            self.cached.extend_from_slice(chunk);
            last_index = chunk.len() as i32 - 1;
        }
        Ok((keep, last_index))
    }

    /// Evaluates tokens at the end of the cache in one batch; returns the logits index of the last.
    fn push_tokens(&mut self, tokens: &[LlamaToken]) -> anyhow::Result<i32> {
        let mut batch = LlamaBatch::new(tokens.len(), 1);
        for (i, &t) in tokens.iter().enumerate() {
            batch.add(t, (self.cached.len() + i) as i32, &[0], i + 1 == tokens.len())?;
        }
        if let Err(e) = self.ctx.decode(&mut batch) {
            self.reset_cache();
            bail!("llama.cpp decode failed: {e}");
        }
        self.cached.extend_from_slice(tokens);
        Ok(tokens.len() as i32 - 1)
    }

    fn reset_cache(&mut self) {
        self.ctx.clear_kv_cache();
        self.cached.clear();
    }

    fn generate(&mut self, prompt: &str, grammar: Option<&Grammar>, max_tokens: u32) -> anyhow::Result<Generation> {
        let t0 = Instant::now();
        let tokens = self.tokenize_prompt(prompt)?;
        if tokens.len() + max_tokens as usize > self.n_ctx as usize {
            bail!(
                "prompt of {} tokens plus max_tokens {max_tokens} exceeds the context of {} tokens",
                tokens.len(),
                self.n_ctx
            );
        }
        // Build the constraint before spending time on the prompt: a bad grammar fails fast.
        let mut constraint = self.constraint(grammar)?;
        let vocab = self.model.vocab();
        let mut text = Vec::new();
        // What the grammar forces before the model has any say (the punctuation and first key of
        // an argument list; all of it when every value was heard only one way) goes into the
        // prompt's evaluation, and when it is the whole answer the model is not run at all.
        let head = constraint.forced(max_tokens as usize)?;
        for &t in &head {
            text.extend(vocab.token_to_piece(t, false, None));
        }
        let mut generated = head.len() as u32;
        let (cached, mut idx, mut model_steps, t_prefill) = if constraint.finished() || generated >= max_tokens {
            (0, 0, 0, std::time::Duration::ZERO)
        } else {
            let with_head: Vec<LlamaToken> = tokens.iter().chain(&head).copied().collect();
            let (cached, idx) = self.prefill(&with_head)?;
            (cached, idx, (with_head.len() - cached).div_ceil(self.n_batch) as u32, t0.elapsed())
        };
        let mut stop = "max_tokens";
        while generated < max_tokens {
            if constraint.finished() {
                stop = "grammar_complete";
                break;
            }
            let logits = self.ctx.get_logits_ith(idx);
            let token = constraint.pick(logits, |t| vocab.is_eog(t), self.grammar_full_vocab)?;
            if vocab.is_eog(token) {
                stop = "eog";
                break;
            }
            constraint.accept(token)?;
            // What the grammar now forces (JSON punctuation, the next key) is appended at once:
            // one model evaluation for the whole run instead of one per token.
            let forced = constraint.forced((max_tokens - generated - 1) as usize)?;
            let step: Vec<LlamaToken> = std::iter::once(token).chain(forced).collect();
            for &t in &step {
                text.extend(vocab.token_to_piece(t, false, None));
            }
            generated += step.len() as u32;
            if generated < max_tokens && !constraint.finished() {
                idx = self.push_tokens(&step)?;
                model_steps += 1;
            }
        }
        if stop == "max_tokens" && constraint.finished() {
            stop = "grammar_complete";
        }
        let total = t0.elapsed();
        Ok(Generation {
            text: String::from_utf8_lossy(&text).into_owned(),
            prompt_tokens: tokens.len() as u32,
            cached_tokens: cached as u32,
            generated_tokens: generated,
            stop: stop.into(),
            model_steps,
            timings: SlmTimings { prefill_ms: ms(t_prefill), generate_ms: ms(total - t_prefill), total_ms: ms(total) },
        })
    }

    fn score(&mut self, prompt: &str, candidates: &[String], among: Option<&[String]>) -> anyhow::Result<Scores> {
        let t0 = Instant::now();
        let prompt_tokens = self.tokenize_prompt(prompt)?;
        let tokenize = |c: &String| self.model.vocab().tokenize(c.as_bytes(), false, false);
        let mut tokenized: Vec<Vec<LlamaToken>> = candidates.iter().map(tokenize).collect();
        if let Some(among) = among {
            let others: Vec<Vec<LlamaToken>> = among.iter().map(tokenize).chain(tokenized.iter().cloned()).collect();
            for c in &mut tokenized {
                let shared = others.iter().filter(|o| *o != c).map(|o| common_prefix(c, o)).max().unwrap_or(0);
                c.truncate(shared + 1);
            }
        }
        for (candidate, tokens) in candidates.iter().zip(&tokenized) {
            if prompt_tokens.len() + tokens.len() > self.n_ctx as usize {
                bail!("prompt plus candidate {candidate:?} exceeds the context of {} tokens", self.n_ctx);
            }
        }
        // Candidates longer than one token: each in its own sequence sharing the prompt's cache
        // cells, evaluated together in one batch (one pass over the weights instead of one each).
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut group_tokens = 0;
        for k in (0..tokenized.len()).filter(|&k| tokenized[k].len() > 1) {
            let body = tokenized[k].len() - 1;
            if body > self.n_batch {
                bail!("candidate {:?} is longer than a batch of {} tokens", candidates[k], self.n_batch);
            }
            match groups.last_mut() {
                Some(g) if g.len() < SCORE_SEQUENCES && group_tokens + body <= SCORE_OUTPUTS.min(self.n_batch) => {
                    g.push(k)
                }
                _ => {
                    groups.push(vec![k]);
                    group_tokens = 0;
                }
            }
            group_tokens += body;
        }
        let mut groups = groups.into_iter();
        // The prompt's new tokens go into the first group's decode when they fit one batch beside
        // it: one decode fewer per request, and each decode reads all the weights.
        let keep = self.reuse_cache(&prompt_tokens)?;
        let rest = &prompt_tokens[keep..];
        let (first_logits, mut sums) = if rest.len() + SCORE_OUTPUTS <= self.n_batch {
            let first = groups.next().unwrap_or_default();
            let (first_logits, sums) = self.score_group(prompt_tokens.len(), &tokenized, &first, rest)?;
            (first_logits, first.into_iter().zip(sums).collect::<Vec<_>>())
        } else {
            let (_, idx) = self.prefill(&prompt_tokens)?;
            (self.ctx.get_logits_ith(idx).to_vec(), Vec::new())
        };
        let t_prefill = t0.elapsed();
        for group in groups {
            let (_, group_sums) = self.score_group(prompt_tokens.len(), &tokenized, &group, &[])?;
            sums.extend(group.into_iter().zip(group_sums));
        }
        let norm = log_sum_exp(&first_logits);
        let mut logprobs: Vec<f64> =
            tokenized.iter().map(|c| c.first().map_or(0.0, |&t| first_logits[t.0 as usize] as f64 - norm)).collect();
        for (k, sum) in sums {
            logprobs[k] += sum;
        }
        let total = t0.elapsed();
        Ok(Scores {
            logprobs: logprobs.into_iter().map(|x| x as f32).collect(),
            tokens: tokenized.iter().map(|c| c.len() as u32).collect(),
            prompt_tokens: prompt_tokens.len() as u32,
            cached_tokens: keep as u32,
            timings: SlmTimings { prefill_ms: ms(t_prefill), generate_ms: ms(total - t_prefill), total_ms: ms(total) },
        })
    }

    /// Log-probability of tokens `1..` of each candidate in `group` after the prompt (token 0 is
    /// scored from the prompt's own logits), in one decode: candidate `j` of the group runs in
    /// sequence `j + 1`, which shares the prompt's cells of sequence 0. Candidates that begin
    /// alike (`machine.start`, `machine.stop`) share the batch entries of their common tokens, a
    /// token belonging to each of their sequences: every logits row costs a pass of the
    /// 262k-token output layer, the largest part of the model.
    ///
    /// `rest`, the prompt's tokens not yet in the cache (its last ones), is evaluated in the same
    /// decode, in every sequence of the group; its last token's logits are returned (empty when
    /// `rest` is).
    fn score_group(
        &mut self,
        prompt_len: usize,
        tokenized: &[Vec<LlamaToken>],
        group: &[usize],
        rest: &[LlamaToken],
    ) -> anyhow::Result<(Vec<f32>, Vec<f64>)> {
        // One entry per distinct prefix of the candidates' inputs: (its last token, its position
        // after the prompt, the sequences it belongs to).
        let mut entries: Vec<(LlamaToken, usize, Vec<i32>)> = Vec::new();
        let mut entry_of: HashMap<&[LlamaToken], usize> = HashMap::new();
        // For each candidate, the entry whose logits predict each of its tokens `1..`.
        let mut rows: Vec<Vec<usize>> = Vec::with_capacity(group.len());
        for (j, &k) in group.iter().enumerate() {
            let seq = j as i32 + 1;
            self.ctx.copy_kv_cache_seq(0, seq, None, Some(prompt_len as u32))?;
            let tokens = &tokenized[k];
            let mut own = Vec::with_capacity(tokens.len() - 1);
            for i in 0..tokens.len() - 1 {
                let e = *entry_of.entry(&tokens[..=i]).or_insert_with(|| {
                    entries.push((tokens[i], i, Vec::new()));
                    entries.len() - 1
                });
                entries[e].2.push(seq);
                own.push(e);
            }
            rows.push(own);
        }
        let mut batch = LlamaBatch::new(rest.len() + entries.len(), group.len() as i32 + 1);
        let all_seqs: Vec<i32> = (0..=group.len() as i32).collect();
        let rest_start = prompt_len - rest.len();
        for (i, &t) in rest.iter().enumerate() {
            batch.add(t, (rest_start + i) as i32, &all_seqs, i + 1 == rest.len())?;
        }
        for (token, i, seqs) in &entries {
            batch.add(*token, (prompt_len + i) as i32, seqs, true)?;
        }
        let decoded = self.ctx.decode(&mut batch);
        let result = decoded.map(|()| {
            let first_logits =
                if rest.is_empty() { Vec::new() } else { self.ctx.get_logits_ith(rest.len() as i32 - 1).to_vec() };
            let row = |e: usize| (rest.len() + e) as i32;
            let mut lse: Vec<Option<f64>> = vec![None; entries.len()];
            let sums = group
                .iter()
                .zip(&rows)
                .map(|(&k, own)| {
                    tokenized[k][1..]
                        .iter()
                        .zip(own)
                        .map(|(&next, &e)| {
                            let logits = self.ctx.get_logits_ith(row(e));
                            let norm = *lse[e].get_or_insert_with(|| log_sum_exp(logits));
                            logits[next.0 as usize] as f64 - norm
                        })
                        .sum()
                })
                .collect();
            (first_logits, sums)
        });
        for j in 0..group.len() {
            // Removing a whole sequence always succeeds; the prompt's cells stay with sequence 0.
            let _ = self.ctx.clear_kv_cache_seq(Some(j as u32 + 1), None, None);
        }
        match result {
            Ok(r) => {
                self.cached.extend_from_slice(rest);
                Ok(r)
            }
            Err(e) => {
                self.reset_cache();
                bail!("llama.cpp decode failed while scoring {} candidates: {e}", group.len())
            }
        }
    }

    fn constraint(&mut self, grammar: Option<&Grammar>) -> anyhow::Result<Constraint> {
        Ok(match grammar {
            None => Constraint::None,
            Some(Grammar::Gbnf(src)) => {
                if !src.contains("root") {
                    bail!("GBNF grammar has no `root` rule");
                }
                // With the `common` feature a parse error is caught in C++ and comes back as an
                // error instead of aborting the process.
                let sampler =
                    LlamaSampler::grammar(self.model, src, "root").map_err(|e| anyhow!("invalid GBNF grammar: {e}"))?;
                Constraint::Gbnf(sampler)
            }
            Some(g @ (Grammar::JsonSchema(_) | Grammar::Lark(_))) => {
                let top = match g {
                    Grammar::JsonSchema(s) => TopLevelGrammar::from_json_schema(
                        serde_json::from_str(s).context("JSON schema is not valid JSON")?,
                    ),
                    Grammar::Lark(s) => TopLevelGrammar::from_lark(s.clone()),
                    Grammar::Gbnf(_) => unreachable!(),
                };
                let factory = self.llg_factory()?;
                let matcher = Matcher::new(factory.create_parser(top));
                if let Some(e) = matcher.get_error() {
                    bail!("invalid grammar for llguidance: {e}");
                }
                Constraint::Llg(Box::new(matcher))
            }
        })
    }

    fn llg_factory(&mut self) -> anyhow::Result<&ParserFactory> {
        if self.llg.is_none() {
            let t0 = Instant::now();
            let env = canonical_tok_env(self.model);
            // No precomputed token slices (`new_simple` builds llguidance's general ones): over
            // Gemma's 262k-token vocabulary they cost 64 MiB of resident memory, and the
            // worker masks the whole vocabulary only when the top token breaks the grammar, where
            // the sliced and unsliced masks measured the same speed (workers/README.md).
            let factory = ParserFactory::new(&env, InferenceCapabilities::default(), &[])
                .map_err(|e| anyhow!("llguidance set-up failed: {e}"))?;
            log("INFO", &format!("llguidance token trie built in {:.0} ms", ms(t0.elapsed())));
            self.llg = Some(factory);
        }
        Ok(self.llg.as_ref().expect("just built"))
    }
}

/// llguidance's view of the vocabulary, tokenizing with the model's own tokenizer.
///
/// llama-cpp-2's environment tokenizes greedily over the token trie and so declares itself
/// non-canonical, and llguidance then never computes forced tokens: every `", "name": "` of an
/// argument list cost one model evaluation per token. With the model's own tokenizer the forced
/// text is tokenized exactly as a prompt would be, which is what llguidance needs to splice it.
struct CanonicalTokEnv {
    trie: TokTrie,
    model: &'static LlamaModel,
}

impl TokenizerEnv for CanonicalTokEnv {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        // No BOS and no special-token parsing: this is text inside an answer.
        self.model.vocab().tokenize(s, false, false).into_iter().map(|t| t.0 as TokenId).collect()
    }

    fn tokenize_is_canonical(&self) -> bool {
        true
    }
}

fn canonical_tok_env(model: &'static LlamaModel) -> TokEnv {
    // The trie (token bytes, end-of-generation tokens) is llama-cpp-2's; only tokenizing changes.
    let trie = LlamaSampler::llguidance_tok_env(model).tok_trie().clone();
    Arc::new(CanonicalTokEnv { trie, model })
}

/// A grammar in force during one generation.
enum Constraint {
    None,
    Gbnf(LlamaSampler),
    // Boxed: the matcher is over a kilobyte, the other variants a pointer.
    Llg(Box<Matcher>),
}

impl Constraint {
    /// Greedy choice under the constraint. Unless `full_vocab`, the unconstrained argmax is tried
    /// first: it is usually allowed, and checking one token is far cheaper than masking a 262k
    /// vocabulary.
    fn pick(
        &mut self,
        logits: &[f32],
        is_eog: impl Fn(LlamaToken) -> bool,
        full_vocab: bool,
    ) -> anyhow::Result<LlamaToken> {
        let best = argmax(logits.iter().copied().enumerate()).ok_or_else(|| anyhow!("no logits"))?;
        match self {
            Constraint::None => Ok(best),
            Constraint::Gbnf(sampler) => {
                if !full_vocab {
                    let mut one =
                        LlamaTokenDataArray::new(vec![LlamaTokenData::new(best, logits[best.0 as usize], 0.0)], false);
                    sampler.apply(&mut one);
                    if one.data[0].logit().is_finite() {
                        return Ok(best);
                    }
                }
                let mut all = LlamaTokenDataArray::from_iter(
                    logits.iter().enumerate().map(|(i, &l)| LlamaTokenData::new(LlamaToken(i as i32), l, 0.0)),
                    false,
                );
                sampler.apply(&mut all);
                argmax(all.data.iter().map(|d| (d.id().0 as usize, d.logit())).filter(|(_, l)| l.is_finite()))
                    .ok_or_else(|| anyhow!("the GBNF grammar allows no token here"))
            }
            Constraint::Llg(m) => {
                if !full_vocab {
                    let ok = if is_eog(best) {
                        m.is_accepting().unwrap_or(false)
                    } else {
                        m.validate_tokens(&[best.0 as u32]).map(|n| n == 1).unwrap_or(false)
                    };
                    if ok {
                        return Ok(best);
                    }
                }
                let mask = m.compute_mask().map_err(|e| anyhow!("llguidance: {e}"))?;
                argmax(logits.iter().copied().enumerate().filter(|(i, _)| mask.is_allowed(*i as u32)))
                    .ok_or_else(|| anyhow!("the grammar allows no token here"))
            }
        }
    }

    /// Advances the grammar by the chosen token (exactly once per token: llama.cpp aborts on some
    /// double accepts, which is why `LlamaSampler::sample`, which also accepts, is not used).
    fn accept(&mut self, token: LlamaToken) -> anyhow::Result<()> {
        match self {
            Constraint::None => Ok(()),
            Constraint::Gbnf(s) => s.try_accept(token).map_err(|e| anyhow!("grammar rejected token {}: {e}", token.0)),
            Constraint::Llg(m) => m.consume_token(token.0 as u32).map_err(|e| anyhow!("llguidance: {e}")),
        }
    }

    /// Tokens the grammar allows as the only continuation (at most `limit`), already accepted.
    /// Only llguidance can tell; the GBNF sampler generates them one by one.
    fn forced(&mut self, limit: usize) -> anyhow::Result<Vec<LlamaToken>> {
        let Constraint::Llg(m) = self else { return Ok(Vec::new()) };
        let mut ff = m.compute_ff_tokens();
        ff.truncate(limit);
        m.consume_tokens(&ff).map_err(|e| anyhow!("llguidance: {e}"))?;
        Ok(ff.into_iter().map(|t| LlamaToken(t as i32)).collect())
    }

    /// llguidance knows when the grammar cannot continue; llama's GBNF sampler then only allows
    /// end-of-generation, which `pick` returns.
    fn finished(&self) -> bool {
        matches!(self, Constraint::Llg(m) if m.is_stopped())
    }
}

fn argmax(it: impl Iterator<Item = (usize, f32)>) -> Option<LlamaToken> {
    let mut best: Option<(usize, f32)> = None;
    for (i, l) in it {
        if best.is_none_or(|(_, b)| l > b) {
            best = Some((i, l));
        }
    }
    best.map(|(i, _)| LlamaToken(i as i32))
}

fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The softmax's normaliser, `ln Σ exp(l)`.
fn log_sum_exp(logits: &[f32]) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    // exp in f32 (the terms are at most 1), summed in f64: a 262k-term sum in f32 would drift.
    let sum: f64 = logits.iter().map(|&l| (l - max).exp() as f64).sum();
    max as f64 + sum.ln()
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// llama.cpp's own message for a non-GGUF file is only in its log; name the problem here.
fn check_gguf_magic(path: &Path) -> anyhow::Result<()> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let mut f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    f.read_exact(&mut magic).with_context(|| format!("{} is too short to be a GGUF file", path.display()))?;
    if &magic != b"GGUF" {
        bail!("{} is not a GGUF file (magic {:02x?}, expected \"GGUF\")", path.display(), magic);
    }
    Ok(())
}
