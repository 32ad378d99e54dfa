//! Fresh PostgreSQL databases for tests, on the server `FLUE_TEST_DATABASE_URL` names
//! (`.ci/postgres` starts one and prints its URL). Without it the tests fail, saying so.

use sqlx::Connection;

/// The URL of a new, empty database on the test server.
pub async fn fresh_database() -> String {
    let server = std::env::var("FLUE_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "the PostgreSQL tests need a server: run `.ci/postgres` and set \
             FLUE_TEST_DATABASE_URL to the URL it prints"
        )
    });
    let mut conn = sqlx::PgConnection::connect(&server)
        .await
        .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL at {server}: {e}"));
    let name = format!(
        "flue_test_{}_{:016x}",
        std::process::id(),
        fastrand::u64(..)
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("the test database is created");
    let mut url = reqwest::Url::parse(&server).expect("FLUE_TEST_DATABASE_URL is a URL");
    url.set_path(&name);
    url.to_string()
}
