//! Recent-post listings served to the connectors' post lookup.

use nexiom_connectors::testing::SeedPost;
use serde_json::json;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A Graph listing at `/{version}/{account}/{edge}`, `text` and `time` naming
/// the fields (Facebook `message` / `created_time`, Instagram `caption` /
/// `timestamp`).
pub async fn mount_graph(
    server: &MockServer,
    account: &str,
    edge: &str,
    (text, time): (&str, &str),
    posts: &[SeedPost],
) -> bool {
    let data: Vec<_> = posts
        .iter()
        .map(|p| json!({"id": p.id, text: p.text, time: super::graph_time(p.created_unix)}))
        .collect();
    Mock::given(method("GET"))
        .and(path_regex(format!(r"^/v[0-9.]+/{account}/{edge}$")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": data})))
        .mount(server)
        .await;
    true
}

/// LinkedIn's `GET /rest/posts?q=author` listing.
pub async fn mount_linkedin(server: &MockServer, posts: &[SeedPost]) -> bool {
    let elements: Vec<_> = posts
        .iter()
        .map(|p| {
            json!({"id": p.id, "commentary": p.text, "createdAt": p.created_unix * 1000,
                   "lastModifiedAt": p.created_unix * 1000})
        })
        .collect();
    Mock::given(method("GET"))
        .and(path("/rest/posts"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"elements": elements, "paging": {"start": 0, "total": posts.len()}}),
        ))
        .mount(server)
        .await;
    true
}
