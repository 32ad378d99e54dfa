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
    /// By token id: whether its text, after spaces, opens a tool call (`{`, `[`, `<`, a
    /// backtick), which an answer that must be prose may not start with.
    call_openers: Vec<bool>,
    threads: rayon::ThreadPool,
}

/// What one generation did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Generated {
    /// The answer's text, special tokens such as `<tool_call>` included.
    pub text: String,
    /// Tokens of the prompt.
    pub prompt_tokens: usize,
    /// How many of the prompt's tokens were read; the rest were kept from the previous
    /// prompt.
    pub prompt_read: usize,
    /// Tokens written.
    pub output_tokens: usize,
    /// Time to read the prompt.
    pub reading: Duration,
    /// Time to write the answer.
    pub writing: Duration,
    /// Whether writing stopped because the answer went round in a loop.
    pub looped: bool,
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
        let call_openers = call_openers(&tokenizer);
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
            call_openers,
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
    /// handing each piece of text to `on_text` as it is complete UTF-8; with `prose`, the
    /// answer may not start like a tool call. Stops early, with what was written, once
    /// `cancelled` says so.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        max_tokens: usize,
        prose: bool,
        on_text: &mut (dyn FnMut(&str) + Send),
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Result<Generated, String> {
        let writing = Writing {
            tokenizer: &self.tokenizer,
            stops: &self.stops,
            banned_first: prose.then_some(self.call_openers.as_slice()),
            max_tokens,
        };
        let model = &mut self.model;
        self.threads
            .install(|| writing.write(model, prompt, on_text, cancelled))
    }

    /// Forgets the prompt read last (frees its keys and values).
    pub fn clear(&mut self) {
        self.model.clear();
    }
}

/// What one generation needs besides the model.
struct Writing<'a> {
    tokenizer: &'a Tokenizer,
    stops: &'a [u32],
    /// Tokens the first one written may not be.
    banned_first: Option<&'a [bool]>,
    max_tokens: usize,
}

impl Writing<'_> {
    fn write(
        &self,
        model: &mut Transformer,
        prompt: &[u32],
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
        let budget = self
            .max_tokens
            .min(model.context.saturating_sub(prompt.len()));
        let mut written: Vec<u32> = Vec::new();
        // The first token written whose text is not out yet (a character cut in two).
        let mut pending = 0;
        while written.len() < budget && !cancelled() {
            let banned = self.banned_first.filter(|_| written.is_empty());
            let next = likeliest(&logits, banned).map_err(fail)?;
            if self.stops.contains(&next) {
                break;
            }
            written.push(next);
            let piece = self
                .tokenizer
                .decode(&written[pending..], false)
                .map_err(|e| format!("cannot decode the answer: {e}"))?;
            if !piece.ends_with(char::REPLACEMENT_CHARACTER) {
                on_text(&piece);
                done.text.push_str(&piece);
                pending = written.len();
            }
            if repeats_itself(&written) {
                done.looped = true;
                break;
            }
            if written.len() < budget {
                logits = model.read(&[next]).map_err(fail)?;
            }
        }
        done.output_tokens = written.len();
        done.writing = started.elapsed();
        Ok(done)
    }
}

/// Copies of one span in a row at the end of an answer that show the greedy writer stuck
/// in a loop: from there it would write the span again until its budget ran out.
const LOOP_COPIES: usize = 3;

/// Spans shorter than this are left alone ("ha ha ha", a table's rules): 3 copies of a
/// span of 8 tokens or more, in a row, are a loop.
const LOOP_SPAN_MIN: usize = 8;

/// Whether `written` ends in [`LOOP_COPIES`] copies in a row of one span of at least
/// [`LOOP_SPAN_MIN`] tokens.
fn repeats_itself(written: &[u32]) -> bool {
    let n = written.len();
    (LOOP_SPAN_MIN..=n / LOOP_COPIES).any(|span| {
        let last = &written[n - span..];
        (1..LOOP_COPIES).all(|copy| &written[n - (copy + 1) * span..n - copy * span] == last)
    })
}

/// The likeliest next token, leaving out those `banned` marks.
fn likeliest(logits: &candle_core::Tensor, banned: Option<&[bool]>) -> candle_core::Result<u32> {
    let Some(banned) = banned else {
        return logits.argmax(D::Minus1)?.to_scalar::<u32>();
    };
    let scores = logits.to_vec1::<f32>()?;
    scores
        .iter()
        .enumerate()
        .filter(|(id, _)| !banned.get(*id).copied().unwrap_or(false))
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(id, _)| id as u32)
        .ok_or_else(|| candle_core::Error::Msg("every token is banned".into()))
}

/// Marks the tokens whose text, after spaces and line ends, starts with `{`, `[`, `<`
/// or a backtick. Byte-level BPE writes a space as `Ġ`, a line end as `Ċ`, a tab as `ĉ`.
fn call_openers(tokenizer: &Tokenizer) -> Vec<bool> {
    let size = tokenizer.get_vocab_size(true);
    (0..size)
        .map(|id| {
            tokenizer.id_to_token(id as u32).is_some_and(|token| {
                let text = token.trim_start_matches(['Ġ', 'Ċ', 'ĉ', ' ', '\n', '\t']);
                text.starts_with(['{', '[', '<', '`'])
            })
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::repeats_itself;

    #[test]
    fn a_span_written_three_times_in_a_row_is_a_loop() {
        let sentence: Vec<u32> = (100..112).collect();
        let mut answer: Vec<u32> = vec![1, 2, 3];
        answer.extend_from_slice(&sentence);
        answer.extend_from_slice(&sentence);
        assert!(!repeats_itself(&answer), "twice may be meant");
        answer.extend_from_slice(&sentence);
        assert!(repeats_itself(&answer));
        answer.push(7);
        assert!(!repeats_itself(&answer), "only the end counts");

        let short: Vec<u32> = [5, 6, 5, 6, 5, 6].into();
        assert!(!repeats_itself(&short), "short spans repeat in real text");
        assert!(!repeats_itself(&(0..400).collect::<Vec<u32>>()));
    }
}
