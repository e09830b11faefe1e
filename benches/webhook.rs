//! Benchmark (not a test) of `gitops-render serve`: how long from a delivery to its
//! completed check run, how many deliveries a second the server absorbs, and how much
//! memory unsigned slow uploads can make it hold. It drives the real binary against the
//! local GitHub API stand-in of tests/it/common/github.rs, on loopback only, with bounded
//! loops.
//!
//! cargo bench --bench webhook                       # defaults
//! BENCH_SEQUENTIAL=50 BENCH_BURST=500 cargo bench --bench webhook
//! BENCH_SLOW_UPLOADS=40 cargo bench --bench webhook # only: RSS under 40 slow unsigned uploads
//! GITOPS_RENDER_BIN=/path/to/older/gitops-render BENCH_SLOW_UPLOADS=40 cargo bench --bench webhook
//!
//! The server runs with two settings a real deployment must not copy:
//! - `--write-interval-ms 0`: GitHub asks for a second between content-creating requests
//!   (the default); the stand-in is not GitHub, and with the default every check would
//!   cost at least a second per installation, which measures the pacing, not the server.
//! - `--max-queued 100000`: the burst delivers everything at once to measure how fast
//!   deliveries are absorbed; with the default (1000) a burst over 1000 would make the
//!   senders wait for room, which is the designed behaviour but not what this measures.

#[path = "../tests/it/common/github.rs"]
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
    if let Some(n) = std::env::var("BENCH_SLOW_UPLOADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        slow_uploads(&gh, n);
        return;
    }
    // See the header for why these two settings.
    let server = Server::start(
        &gh.url,
        &["--max-queued", "100000", "--write-interval-ms", "0"],
    );
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

/// RSS of the process, from /proc.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// `n` clients each announce a 25 MiB delivery with no signature, send 24 MiB of it as
/// fast as loopback takes it, and then stall; the server's RSS is sampled until every
/// client has been answered or cut off (bounded at 60 s).
fn slow_uploads(gh: &FakeGitHub, n: usize) {
    use std::io::{Read, Write};
    let bin = std::env::var("GITOPS_RENDER_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_gitops-render").to_string());
    let mut child = std::process::Command::new(&bin)
        .env_clear()
        .env("GITHUB_APP_ID", common::APP_ID.to_string())
        .env("GITHUB_APP_PRIVATE_KEY", &common::keys().private_pem)
        .env("GITHUB_WEBHOOK_SECRET", common::SECRET)
        .env("GITHUB_API_URL", &gh.url)
        .env("RUST_LOG", "error")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start serve");
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let addr = loop {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() == 0 {
            panic!("serve exited");
        }
        if let Some(a) = line
            .trim()
            .strip_prefix("gitops-render serve: listening on http://")
        {
            break a.to_string();
        }
    };
    let pid = child.id();
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_kib(pid);
    let total: usize = 25 * 1024 * 1024;
    let sent: usize = 24 * 1024 * 1024;
    let clients: Vec<_> = (0..n)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(&addr).unwrap();
                s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                let head = format!(
                    "POST /webhook HTTP/1.1\r\nHost: {addr}\r\nX-GitHub-Event: pull_request\r\nX-GitHub-Delivery: slow\r\nContent-Length: {total}\r\n\r\n"
                );
                let _ = s.write_all(head.as_bytes());
                let chunk = vec![b'x'; 64 * 1024];
                let mut done = 0;
                while done < sent {
                    if s.write_all(&chunk).is_err() {
                        break;
                    }
                    done += chunk.len();
                }
                // Stall: the rest never comes. Wait for the server's answer or close.
                let mut answer = Vec::new();
                let _ = s.read_to_end(&mut answer);
                String::from_utf8_lossy(&answer)
                    .split(' ')
                    .nth(1)
                    .unwrap_or("closed")
                    .to_string()
            })
        })
        .collect();
    let start = Instant::now();
    let mut peak = before;
    while clients.iter().any(|c| !c.is_finished()) && start.elapsed() < Duration::from_secs(60) {
        peak = peak.max(rss_kib(pid));
        std::thread::sleep(Duration::from_millis(20));
    }
    let answers: Vec<String> = clients
        .into_iter()
        .filter(|c| c.is_finished())
        .map(|c| c.join().unwrap())
        .collect();
    let mut counts = std::collections::BTreeMap::new();
    for a in &answers {
        *counts.entry(a.clone()).or_insert(0) += 1;
    }
    println!(
        "{n} slow unsigned uploads (25 MiB announced, 24 MiB sent, then stalled) against {bin}: RSS {:.0} MB before, peak {:.0} MB; answers after {:.1} s: {counts:?} ({} of {n} ended)",
        before as f64 / 1024.0,
        peak as f64 / 1024.0,
        start.elapsed().as_secs_f64(),
        answers.len()
    );
    let _ = child.kill();
    let _ = child.wait();
}
