//! Benchmark (not a test) of `gitops-render serve`: how long from a delivery to its
//! completed check run, and how many deliveries a second the server absorbs. It drives
//! the real binary against the local GitHub API stand-in of tests/common/github.rs, on
//! loopback only, with bounded loops.
//!
//! cargo bench --bench webhook                       # defaults
//! BENCH_SEQUENTIAL=50 BENCH_BURST=500 cargo bench --bench webhook

#[path = "../tests/common/github.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{example, pull_request, FakeGitHub, Server};

const REPO: &str = "acme/payments-api";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn sha(i: usize) -> String {
    format!("{i:040x}")
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn completed(gh: &FakeGitHub) -> usize {
    gh.with(|s| {
        s.check_runs
            .iter()
            .filter(|c| c.status == "completed")
            .count()
    })
}

/// Sets up pull request `n`: one changed values file (or none), at `sha(n)`.
fn add_pr(gh: &FakeGitHub, n: usize, with_values: bool) {
    if with_values {
        gh.pr(REPO, n as u64, &[(".gitops/payments-api.yaml", "modified")]);
        gh.file(
            REPO,
            ".gitops/payments-api.yaml",
            &sha(n),
            example("payments-api.yaml"),
        );
    } else {
        gh.pr(REPO, n as u64, &[("README.md", "modified")]);
    }
}

async fn sequential(
    gh: &FakeGitHub,
    server: &Server,
    first: usize,
    count: usize,
    with_values: bool,
) {
    let mut times = Vec::with_capacity(count);
    for n in first..first + count {
        add_pr(gh, n, with_values);
        let before = completed(gh);
        let start = Instant::now();
        let (status, _) = server
            .deliver(
                "pull_request",
                &format!("seq-{n}"),
                &pull_request("opened", REPO, n as u64, &sha(n)),
            )
            .await;
        assert_eq!(status, 202);
        while completed(gh) <= before {
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        times.push(start.elapsed());
    }
    times.sort();
    println!(
        "delivery -> completed check run, {} ({count} sequential): p50 {}  p95 {}  max {}",
        if with_values {
            "one values file, 3 environments"
        } else {
            "no values file"
        },
        ms(pct(&times, 0.5)),
        ms(pct(&times, 0.95)),
        ms(*times.last().unwrap())
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seq = env_usize("BENCH_SEQUENTIAL", 30);
    let burst = env_usize("BENCH_BURST", 300);
    let clients = env_usize("BENCH_CLIENTS", 8);
    let gh = FakeGitHub::start().await;
    let server = Server::start(&gh.url, &["--max-queued", "100000"]);
    // Warm up: the installation token, connections.
    add_pr(&gh, 1, true);
    server
        .deliver(
            "pull_request",
            "warm",
            &pull_request("opened", REPO, 1, &sha(1)),
        )
        .await;
    while completed(&gh) < 1 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    sequential(&gh, &server, 1_000, seq, false).await;
    sequential(&gh, &server, 2_000, seq, true).await;

    // A burst: `clients` senders deliver `burst` pull requests as fast as they can.
    let first = 10_000;
    for n in first..first + burst {
        add_pr(&gh, n, true);
    }
    let bodies: Vec<(String, Vec<u8>)> = (first..first + burst)
        .map(|n| {
            (
                format!("burst-{n}"),
                pull_request("synchronize", REPO, n as u64, &sha(n)),
            )
        })
        .collect();
    let before = completed(&gh);
    let server = std::sync::Arc::new(server);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for chunk in bodies.chunks(burst.div_ceil(clients)) {
        let chunk = chunk.to_vec();
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            for (id, body) in chunk {
                let (status, _) = server.deliver("pull_request", &id, &body).await;
                assert_eq!(status, 202);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let absorbed = start.elapsed();
    while completed(&gh) < before + burst {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let drained = start.elapsed();
    println!(
        "burst of {burst} deliveries from {clients} clients: all answered 202 in {} ({:.0} deliveries/s absorbed); all {burst} check runs completed after {} ({:.1} checks/s with --max-concurrent-checks 4)",
        ms(absorbed),
        burst as f64 / absorbed.as_secs_f64(),
        ms(drained),
        burst as f64 / drained.as_secs_f64()
    );
    let (_, metrics) = server.get("/metrics").await;
    for line in metrics.lines().filter(|l| {
        l.starts_with("gitops_render_check_duration_seconds_sum")
            || l.starts_with("gitops_render_check_duration_seconds_count")
    }) {
        println!("  {line}");
    }
}
