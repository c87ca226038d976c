//! Workload (e): enrichment. Each record needs a 5 ms call to a remote service: the harness's
//! local HTTP service (`bench_app serve PORT`, see `serve`), or, in the simulated variant, 5 ms of
//! async I/O inside the process. The output value is the input value, `|`, and the service's
//! answer for the key (its FNV-1a hash in hex). Same as `Enrich.java`, which calls the service
//! blocking, per record.

use std::convert::Infallible;
use std::time::Duration;

use stoat::prelude::*;

use super::stateless::fnv1a;

/// What the service answers for `key`.
pub fn score_of(key: &str) -> String {
    format!("{:016x}", fnv1a(key.as_bytes()))
}

/// The remote service as the operator sees it.
pub enum Remote {
    /// An HTTP client (with its connection pool) and the service's base URL.
    Http { client: reqwest::Client, base: String },
    /// 5 ms of async I/O in the process.
    Simulated,
}

impl Remote {
    async fn score(&self, key: &str) -> Result<String, reqwest::Error> {
        match self {
            Remote::Http { client, base } => {
                client.get(format!("{base}/score/{key}")).send().await?.error_for_status()?.text().await
            }
            Remote::Simulated => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                Ok(score_of(key))
            }
        }
    }
}

/// Emits one value (written `Option`, as a `Vec<u8>` alone would read as many records).
#[stoat::operator]
async fn enrich(
    #[key] key: &str,
    value: Vec<u8>,
    remote: &Res<Remote>,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let score = remote.score(key).await?;
    let mut out = value;
    out.push(b'|');
    out.extend_from_slice(score.as_bytes());
    Ok(Some(out))
}

/// The topology; `remote` is the service's base URL (`None`: simulated), `concurrency` the calls
/// in flight per lane.
pub fn topology(
    app: &str,
    input: &str,
    output: &str,
    remote: Option<String>,
    concurrency: usize,
) -> Topology {
    let topology = Topology::new(app);
    topology.provide(match remote {
        Some(base) => Remote::Http { client: reqwest::Client::new(), base },
        None => Remote::Simulated,
    });
    let settings = AsyncSettings::DEFAULT
        .concurrency(concurrency)
        .timeout(Duration::from_secs(10))
        .backoff(Duration::from_millis(20));
    topology
        .stream_with(input, Utf8, RawBytes)
        .process_with(enrich {}, settings)
        .to_with(output, Utf8, RawBytes);
    topology
}

/// The harness's remote service: `GET /score/KEY` answers `score_of(KEY)` after 5 ms, on one
/// thread, until killed.
pub fn serve(port: u16) -> std::io::Result<()> {
    use http_body_util::Full;
    use hyper::body::{Bytes, Incoming};
    use hyper::{Request, Response};

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let answer = hyper::service::service_fn(|request: Request<Incoming>| async move {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    let key = request.uri().path().trim_start_matches("/score/");
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(score_of(key)))))
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, answer).await;
            });
        }
    })
}
