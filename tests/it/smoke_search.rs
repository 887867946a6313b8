//! Proves the testbed's search engines are real: bulk-index with explicit ids,
//! search, and overwrite by id, with the Rust Elasticsearch client.

use anyhow::{Context, ensure};
use elasticsearch::http::request::JsonBody;
use elasticsearch::http::transport::Transport;
use elasticsearch::indices::IndicesRefreshParts;
use elasticsearch::{BulkParts, CountParts, Elasticsearch, SearchParts};
use serde_json::{Value, json};

async fn bulk_and_search(url: &str, want_distribution: &str) -> anyhow::Result<()> {
    let client = Elasticsearch::new(Transport::single_node(url).context("building transport")?);

    let info: Value = client.info().send().await.context("GET /")?.json().await?;
    let distribution = info["version"]["distribution"]
        .as_str()
        .unwrap_or("elasticsearch");
    ensure!(
        distribution == want_distribution,
        "expected {want_distribution}, GET / says {info}"
    );

    let index = kelp_tests::unique("smoke");
    let docs = [
        ("a", "payment failed for order 17"),
        ("b", "user logged in"),
        ("c", "payment accepted for order 18"),
    ];
    // Index twice: the second round must overwrite by `_id`, not add documents.
    for round in 0..2 {
        let mut body: Vec<JsonBody<Value>> = Vec::new();
        for (id, message) in docs {
            body.push(json!({"index": {"_id": id}}).into());
            body.push(json!({"message": message, "round": round}).into());
        }
        let response: Value = client
            .bulk(BulkParts::Index(&index))
            .body(body)
            .send()
            .await
            .context("bulk")?
            .json()
            .await?;
        ensure!(
            response["errors"] == json!(false),
            "bulk had errors: {response}"
        );
    }
    client
        .indices()
        .refresh(IndicesRefreshParts::Index(&[&index]))
        .send()
        .await
        .context("refresh")?
        .error_for_status_code()?;

    let count: Value = client
        .count(CountParts::Index(&[&index]))
        .send()
        .await
        .context("count")?
        .json()
        .await?;
    ensure!(count["count"] == json!(3), "expected 3 documents: {count}");

    let hits: Value = client
        .search(SearchParts::Index(&[&index]))
        .body(json!({"query": {"match": {"message": "payment"}}, "sort": ["_doc"]}))
        .send()
        .await
        .context("search")?
        .json()
        .await?;
    let ids: Vec<&str> = hits["hits"]["hits"]
        .as_array()
        .context("no hits array")?
        .iter()
        .filter_map(|hit| hit["_id"].as_str())
        .collect();
    ensure!(
        ids.len() == 2 && ids.contains(&"a") && ids.contains(&"c"),
        "unexpected hits: {hits}"
    );
    ensure!(
        hits["hits"]["hits"][0]["_source"]["round"] == json!(1),
        "document was not overwritten: {hits}"
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up opensearch"]
async fn opensearch_bulk_and_search() -> anyhow::Result<()> {
    let url = kelp_tests::service("KELP_OPENSEARCH_URL", "opensearch")?;
    bulk_and_search(&url, "opensearch").await
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up elasticsearch"]
async fn elasticsearch7_bulk_and_search() -> anyhow::Result<()> {
    let url = kelp_tests::service("KELP_ELASTICSEARCH_URL", "elasticsearch")?;
    bulk_and_search(&url, "elasticsearch").await
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up elasticsearch8"]
async fn elasticsearch8_bulk_and_search() -> anyhow::Result<()> {
    let url = kelp_tests::service("KELP_ELASTICSEARCH8_URL", "elasticsearch8")?;
    bulk_and_search(&url, "elasticsearch").await
}
