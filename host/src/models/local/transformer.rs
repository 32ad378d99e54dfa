//! A decoder-only transformer run from a GGUF file: the `qwen2` and `llama` architectures
//! of llama.cpp's format (grouped-query attention, rotary positions, RMSNorm, a SwiGLU
//! feed-forward block). Weight matrices stay quantized and are multiplied in that form;
//! the token embedding is looked up row by row from its quantized table, which the
//! output layer shares when the file ties them, so the loaded model takes about the
//! file's size in memory.
//!
//! The keys and values of the tokens read so far are kept, so a prompt that starts with
//! the previous one (the next round of a tool loop) is read from where they part.

use std::path::Path;
use std::sync::Arc;

use super::matrix::Matrix;
use candle_core::quantized::{QTensor, gguf_file};
use candle_core::{DType, Device, IndexOp, Result, Tensor};

/// How many prompt tokens go through the model at once.
const PROMPT_CHUNK: usize = 256;

/// The loaded weights, and the keys and values of the tokens read so far.
pub(super) struct Transformer {
    embedding: Arc<QTensor>,
    layers: Vec<Layer>,
    norm: Tensor,
    output: Matrix,
    rope: Rope,
    heads: Heads,
    eps: f32,
    /// The tokens the layers hold keys and values for, in order.
    cached: Vec<u32>,
    /// Positions the model is run for at most (its rotary tables are that long).
    pub context: usize,
}

#[derive(Clone, Copy)]
struct Heads {
    query: usize,
    key_value: usize,
    dim: usize,
}

struct Layer {
    attention_norm: Tensor,
    q: Projection,
    k: Projection,
    v: Projection,
    o: Matrix,
    ffn_norm: Tensor,
    gate: Matrix,
    up: Matrix,
    down: Matrix,
    keys_values: Option<(Tensor, Tensor)>,
}

/// A matrix and the bias some architectures add after it (Qwen2's q, k and v).
struct Projection {
    weight: Matrix,
    bias: Option<Tensor>,
}

impl Projection {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.weight.forward(x)?;
        match &self.bias {
            Some(bias) => y.broadcast_add(bias),
            None => Ok(y),
        }
    }
}

/// Rotary position tables; `interleaved` rotates adjacent pairs (llama's GGUF layout),
/// otherwise the two halves of each head (Qwen2's).
struct Rope {
    cos: Tensor,
    sin: Tensor,
    interleaved: bool,
}

impl Rope {
    fn new(head_dim: usize, base: f32, positions: usize, interleaved: bool) -> Result<Self> {
        let inverse: Vec<f32> = (0..head_dim)
            .step_by(2)
            .map(|i| 1.0 / base.powf(i as f32 / head_dim as f32))
            .collect();
        let half = inverse.len();
        let angles: Vec<f32> = (0..positions)
            .flat_map(|p| inverse.iter().map(move |f| p as f32 * f))
            .collect();
        let angles = Tensor::from_vec(angles, (positions, half), &Device::Cpu)?;
        Ok(Self {
            cos: angles.cos()?,
            sin: angles.sin()?,
            interleaved,
        })
    }

    /// Rotates `x` (batch, heads, tokens, head_dim) for positions `start..`.
    fn apply(&self, x: &Tensor, start: usize) -> Result<Tensor> {
        let tokens = x.dim(2)?;
        let cos = self.cos.narrow(0, start, tokens)?;
        let sin = self.sin.narrow(0, start, tokens)?;
        if self.interleaved {
            candle_nn::rotary_emb::rope_i(&x.contiguous()?, &cos, &sin)
        } else {
            candle_nn::rotary_emb::rope(&x.contiguous()?, &cos, &sin)
        }
    }
}

/// Reads metadata values of one architecture (`qwen2.block_count`, …).
struct Metadata<'a> {
    content: &'a gguf_file::Content,
    arch: String,
}

impl Metadata<'_> {
    fn value(&self, key: &str) -> Result<&gguf_file::Value> {
        let key = format!("{}.{key}", self.arch);
        self.content
            .metadata
            .get(&key)
            .ok_or_else(|| candle_core::Error::Msg(format!("the file has no {key}")))
    }

    fn count(&self, key: &str) -> Result<usize> {
        Ok(self.value(key)?.to_u32()? as usize)
    }
}

