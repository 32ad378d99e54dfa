//! A test agent whose tools misbehave on purpose. The instance id `loop-in-create`
//! makes `create` itself spin forever.

use flue_sdk::prelude::*;

fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn build(ctx: &CreateContext) -> AgentConfig {
    if ctx.id == "loop-in-create" {
        spin();
    }
    let id = ctx.id.clone();
    AgentConfig::new("anthropic/claude-haiku-4-5")
        .instructions("A test agent.")
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
        .tool(Tool::new("boom", "Panic.").handler(|_| panic!("boom from the guest")))
        .tool(Tool::new("whoami", "Return the instance id.").handler(move |_| Ok(id.clone())))
}

flue_sdk::export_agent!(build);
