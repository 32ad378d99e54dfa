//! Scale-out figures: prompts per second and latency through one host and through two
//! hosts sharing one PostgreSQL database, with one host on SQLite for reference (instant
//! fake provider, all on loopback). The load alternates between the hosts prompt by
//! prompt, as a round-robin load balancer would, so every session is served by both.
//! The hosts run in this process and share its cores: on one machine the figures show
//! what the shared database costs, not the gain of a second machine's cores.
//!
//! Needs a PostgreSQL server: `export FLUE_TEST_DATABASE_URL=$(.ci/postgres)`, then
//! `cargo run --release -p flue-bench --bin bench-scale`.

use flue_tests::{FakeProvider, InProcessServer, Project, Reply, guest, load};

/// Starts `count` hosts on `project`, each with its own data directory, sharing the
/// PostgreSQL database at `database` (or each on its own SQLite file without one).
async fn hosts(
    project: &Project,
    fake: &FakeProvider,
    count: usize,
    database: Option<&str>,
) -> Vec<InProcessServer> {
    let mut servers = Vec::new();
    for n in 0..count {
        let mut options = project.options(fake);
        options.data_dir = project
            .path()
            .join(format!("host-{}-{n}", fastrand::u32(..)));
        options.database_url = database.map(str::to_string);
        let host = flue_host::Host::open(options)
            .await
            .expect("the host starts");
        servers.push(InProcessServer::start(host).await);
    }
    servers
}

#[tokio::main]
async fn main() {
    let fake = FakeProvider::instant(Reply::Text("ok".into())).await;
    let project = Project::empty();
    project.add_agent("support_assistant", &guest("agents/support_assistant"));
    for (label, count, postgres) in [
        ("1 host, SQLite:        ", 1, false),
        ("1 host, PostgreSQL:    ", 1, true),
        ("2 hosts, one PostgreSQL:", 2, true),
    ] {
        let database = match postgres {
            true => Some(flue_tests::postgres::fresh_database().await),
            false => None,
        };
        let servers = hosts(&project, &fake, count, database.as_deref()).await;
        let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
        load::prompts("warm-up", &urls, 1).await;
        for concurrency in [1, 32] {
            load::prompts(label, &urls, concurrency).await;
        }
        for server in servers {
            server.stop().await;
        }
    }
}
