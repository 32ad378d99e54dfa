//! One loaded model: its tokenizer, its weights and the threads that run it. It reads a
//! prompt and writes tokens, greedily (the likeliest token each step, so the same prompt
//! gets the same answer), until a stop token, the token budget or the end of its context.

use std::path::Path;
use std::time::{Duration, Instant};

use candle_core::D;
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use tokenizers::Tokenizer;

use super::transformer::{self, Transformer};

/// Tokens that end a ChatML turn.
const STOP_TOKENS: &[&str] = &["<|im_end|>", "<|endoftext|>"];

/// A loaded model, ready to answer.
pub struct Engine {
    model: Transformer,
    tokenizer: Tokenizer,
    stops: Vec<u32>,
    threads: rayon::ThreadPool,
}

/// What one generation did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Generated {
    /// The answer's text, special tokens such as `<tool_call>` included.
    pub text: String,
    /// Tokens of the prompt, and how many of them were read (the rest were kept from the
    /// previous prompt).
    pub prompt_tokens: usize,
    pub prompt_read: usize,
    /// Tokens written.
    pub output_tokens: usize,
    /// Time to read the prompt, and to write the answer.
    pub reading: Duration,
    pub writing: Duration,
}

impl Engine {
    /// Loads the GGUF file at `path` to run on `threads` threads for at most `context`
    /// positions. Errors say what is wrong with the file.
    pub fn load(path: &Path, threads: usize, context: usize) -> Result<Self, String> {
        let fail = |e: &dyn std::fmt::Display| format!("cannot load {}: {e}", path.display());
        let (content, mut file) = transformer::open(path).map_err(|e| fail(&e))?;
        let mut tokenizer = Tokenizer::from_gguf(&content).map_err(|e| fail(&e))?;
        fit_pre_tokenizer(&mut tokenizer, &content);
        let stops = STOP_TOKENS
            .iter()
            .filter_map(|t| tokenizer.token_to_id(t))
            .collect();
        let model = Transformer::load(&content, &mut file, context).map_err(|e| fail(&e))?;
        let threads = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("flue-local-{i}"))
            .build()
            .map_err(|e| fail(&e))?;
        Ok(Self {
            model,
            tokenizer,
            stops,
            threads,
        })
    }

    /// Positions the model runs for at most: prompt and answer together.
    pub fn context(&self) -> usize {
        self.model.context
    }

    /// The prompt's tokens.
    pub fn tokenize(&self, prompt: &str) -> Result<Vec<u32>, String> {
        self.tokenizer
            .encode(prompt, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| format!("cannot tokenize the prompt: {e}"))
    }

    /// Reads `prompt` and writes at most `max_tokens` tokens (fewer if the context ends),
    /// handing each piece of text to `on_text` as it is complete UTF-8. Stops early, with
    /// what was written, once `cancelled` says so.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        max_tokens: usize,
        on_text: &mut (dyn FnMut(&str) + Send),
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Result<Generated, String> {
        let threads = &self.threads;
        let Self {
            model,
            tokenizer,
            stops,
            ..
        } = self;
        threads.install(|| {
            write(
                model, tokenizer, stops, prompt, max_tokens, on_text, cancelled,
            )
        })
    }

    /// Forgets the prompt read last (frees its keys and values).
    pub fn clear(&mut self) {
        self.model.clear();
    }
}

fn write(
    model: &mut Transformer,
    tokenizer: &Tokenizer,
    stops: &[u32],
    prompt: &[u32],
    max_tokens: usize,
    on_text: &mut (dyn FnMut(&str) + Send),
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Result<Generated, String> {
    let fail = |e: candle_core::Error| format!("the local model failed: {e}");
    let started = Instant::now();
    let kept = model.keep_common_start(prompt).map_err(fail)?;
    let mut logits = model.read(&prompt[kept..]).map_err(fail)?;
    let mut done = Generated {
        prompt_tokens: prompt.len(),
        prompt_read: prompt.len() - kept,
        reading: started.elapsed(),
        ..Generated::default()
    };
    let started = Instant::now();
    let budget = max_tokens.min(model.context.saturating_sub(prompt.len()));
    let mut written: Vec<u32> = Vec::new();
    // The first token written whose text is not out yet (a character cut in two).
    let mut pending = 0;
    while written.len() < budget && !cancelled() {
        let next = logits
            .argmax(D::Minus1)
            .and_then(|t| t.to_scalar::<u32>())
            .map_err(fail)?;
        if stops.contains(&next) {
            break;
        }
        written.push(next);
        let piece = tokenizer
            .decode(&written[pending..], false)
            .map_err(|e| format!("cannot decode the answer: {e}"))?;
        if !piece.ends_with(char::REPLACEMENT_CHARACTER) {
            on_text(&piece);
            done.text.push_str(&piece);
            pending = written.len();
        }
        if written.len() < budget {
            logits = model.read(&[next]).map_err(fail)?;
        }
    }
    done.output_tokens = written.len();
    done.writing = started.elapsed();
    Ok(done)
}

/// llama.cpp names a pre-tokenizer in `tokenizer.ggml.pre`; SmolLM's ("smollm": single
/// digits, then GPT-2's byte-level split without a leading space) is not among those the
/// GGUF reader knows, which would put a space before every ChatML role.
fn fit_pre_tokenizer(
    tokenizer: &mut Tokenizer,
    content: &candle_core::quantized::gguf_file::Content,
) {
    use tokenizers::pre_tokenizers::{byte_level::ByteLevel, digits::Digits, sequence::Sequence};
    let pre = content
        .metadata
        .get("tokenizer.ggml.pre")
        .and_then(|v| v.to_string().ok());
    if pre.map(String::as_str) == Some("smollm") {
        let steps = vec![
            Digits::new(true).into(),
            ByteLevel::new(false, true, true).into(),
        ];
        tokenizer.with_pre_tokenizer(Some(Sequence::new(steps)));
    }
}
