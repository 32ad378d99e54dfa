//! The embedded provider, `local/<model>`: GGUF models run in this process on the CPU,
//! with no key and, once the weights are cached, no network. `<model>` is a pinned model
//! (fetched into the model cache on first use), the file name of a `.gguf` file in the
//! model cache, or the path the operator set as `[local] model`.
//!
//! One worker thread owns the loaded model and answers requests one at a time, in the
//! order they come (sessions queue; the model is loaded once per process). It keeps the
//! keys and values of the last prompt, so the next round of a tool loop reads only what
//! is new, and it unloads the model after `idle_unload_secs` without a request.
//!
//! Answers stream like a remote provider's. When tools are offered, text that may be a
//! tool call is held back until the answer is whole and then read leniently
//! ([`tool_calls`]); a call that repeats one already made this turn makes the model
//! answer again without tools, in words: the first token of that answer may not open a
//! JSON value, a tag or a code fence.

mod chat;
mod engine;
mod matrix;
mod tool_calls;
mod transformer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use super::{
    BoxFuture, EventSink, ModelError, ModelRequest, ModelResponse, Provider, StreamEvent, ToolCall,
    Usage, new_tool_call_id,
};
use crate::weights::{self, ModelCache};

pub use engine::{Engine, Generated};

/// The provider name: `local/<model>`.
pub const PROVIDER: &str = "local";

/// Tokens one request may hold, prompt and answer together.
pub const CONTEXT_TOKENS: usize = 4096;

/// `[local]` in `flue.toml`: how the embedded model runs.
#[derive(Debug, Clone, Default, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
pub struct LocalSettings {
    /// Answer with the embedded model when the agent's provider has no API key
    /// (default true; a production host may turn it off).
    #[garde(skip)]
    pub fallback: Option<bool>,
    /// The model the fallback uses: a pinned name, a `.gguf` file name in the model
    /// cache, or a `.gguf` file's path (default the pinned `qwen2.5-coder-1.5b-instruct`).
    #[garde(skip)]
    pub model: Option<String>,
    /// Threads for the model's attention and norms (default: one per core, less one, at
    /// least one). The quantized matrix products run on candle's own pool of one thread
    /// per core, which `CANDLE_NUM_THREADS` caps.
    #[garde(range(min = 1, max = 256))]
    pub threads: Option<usize>,
    /// Seconds without a request before the model is unloaded (default 300; 0 keeps it).
    #[garde(skip)]
    pub idle_unload_secs: Option<u64>,
}

impl LocalSettings {
    /// Whether a keyless provider falls back to the embedded model.
    pub fn fallback(&self) -> bool {
        self.fallback.unwrap_or(true)
    }

    /// Makes `model` a path from the project folder `dir` unless it is a pinned name or
    /// a bare `.gguf` file name (looked up in the model cache when used). Errors, for
    /// `flue.toml`, when it names neither a pinned model nor an existing file.
    pub fn resolve_model(&mut self, dir: &Path) -> Result<(), String> {
        let Some(model) = &mut self.model else {
            return Ok(());
        };
        if weights::pinned(model).is_ok() {
            return Ok(());
        }
        let path = dir.join(&*model);
        if path.is_file() {
            *model = path.display().to_string();
            return Ok(());
        }
        if is_cache_file_name(model) {
            return Ok(());
        }
        Err(format!(
            "[local] model is '{model}': not a pinned model ({}) and no file at {}",
            weights::pinned_names(),
            path.display()
        ))
    }

    /// The model the fallback answers with, as `local/<model>`.
    pub fn fallback_model(&self) -> String {
        let model = self.model.as_deref().unwrap_or(weights::DEFAULT_MODEL);
        format!("{PROVIDER}/{model}")
    }

    /// Threads for the model's attention and norms. On two cores with other load, one
    /// wrote 9.2–10.6 tokens/s and two 8.7–8.8 (`bench-local`).
    pub fn threads(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        self.threads.unwrap_or(cores.saturating_sub(1).max(1))
    }