impl Transformer {
    /// Loads the weights of `content` (read from `file`), for at most `context` positions.
    /// Errors name what the file lacks or an architecture other than `qwen2` and `llama`.
    pub(super) fn load(
        content: &gguf_file::Content,
        file: &mut std::fs::File,
        context: usize,
    ) -> Result<Self> {
        let arch = content
            .metadata
            .get("general.architecture")
            .map(|v| v.to_string().cloned())
            .transpose()?
            .unwrap_or_default();
        if !matches!(arch.as_str(), "qwen2" | "llama") {
            candle_core::bail!("architecture '{arch}' is not supported (qwen2 and llama are)");
        }
        let meta = Metadata { content, arch };
        let width = meta.count("embedding_length")?;
        let query = meta.count("attention.head_count")?;
        let heads = Heads {
            query,
            key_value: meta.count("attention.head_count_kv")?,
            dim: width / query,
        };
        let eps = meta.value("attention.layer_norm_rms_epsilon")?.to_f32()?;
        let base = meta
            .value("rope.freq_base")
            .and_then(candle_core::quantized::gguf_file::Value::to_f32)
            .unwrap_or(10_000.0);
        let context = context.min(meta.count("context_length")?);
        let mut weights = Weights { content, file };
        let embedding = Arc::new(weights.tensor("token_embd.weight")?);
        let output = match weights.has("output.weight") {
            true => weights.matrix("output.weight")?,
            false => Matrix::shared(embedding.clone())?,
        };
        let norm = weights.vector("output_norm.weight")?;
        let layers = (0..meta.count("block_count")?)
            .map(|i| Layer::load(&mut weights, &format!("blk.{i}")))
            .collect::<Result<_>>()?;
        Ok(Self {
            embedding,
            layers,
            norm,
            output,
            rope: Rope::new(heads.dim, base, context, meta.arch == "llama")?,
            heads,
            eps,
            cached: Vec::new(),
            context,
        })
    }

    /// Keeps the keys and values of the longest start `tokens` shares with what was read
    /// before (leaving at least its last token to read); returns how many were kept.
    pub(super) fn keep_common_start(&mut self, tokens: &[u32]) -> Result<usize> {
        let common = self
            .cached
            .iter()
            .zip(tokens)
            .take_while(|(a, b)| a == b)
            .count()
            .min(tokens.len().saturating_sub(1));
        if common < self.cached.len() {
            for layer in &mut self.layers {
                layer.keys_values = match (common, layer.keys_values.take()) {
                    (0, _) | (_, None) => None,
                    (n, Some((k, v))) => Some((k.narrow(2, 0, n)?, v.narrow(2, 0, n)?)),
                };
            }
            self.cached.truncate(common);
        }
        Ok(common)
    }

    /// Reads `tokens` after those already read and returns the logits (vocabulary size,
    /// f32) of what comes next. The caller keeps the total within [`Self::context`].
    pub(super) fn read(&mut self, tokens: &[u32]) -> Result<Tensor> {
        let mut logits = None;
        for chunk in tokens.chunks(PROMPT_CHUNK) {
            logits = Some(self.forward(chunk)?);
            self.cached.extend_from_slice(chunk);
        }
        logits.ok_or_else(|| candle_core::Error::Msg("nothing to read".into()))
    }

    /// Forgets every token read.
    pub(super) fn clear(&mut self) {
        self.cached.clear();
        for layer in &mut self.layers {
            layer.keys_values = None;
        }
    }

    fn forward(&mut self, tokens: &[u32]) -> Result<Tensor> {
        let start = self.cached.len();
        let ids = Tensor::new(tokens, &Device::Cpu)?;
        let mut x = self.embedding.embedding(&ids)?.unsqueeze(0)?;
        let mask = causal_mask(tokens.len(), start)?;
        for layer in &mut self.layers {
            let h = candle_nn::ops::rms_norm(&x, &layer.attention_norm, self.eps)?;
            let h = layer.attend(&h, mask.as_ref(), start, self.heads, &self.rope)?;
            x = (x + h)?;
            let h = candle_nn::ops::rms_norm(&x, &layer.ffn_norm, self.eps)?;
            let gated = (layer.gate.forward(&h)?.silu()? * layer.up.forward(&h)?)?;
            x = (x + layer.down.forward(&gated)?)?;
        }
        let x = candle_nn::ops::rms_norm(&x, &self.norm, self.eps)?;
        let last = x.i((.., tokens.len() - 1, ..))?;
        self.output.forward(&last)?.squeeze(0)?.to_dtype(DType::F32)
    }
}

