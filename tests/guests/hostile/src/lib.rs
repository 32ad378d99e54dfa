//! A test agent that misbehaves on purpose. Its tools loop, exhaust memory, overflow
//! the stack, panic, return too much or bytes that are not UTF-8, sleep past every
//! bound, and try to reach files, environment variables and sockets. Some instance ids
//! make `create` itself misbehave: `loop-in-create`, `huge-config`, `bad-schema`, alone
//! or followed by `#` and anything, so that each attempt can be a new instance, and
//! `long-create-error`.

use flue_sdk::prelude::*;

fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// Recurses until the stack runs out; the frame is kept alive so nothing is elided.
#[allow(unconditional_recursion, reason = "overflowing the stack is the point")]
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    recurse(depth + 1) + frame[depth as usize % 64]
}

/// What a guest can reach of the outside world, reported as JSON.
fn probe_escapes(port: Option<u64>) -> String {
    let outcome = |r: Result<String, std::io::Error>| match r {
        Ok(found) => json!({"ok": found}),
        Err(e) => json!({"error": e.to_string()}),
    };
    let file = std::fs::read_to_string("/etc/passwd");
    let listing = std::fs::read_dir("/").map(|d| d.count().to_string());
    let cwd = std::env::current_dir().map(|d| d.display().to_string());
    let vars: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
    let socket = std::net::TcpStream::connect(("127.0.0.1", port.unwrap_or(80) as u16))
        .map(|_| "connected".to_string());
    let lookup =
        std::net::ToSocketAddrs::to_socket_addrs(&("localhost", 80)).map(|a| a.count().to_string());
    json!({
        "file": outcome(file),
        "listing": outcome(listing),
        "cwd": outcome(cwd),
        "env": vars,
        "socket": outcome(socket),
        "lookup": outcome(lookup),
    })
    .to_string()
}

fn build(ctx: &CreateContext) -> AgentConfig {
    let behaviour = ctx.id.split('#').next().unwrap_or_default();
    if behaviour == "loop-in-create" {
        spin();
    }
    let config = AgentConfig::new("anthropic/claude-haiku-4-5");
    let config = match behaviour {
        "huge-config" => config.instructions("x".repeat(4 << 20)),
        "bad-schema" => config.tool(
            Tool::new("broken", "Its schema is not an object.")
                .parameters(json!(42))
                .handler(|_| Ok(String::new())),
        ),
        _ => config.instructions("A test agent."),
    };
    let id = ctx.id.clone();
    config
        .tool(Tool::new("spin", "Loop forever.").handler(|_| spin()))
        .tool(
            Tool::new("hog", "Allocate memory until it runs out.").handler(|_| {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }),
        )
        .tool(Tool::new("recurse", "Overflow the stack.").handler(|_| Ok(recurse(0).to_string())))
        .tool(Tool::new("boom", "Panic.").handler(|_| panic!("boom from the guest")))
        .tool(Tool::new("chatter", "Write 6 KiB to stderr.").handler(|_| {
            eprintln!("{}", "chatter ".repeat(768));
            Ok("chattered".to_string())
        }))
        .tool(Tool::new("flood", "Return 8 MiB of text.").handler(|_| Ok("y".repeat(8 << 20))))
        .tool(
            Tool::new("garbage", "Return bytes that are not UTF-8.").handler(|_| {
                // SAFETY: deliberately not UTF-8; the host must refuse it when it reads it.
                Ok(unsafe { String::from_utf8_unchecked(vec![0xff, 0xfe, 0xc3, 0x28]) })
            }),
        )
        .tool(Tool::new("nap", "Sleep for an hour.").handler(|_| {
            std::thread::sleep(std::time::Duration::from_secs(3600));
            Ok("rested".into())
        }))
        .tool(
            Tool::new("escape", "Try to reach files, env, sockets.")
                .parameters(json!({
                    "type": "object",
                    "properties": {"port": {"type": "integer"}}
                }))
                .handler(|args| Ok(probe_escapes(args["port"].as_u64()))),
        )
        .tool(Tool::new("whoami", "Return the instance id.").handler(move |_| Ok(id.clone())))
}

/// The agent's exports, on the raw bindings so that `create` can fail: an instance id
/// starting with `long-create-error` gets 1 MiB of error text.
struct Hostile;

impl flue_sdk::bindings::Guest for Hostile {
    fn create(
        ctx: flue_sdk::bindings::flue::agent::types::CreateContext,
    ) -> Result<flue_sdk::bindings::AgentConfig, String> {
        if ctx.id.starts_with("long-create-error") {
            return Err("e".repeat(1 << 20));
        }
        flue_sdk::__create(ctx, build)
    }

    fn call_tool(name: String, args: String) -> Result<String, String> {
        flue_sdk::__call_tool(&name, &args)
    }
}

flue_sdk::bindings::export_bindings!(Hostile with_types_in flue_sdk::bindings);