    fn idle_unload(&self) -> Option<Duration> {
        match self.idle_unload_secs.unwrap_or(300) {
            0 => None,
            secs => Some(Duration::from_secs(secs)),
        }
    }
}

/// The `local` provider: a queue in front of the worker thread that runs the model.
pub struct Local {
    settings: LocalSettings,
    cache: ModelCache,
    worker: OnceLock<mpsc::Sender<Job>>,
    thinking_noted: AtomicBool,
}

struct Job {
    model: String,
    request: ModelRequest,
    events: UnboundedSender<Event>,
}

enum Event {
    Text(String),
    Done(Result<ModelResponse, ModelError>),
}

impl Local {
    /// A provider that runs models from `cache` (pinned names) or from paths.
    pub fn new(settings: LocalSettings, cache: ModelCache) -> Self {
        Self {
            settings,
            cache,
            worker: OnceLock::new(),
            thinking_noted: AtomicBool::new(false),
        }
    }

    /// How this provider runs its models.
    pub fn settings(&self) -> &LocalSettings {
        &self.settings
    }

    fn worker(&self) -> &mpsc::Sender<Job> {
        self.worker.get_or_init(|| {
            let (jobs, queue) = mpsc::channel();
            let worker = Worker {
                configured: self.settings.model.clone(),
                threads: self.settings.threads(),
                idle_unload: self.settings.idle_unload(),
                cache: self.cache.clone(),
                loaded: None,
            };
            std::thread::Builder::new()
                .name("flue-local-model".into())
                .spawn(move || worker.serve(&queue))
                .expect("a thread can be started");
            jobs
        })
    }

    async fn answer(
        &self,
        request: &ModelRequest,
        sink: EventSink<'_>,
    ) -> Result<ModelResponse, ModelError> {
        if request.thinking.is_some() && !self.thinking_noted.swap(true, Ordering::Relaxed) {
            tracing::info!("local models do not think first: the thinking level is ignored");
        }
        let (events, mut received) = unbounded_channel();
        let job = Job {
            model: request.model.clone(),
            request: request.clone(),
            events,
        };
        let gone = || ModelError::Local("the local model's worker stopped".into());
        self.worker().send(job).map_err(|_| gone())?;
        while let Some(event) = received.recv().await {
            match event {
                Event::Text(text) => sink(StreamEvent::TextDelta(text)),
                Event::Done(result) => return result,
            }
        }
        Err(gone())
    }
}

impl Provider for Local {
    fn complete<'a>(
        &'a self,
        request: &'a ModelRequest,
    ) -> BoxFuture<'a, Result<ModelResponse, ModelError>> {
        Box::pin(async move { self.answer(request, &mut |_| {}).await })
    }

    fn stream<'a>(
        &'a self,
        request: &'a ModelRequest,
        sink: EventSink<'a>,
    ) -> BoxFuture<'a, Result<ModelResponse, ModelError>> {
        Box::pin(self.answer(request, sink))
    }
}

/// The thread that owns the loaded model.
struct Worker {
    /// The operator's `[local] model`.
    configured: Option<String>,
    threads: usize,
    idle_unload: Option<Duration>,
    cache: ModelCache,
    loaded: Option<(PathBuf, Engine)>,
}