/// Reads named tensors of one file.
struct Weights<'a> {
    content: &'a gguf_file::Content,
    file: &'a mut std::fs::File,
}

impl Weights<'_> {
    fn has(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    fn tensor(&mut self, name: &str) -> Result<QTensor> {
        self.content.tensor(self.file, name, &Device::Cpu)
    }

    fn matrix(&mut self, name: &str) -> Result<Matrix> {
        Matrix::new(self.tensor(name)?)
    }

    fn vector(&mut self, name: &str) -> Result<Tensor> {
        self.tensor(name)?.dequantize(&Device::Cpu)
    }
}

impl Layer {
    fn load(weights: &mut Weights<'_>, prefix: &str) -> Result<Self> {
        let mut projection = |name: &str| -> Result<Projection> {
            let bias = format!("{prefix}.attn_{name}.bias");
            Ok(Projection {
                weight: weights.matrix(&format!("{prefix}.attn_{name}.weight"))?,
                bias: match weights.has(&bias) {
                    true => Some(weights.vector(&bias)?),
                    false => None,
                },
            })
        };
        let (q, k, v) = (projection("q")?, projection("k")?, projection("v")?);
        let name = |suffix: &str| format!("{prefix}.{suffix}");
        Ok(Self {
            attention_norm: weights.vector(&name("attn_norm.weight"))?,
            q,
            k,
            v,
            o: weights.matrix(&name("attn_output.weight"))?,
            ffn_norm: weights.vector(&name("ffn_norm.weight"))?,
            gate: weights.matrix(&name("ffn_gate.weight"))?,
            up: weights.matrix(&name("ffn_up.weight"))?,
            down: weights.matrix(&name("ffn_down.weight"))?,
            keys_values: None,
        })
    }

    fn attend(
        &mut self,
        x: &Tensor,
        mask: Option<&Tensor>,
        start: usize,
        heads: Heads,
        rope: &Rope,
    ) -> Result<Tensor> {
        let (batch, tokens, width) = x.dims3()?;
        let split = |t: Tensor, n: usize| {
            t.reshape((batch, tokens, n, heads.dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = rope.apply(&split(self.q.forward(x)?, heads.query)?, start)?;
        let k = rope.apply(&split(self.k.forward(x)?, heads.key_value)?, start)?;
        let v = split(self.v.forward(x)?, heads.key_value)?;
        let (k, v) = match self.keys_values.take() {
            Some((past_k, past_v)) => (
                Tensor::cat(&[&past_k, &k], 2)?,
                Tensor::cat(&[&past_v, &v], 2)?,
            ),
            None => (k, v),
        };
        self.keys_values = Some((k.clone(), v.clone()));
        let groups = heads.query / heads.key_value;
        let k = repeat_heads(&k, groups)?;
        let v = repeat_heads(&v, groups)?;
        let scores = (q.matmul(&k.t()?)? / (heads.dim as f64).sqrt())?;
        let scores = match mask {
            Some(mask) => scores.broadcast_add(mask)?,
            None => scores,
        };
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        let y = weights.matmul(&v.contiguous()?)?;
        let y = y.transpose(1, 2)?.reshape((batch, tokens, width))?;
        self.o.forward(&y)
    }
}

/// Each key-value head repeated for the `groups` query heads that share it.
fn repeat_heads(x: &Tensor, groups: usize) -> Result<Tensor> {
    if groups == 1 {
        return Ok(x.clone());
    }
    let (batch, heads, tokens, dim) = x.dims4()?;
    Tensor::cat(&vec![x; groups], 2)?.reshape((batch, heads * groups, tokens, dim))
}

/// The additive mask that hides later tokens from earlier ones, (tokens, start + tokens);
/// none for a single token, which may see everything before it.
fn causal_mask(tokens: usize, start: usize) -> Result<Option<Tensor>> {
    if tokens == 1 {
        return Ok(None);
    }
    let seen = start + tokens;
    let mask: Vec<f32> = (0..tokens)
        .flat_map(|i| {
            (0..seen).map(move |j| {
                if j > start + i {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
        })
        .collect();
    Tensor::from_vec(mask, (tokens, seen), &Device::Cpu).map(Some)
}

/// Opens a GGUF file and reads its header (metadata and tensor table).
pub(super) fn open(path: &Path) -> Result<(gguf_file::Content, std::fs::File)> {
    let mut file = std::fs::File::open(path)?;
    let content = gguf_file::Content::read(&mut file)?;
    Ok((content, file))
}
