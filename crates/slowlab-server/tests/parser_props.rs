//! Property tests over the path and query parser: arbitrary input never panics, every refusal is a
//! JSON 4xx, and every well-formed request is accepted.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use proptest::prelude::*;
use slowlab_server::options::plan;
use slowlab_server::{App, Config, Stats};
use tower::ServiceExt;

/// A config where nothing waits: any delay above 0 is refused, so the router can be driven fast.
fn instant_config() -> Config {
    Config {
        max_delay: Duration::ZERO,
        ..Config::default()
    }
}

/// Characters that matter to the parser, mixed with anything at all.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9.=&%a-z+-]{0,24}",
        any::<String>(),
        Just("jitter=0.1&seed=1".to_owned()),
        Just("dist=lognormal&sigma=1e9".to_owned()),
    ]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Status, the headers that do not vary from one run to the next, and the body of `target`'s answer.
fn answer(app: &App, method: &str, target: &str) -> (u16, Vec<(String, String)>, bytes::Bytes) {
    let request = Request::builder()
        .method(method)
        .uri(target)
        // HTTP/1.1 requests need a Host header.
        .header("host", "test")
        .body(Body::empty())
        .unwrap();
    let app = app.clone();
    runtime().block_on(async move {
        let response = app.oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let mut headers: Vec<(String, String)> = response
            .headers()
            .iter()
            // The wait measured differs from run to run; Content-Length is set by the router, and
            // by hyper from the body's exact size on the direct path (equal bodies, equal lengths).
            .filter(|(name, _)| !matches!(name.as_str(), "server-timing" | "content-length"))
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("?").to_owned()))
            .collect();
        headers.sort();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, body)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A plain `/{seconds}` takes the direct path; the same with an empty query goes through the
    /// router. Both must answer alike, whatever the segment.
    #[test]
    fn the_direct_path_answers_like_the_router(
        segment in "[0-9.]{1,14}",
        head in any::<bool>(),
    ) {
        let app = App::new(
            Arc::new(Config { over_max: slowlab_server::OverMax::Clamp, ..instant_config() }),
            Arc::new(Stats::default()),
        )
        .unwrap();
        let method = if head { "HEAD" } else { "GET" };
        let mut direct = answer(&app, method, &format!("/{segment}"));
        let mut routed = answer(&app, method, &format!("/{segment}?"));
        if head {
            // The connection drops a HEAD answer's body on the way out; before it, the router
            // has already dropped it and the direct path has not.
            direct.2 = bytes::Bytes::new();
            routed.2 = bytes::Bytes::new();
        }
        prop_assert_eq!(direct, routed, "/{}", segment);
    }

    #[test]
    fn the_parser_never_panics_and_refuses_with_a_4xx(segment in fragment(), query in fragment()) {
        match plan(&segment, Some(&query), &Config::default()) {
            Ok(plan) => prop_assert!(plan.wait <= Config::default().max_delay),
            Err(err) => {
                prop_assert!(err.status().is_client_error());
                prop_assert!(!err.code().is_empty());
                prop_assert!(!err.detail().is_empty());
                // Details quote at most an excerpt of the input.
                prop_assert!(err.detail().len() < 400, "{}", err.detail());
            }
        }
    }

    #[test]
    fn well_formed_requests_are_accepted(
        whole in 0u64..600,
        fraction in proptest::option::of(0u32..1000),
        jitter in proptest::option::of(0u32..5000),
        seed in proptest::option::of(any::<u64>()),
        status in proptest::option::of(200u16..600),
        drip in proptest::option::of(1u32..100),
    ) {
        let segment = match fraction {
            Some(f) => format!("{whole}.{f}"),
            None => whole.to_string(),
        };
        let mut options = Vec::new();
        if let Some(j) = jitter { options.push(format!("jitter={j}")); }
        if let Some(s) = seed { options.push(format!("seed={s}")); }
        if let Some(s) = status { options.push(format!("status={s}")); }
        // A dripped body with a status that has none is a contradiction, refused.
        let bodiless = matches!(status, Some(204 | 205 | 304));
        if let Some(d) = drip.filter(|_| !bodiless) { options.push(format!("drip={d}")); }
        let query = options.join("&");
        let plan = plan(&segment, Some(&query), &Config::default());
        prop_assert!(plan.is_ok(), "/{segment}?{query}: {:?}", plan);
    }

    #[test]
    fn every_refusal_over_the_router_is_a_json_4xx(path in fragment(), query in fragment()) {
        let target = format!("/{path}?{query}");
        // Strings that are not a request target cannot reach the server; skip them.
        let Ok(request) = Request::get(target.as_str()).header("host", "test").body(Body::empty()) else {
            return Ok(());
        };
        // The service every connection runs: size limits, the direct path and the router.
        let router = App::new(Arc::new(instant_config()), Arc::new(Stats::default())).unwrap();
        let (status, content_type, body) = runtime().block_on(async move {
            let response = router.oneshot(request).await.unwrap();
            let status = response.status();
            let content_type = response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap_or_default().to_owned());
            // Faults and drips end or stream on their own; only whole bodies are read.
            let body = if status.is_client_error() {
                response.into_body().collect().await.unwrap().to_bytes()
            } else {
                Default::default()
            };
            (status, content_type, body)
        });
        prop_assert!(!status.is_server_error(), "{target}: {status}");
        if status.is_client_error() {
            prop_assert!(content_type.as_deref().is_some_and(|t| t.starts_with("application/json")));
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            prop_assert!(json["error"].is_string(), "{target}: {json}");
            prop_assert!(json["detail"].is_string(), "{target}: {json}");
        }
    }
}