impl Worker {
    fn serve(mut self, queue: &mpsc::Receiver<Job>) {
        loop {
            let job = match (&self.loaded, self.idle_unload) {
                (Some(_), Some(idle)) => queue.recv_timeout(idle),
                _ => queue
                    .recv()
                    .map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            };
            match job {
                Ok(job) => {
                    let result = self.run(&job);
                    let _ = job.events.send(Event::Done(result));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some((path, _)) = self.loaded.take() {
                        tracing::info!(model = %path.display(), "local model unloaded after being idle");
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn run(&mut self, job: &Job) -> Result<ModelResponse, ModelError> {
        let engine = self.engine(&job.model)?;
        let request = &job.request;
        let offer_tools = !request.tools.is_empty();
        let first = turn(engine, request, offer_tools, &job.events)?;
        let repeated = tool_calls::repeats_earlier(&first.response.tool_calls, &request.messages);
        if !(repeated || first.lone_call) {
            return Ok(first.response);
        }
        tracing::debug!(
            repeated,
            unoffered = first.lone_call,
            "the local model repeated a tool call or called one not offered; asking again \
             without tools"
        );
        let mut second = turn(engine, request, false, &job.events)?.response;
        second.usage.add(first.response.usage);
        Ok(second)
    }

    /// The engine for `model`, loaded (and its weights fetched) if need be.
    fn engine(&mut self, model: &str) -> Result<&mut Engine, ModelError> {
        let path = locate(&self.cache, self.configured.as_deref(), model)?;
        if self
            .loaded
            .as_ref()
            .is_none_or(|(loaded, _)| *loaded != path)
        {
            self.loaded = None;
            let started = Instant::now();
            let engine =
                Engine::load(&path, self.threads, CONTEXT_TOKENS).map_err(ModelError::Local)?;
            tracing::info!(
                model = %path.display(),
                threads = self.threads,
                seconds = started.elapsed().as_secs_f32(),
                "local model loaded"
            );
            self.loaded = Some((path, engine));
        }
        Ok(&mut self.loaded.as_mut().expect("loaded just now").1)
    }
}

/// The file of `model`: a pinned model's (fetched if missing), a `.gguf` file in the
/// model cache named by its file name, or the path the operator set as `[local] model`.
/// Agents and callers name models too, so no other path is opened, and the errors, which
/// callers see, name no path.
fn locate(
    cache: &ModelCache,
    configured: Option<&str>,
    model: &str,
) -> Result<PathBuf, ModelError> {
    if let Ok(pinned) = weights::pinned(model) {
        return weights::ensure(cache, pinned).map_err(ModelError::Local);
    }
    let (path, missing) = match model {
        _ if Some(model) == configured => (
            PathBuf::from(model),
            ModelError::Local(format!(
                "[local] model in flue.toml names a file that is not there: name a pinned \
                 model ({}) or a .gguf file's path",
                weights::pinned_names()
            )),
        ),
        _ if is_cache_file_name(model) => (
            cache.dir.join(model),
            ModelError::UnknownModel(format!(
                "no '{model}' in the model cache: `flue models list` shows what is there"
            )),
        ),
        _ => {
            return Err(ModelError::UnknownModel(format!(
                "unknown local model '{model}': use a pinned one ({}), the file name of a \
                 .gguf file in the model cache, or set [local] model to a file's path",
                weights::pinned_names()
            )));
        }
    };
    match path.is_file() {
        true => Ok(path),
        false => Err(missing),
    }
}

/// Whether `model` is the bare file name of a `.gguf` file, looked up in the model cache.
fn is_cache_file_name(model: &str) -> bool {
    model.ends_with(".gguf") && !model.contains(['/', '\\'])
}

/// One generated answer, and whether it was nothing but a call to a tool not offered
/// (then none of it was streamed, and [`Worker::run`] asks again).
struct Answer {
    response: ModelResponse,
    lone_call: bool,
}

/// Generates one answer to `request`, streaming text that cannot be a tool call.
fn turn(
    engine: &mut Engine,
    request: &ModelRequest,
    offer_tools: bool,
    events: &UnboundedSender<Event>,
) -> Result<Answer, ModelError> {
    let prompt = engine
        .tokenize(&chat::prompt(request, offer_tools))
        .map_err(ModelError::Local)?;
    if prompt.len() >= engine.context() {
        return Err(ModelError::Local(format!(
            "the conversation is {} tokens; the local model reads at most {}",
            prompt.len(),
            engine.context()
        )));
    }
    let mut text = String::new();
    let mut shown = 0;
    let mut holding = false;
    let mut on_text = |piece: &str| {
        text.push_str(piece);
        if holding {
            return;
        }
        let end = match offer_tools.then(|| tool_calls::possible_start(&text[shown..])) {
            Some(Some(start)) => {
                holding = true;
                shown + start
            }
            _ => text.len(),
        };
        if end > shown {
            let _ = events.send(Event::Text(text[shown..end].to_string()));
            shown = end;
        }
    };
    let cancelled = || events.is_closed();
    let max_tokens = usize::try_from(request.max_tokens).unwrap_or(usize::MAX);
    // Asked again without its tools, the model must answer in words, not with a call.
    let prose = !offer_tools && !request.tools.is_empty();
    let generated = engine
        .generate(&prompt, max_tokens, prose, &mut on_text, &cancelled)
        .map_err(ModelError::Local)?;
    if generated.looped {
        tracing::info!(
            tokens = generated.output_tokens,
            "the local model wrote the same words three times in a row; its answer ends there"
        );
    }
    tracing::debug!(
        output = %text,
        prompt_tokens = generated.prompt_tokens,
        read = generated.prompt_read,
        written = generated.output_tokens,
        reading_ms = generated.reading.as_millis() as u64,
        writing_ms = generated.writing.as_millis() as u64,
        "the local model answered"
    );
    let (answer, calls, lone_call) = match offer_tools {
        true => {
            let rest = tool_calls::parse(&text[shown..], &request.tools);
            let rest_text = match rest.calls.is_empty() {
                true => text[shown..].to_string(),
                false => rest.text,
            };
            let answer = format!("{}{rest_text}", &text[..shown]);
            let lone_call = rest.calls.is_empty() && tool_calls::only_a_call(&answer);
            if !rest_text.is_empty() && !lone_call {
                let _ = events.send(Event::Text(rest_text));
            }
            (answer, rest.calls, lone_call)
        }
        false => (text, Vec::new(), false),
    };
    let usage = Usage {
        input: generated.prompt_read as u64,
        output: generated.output_tokens as u64,
        cache_read: (generated.prompt_tokens - generated.prompt_read) as u64,
        cache_write: 0,
    };
    let response = ModelResponse {
        text: answer.trim().to_string(),
        tool_calls: calls
            .into_iter()
            .map(|call| ToolCall {
                id: new_tool_call_id(),
                name: call.name,
                arguments: call.arguments,
            })
            .collect(),
        reasoning: Vec::new(),
        usage,
    };
    Ok(Answer {
        response,
        lone_call,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(model: &str, dir: &Path) -> Result<Option<String>, String> {
        let mut settings = LocalSettings {
            model: Some(model.to_string()),
            ..LocalSettings::default()
        };
        settings.resolve_model(dir).map(|()| settings.model)
    }

    #[test]
    fn local_model_is_checked_and_made_a_path_from_the_project() {
        let project = tempfile::tempdir().unwrap();
        std::fs::create_dir(project.path().join("models")).unwrap();
        std::fs::write(project.path().join("models/mine.gguf"), b"GGUF").unwrap();

        let pinned = weights::DEFAULT_MODEL;
        assert_eq!(resolved(pinned, project.path()).unwrap().unwrap(), pinned);
        let mine = resolved("models/mine.gguf", project.path())
            .unwrap()
            .unwrap();
        assert_eq!(Path::new(&mine), project.path().join("models/mine.gguf"));
        assert_eq!(
            resolved("cached.gguf", project.path()).unwrap().unwrap(),
            "cached.gguf",
            "a bare file name is looked up in the model cache when used"
        );
        let error = resolved("./models/absent.gguf", project.path()).unwrap_err();
        assert!(error.contains("not a pinned model"), "{error}");
        assert!(error.contains("absent.gguf"), "{error}");
        assert!(resolved("qwen-wrong", project.path()).is_err());
    }
}
