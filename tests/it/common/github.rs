//! A local stand-in for GitHub's REST API, and helpers that drive the real
//! `gitops-render serve` binary against it (used by `serve`, and by benches/webhook.rs).
//!
//! The stand-in answers the few endpoints the App uses with GitHub's documented response
//! shapes (installation access tokens, pull request files, repository contents, check
//! runs), insists on what GitHub insists on (an RS256 App JWT for a token, that token
//! for everything else, at most 50 annotations per check-run request, output under
//! 65,535 characters), records what it was asked, and can be told to fail or stall.
//! Everything listens on 127.0.0.1 with ephemeral ports.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use octocrab::jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};

pub const APP_ID: u64 = 4242;
pub const INSTALLATION: u64 = 31337;
pub const SECRET: &str = "test-webhook-secret-5f1d";
const TOKEN_PREFIX: &str = "ghs_testtoken";

/// A test-only RSA key pair, made fresh for each test process with `openssl`.
pub struct Keys {
    /// PKCS#8 (`BEGIN PRIVATE KEY`).
    pub private_pem: String,
    /// The same key as PKCS#1 (`BEGIN RSA PRIVATE KEY`), as GitHub hands App keys out.
    pub pkcs1_pem: String,
    pub public_pem: String,
}

/// Runs `openssl ARGS` with `input` on stdin; its stdout.
pub fn openssl(args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl is needed by these tests");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl {args:?} failed");
    out.stdout
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let private = Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ])
            .stderr(Stdio::null())
            .output()
            .expect("openssl is needed to make the test App key");
        assert!(private.status.success(), "openssl genpkey failed");
        let public = openssl(&["pkey", "-pubout"], &private.stdout);
        let pkcs1 = openssl(&["pkey", "-traditional"], &private.stdout);
        Keys {
            private_pem: String::from_utf8(private.stdout).unwrap(),
            pkcs1_pem: String::from_utf8(pkcs1).unwrap(),
            public_pem: String::from_utf8(public).unwrap(),
        }
    })
}

/// An answer the stand-in gives instead of (or before) the real one.
#[derive(Clone, Debug)]
pub struct Fault {
    pub method: &'static str,
    /// Matches when the request's path contains this.
    pub path_contains: String,
    /// How many matching requests it applies to.
    pub times: u32,
    /// 0: no answer of its own, only `delay` before the normal answer.
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Fault {
    pub fn status(method: &'static str, path_contains: &str, times: u32, status: u16) -> Self {
        Fault {
            method,
            path_contains: path_contains.to_string(),
            times,
            status,
            headers: Vec::new(),
            body: json!({"message": "Server Error", "documentation_url": "https://docs.github.com/rest"}).to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn delay(method: &'static str, path_contains: &str, delay: Duration) -> Self {
        Fault {
            status: 0,
            delay,
            ..Fault::status(method, path_contains, u32::MAX, 0)
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }

    pub fn body(mut self, body: Value) -> Self {
        self.body = body.to_string();
        self
    }
}

#[derive(Clone, Debug, Default)]
pub struct CheckRun {
    pub id: u64,
    pub repo: String,
    pub name: String,
    pub head_sha: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub title: String,
    pub summary: String,
    pub text: Option<String>,
    pub annotations: Vec<Value>,
    /// Every status it was given, in order (`in_progress`, ..., `completed`).
    pub statuses: Vec<String>,
    pub updates: u32,
    pub external_id: String,
    /// The `output` of every request that wrote this run, in order.
    pub outputs: Vec<Value>,
}

#[derive(Default)]
pub struct GitHubState {
    /// `(repo, number)` -> `(filename, status)`
    pub pr_files: HashMap<(String, u64), Vec<(String, String)>>,
    /// `(repo, path, ref)` -> bytes
    pub contents: HashMap<(String, String, String), Vec<u8>>,
    pub check_runs: Vec<CheckRun>,
    /// `METHOD /path?query`, in order.
    pub requests: Vec<String>,
    /// The same, with when each arrived and when its answer left.
    pub timed: Vec<(Instant, Instant, String)>,
    /// `(repo, number)` -> the pull request's head commit, for "List pull requests
    /// associated with a commit".
    pub pr_heads: HashMap<(String, u64), String>,
    pub faults: Vec<Fault>,
    pub tokens_issued: u32,
    /// Why requests were refused (bad JWT, bad token, invalid check-run body).
    pub refusals: Vec<String>,
}

#[derive(Clone)]
pub struct FakeGitHub {
    pub url: String,
    pub state: Arc<Mutex<GitHubState>>,
}

impl FakeGitHub {
    pub async fn start() -> FakeGitHub {
        let state = Arc::new(Mutex::new(GitHubState::default()));
        let router = Router::new().fallback(handle).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        FakeGitHub { url, state }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut GitHubState) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    pub fn pr(&self, repo: &str, number: u64, files: &[(&str, &str)]) {
        self.with(|s| {
            s.pr_files.insert(
                (repo.to_string(), number),
                files
                    .iter()
                    .map(|(f, st)| (f.to_string(), st.to_string()))
                    .collect(),
            )
        });
    }

    pub fn file(&self, repo: &str, path: &str, git_ref: &str, bytes: impl Into<Vec<u8>>) {
        self.with(|s| {
            s.contents.insert(
                (repo.to_string(), path.to_string(), git_ref.to_string()),
                bytes.into(),
            )
        });
    }

    /// Makes `repo`#`number` an open pull request whose head is `sha`.
    pub fn pr_head(&self, repo: &str, number: u64, sha: &str) {
        self.with(|s| {
            s.pr_heads
                .insert((repo.to_string(), number), sha.to_string())
        });
    }

    pub fn fault(&self, fault: Fault) {
        self.with(|s| s.faults.push(fault));
    }

    pub fn check_runs(&self) -> Vec<CheckRun> {
        self.with(|s| s.check_runs.clone())
    }

    pub fn requests(&self) -> Vec<String> {
        self.with(|s| s.requests.clone())
    }

    /// Waits until `n` check runs are completed; panics after `timeout`.
    pub async fn completed(&self, n: usize, timeout: Duration) -> Vec<CheckRun> {
        let start = Instant::now();
        loop {
            let done: Vec<CheckRun> = self
                .check_runs()
                .into_iter()
                .filter(|c| c.status == "completed")
                .collect();
            if done.len() >= n {
                return done;
            }
            if start.elapsed() > timeout {
                panic!(
                    "{} of {n} check runs completed after {timeout:?}; runs: {:#?}; refusals: {:?}",
                    done.len(),
                    self.check_runs(),
                    self.with(|s| s.refusals.clone())
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn answer(status: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

fn refuse(state: &Mutex<GitHubState>, status: u16, why: String) -> Response {
    state.lock().unwrap().refusals.push(why.clone());
    answer(
        status,
        json!({"message": why, "documentation_url": "https://docs.github.com/rest"}),
    )
}

#[derive(serde::Deserialize)]
struct Claims {
    iss: Value,
    iat: u64,
    exp: u64,
}

async fn handle(
    State(state): State<Arc<Mutex<GitHubState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let arrived = Instant::now();
    let what = format!(
        "{method} {}",
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("")
    );
    let response = answer_request(state.clone(), method, uri, headers, body).await;
    state
        .lock()
        .unwrap()
        .timed
        .push((arrived, Instant::now(), what));
    response
}

async fn answer_request(
    state: Arc<Mutex<GitHubState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let query: HashMap<String, String> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let fault = {
        let mut s = state.lock().unwrap();
        s.requests.push(format!(
            "{method} {}",
            uri.path_and_query().map(|p| p.as_str()).unwrap_or("")
        ));
        let hit = s.faults.iter_mut().find(|f| {
            f.method == method.as_str() && path.contains(&f.path_contains) && f.times > 0
        });
        hit.map(|f| {
            f.times -= 1;
            f.clone()
        })
    };
    if let Some(f) = fault {
        tokio::time::sleep(f.delay).await;
        if f.status != 0 {
            let mut r = (StatusCode::from_u16(f.status).unwrap(), f.body).into_response();
            for (k, v) in f.headers {
                r.headers_mut().insert(k, v.parse().unwrap());
            }
            return r;
        }
    }
    // What GitHub asks of every request: the app's name as its only User-Agent, and
    // the API version it was written for.
    let agents: Vec<&str> = headers
        .get_all("user-agent")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if agents.len() != 1 || !agents[0].starts_with("gitops-render/") {
        return refuse(
            &state,
            403,
            format!("User-Agent {agents:?} is not the app's name"),
        );
    }
    if headers
        .get("x-github-api-version")
        .and_then(|v| v.to_str().ok())
        != Some("2022-11-28")
    {
        return refuse(
            &state,
            400,
            "X-GitHub-Api-Version missing or unsupported".into(),
        );
    }
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();

    // POST /app/installations/{id}/access_tokens: the App's JWT, verified.
    if let ["app", "installations", id, "access_tokens"] = segments.as_slice() {
        if method != Method::POST {
            return answer(404, json!({"message": "Not Found"}));
        }
        if headers.get("accept").and_then(|v| v.to_str().ok())
            != Some("application/vnd.github+json")
        {
            return refuse(
                &state,
                415,
                "the token request must accept application/vnd.github+json".into(),
            );
        }
        let Some(jwt) = auth.strip_prefix("Bearer ") else {
            return refuse(&state, 401, "A JSON web token could not be decoded".into());
        };
        let key = DecodingKey::from_rsa_pem(keys().public_pem.as_bytes()).unwrap();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_required_spec_claims(&["exp", "iat"]);
        let claims = match decode::<Claims>(jwt, &key, &validation) {
            Ok(c) => c.claims,
            Err(e) => {
                return refuse(
                    &state,
                    401,
                    format!("'Expiration time' claim or signature invalid: {e}"),
                )
            }
        };
        let iss_ok = claims.iss == json!(APP_ID) || claims.iss == json!(APP_ID.to_string());
        if !iss_ok || claims.exp.saturating_sub(claims.iat) > 600 + 60 {
            return refuse(
                &state,
                401,
                format!(
                    "bad JWT claims: iss {} iat {} exp {}",
                    claims.iss, claims.iat, claims.exp
                ),
            );
        }
        let mut s = state.lock().unwrap();
        s.tokens_issued += 1;
        let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3600);
        return answer(
            201,
            json!({
                "token": format!("{TOKEN_PREFIX}_{id}_{}", s.tokens_issued),
                "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "permissions": {"checks": "write", "contents": "read", "pull_requests": "read", "metadata": "read"},
                "repository_selection": "all"
            }),
        );
    }

    // GET /repos/{owner}/{repo}/installation: the App's JWT, verified; every
    // repository is in installation INSTALLATION.
    if let ["repos", owner, name, "installation"] = segments.as_slice() {
        let Some(jwt) = auth.strip_prefix("Bearer ") else {
            return refuse(&state, 401, "A JSON web token could not be decoded".into());
        };
        let key = DecodingKey::from_rsa_pem(keys().public_pem.as_bytes()).unwrap();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_required_spec_claims(&["exp", "iat"]);
        if let Err(e) = decode::<Claims>(jwt, &key, &validation) {
            return refuse(&state, 401, format!("bad App JWT for {owner}/{name}: {e}"));
        }
        return answer(
            200,
            json!({"id": INSTALLATION, "app_id": APP_ID, "account": {"login": owner}}),
        );
    }

    if !auth.starts_with(&format!("Bearer {TOKEN_PREFIX}_{INSTALLATION}_"))
        && !auth.starts_with(&format!("token {TOKEN_PREFIX}_{INSTALLATION}_"))
    {
        return refuse(&state, 401, format!("Bad credentials for {method} {path}"));
    }

    match (method.as_str(), segments.as_slice()) {
        ("GET", ["repos", owner, name, "pulls", number, "files"]) => {
            let repo = format!("{owner}/{name}");
            let number: u64 = number.parse().unwrap_or(0);
            let per_page: usize = query
                .get("per_page")
                .and_then(|v| v.parse().ok())
                .unwrap_or(30)
                .min(100);
            let page: usize = query
                .get("page")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1)
                .max(1);
            let s = state.lock().unwrap();
            let Some(files) = s.pr_files.get(&(repo.clone(), number)) else {
                return answer(404, json!({"message": "Not Found"}));
            };
            let list: Vec<Value> = files
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|(f, st)| {
                    json!({
                        "sha": "bbcd538c8e72b8c175046e27cc8f907076331401",
                        "filename": f,
                        "status": st,
                        "additions": 1, "deletions": 1, "changes": 2,
                        "blob_url": format!("https://github.com/{repo}/blob/sha/{f}"),
                        "raw_url": format!("https://github.com/{repo}/raw/sha/{f}"),
                        "contents_url": format!("https://api.github.com/repos/{repo}/contents/{f}?ref=sha"),
                        "patch": "@@ -1 +1 @@"
                    })
                })
                .collect();
            answer(200, Value::Array(list))
        }
        ("GET", ["repos", owner, name, "commits", sha, "pulls"]) => {
            let repo = format!("{owner}/{name}");
            let s = state.lock().unwrap();
            let mut pulls: Vec<Value> = s
                .pr_heads
                .iter()
                .filter(|((r, _), head)| r == &repo && head.as_str() == *sha)
                .map(|((_, n), head)| {
                    json!({
                        "number": n, "state": "open", "title": format!("PR {n}"),
                        "head": {"sha": head, "ref": "feature", "repo": {"full_name": "fork/payments-api"}},
                        "base": {"sha": "0".repeat(40), "ref": "main"}
                    })
                })
                .collect();
            pulls.sort_by_key(|p| p["number"].as_u64());
            answer(200, Value::Array(pulls))
        }
        ("GET", ["repos", owner, name, "contents", rest @ ..]) => {
            let repo = format!("{owner}/{name}");
            let file_path = rest.join("/").replace("%20", " ");
            let git_ref = query.get("ref").cloned().unwrap_or_else(|| "main".into());
            let s = state.lock().unwrap();
            let accept = headers
                .get("accept")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if let Some(bytes) = s
                .contents
                .get(&(repo.clone(), file_path.clone(), git_ref.clone()))
            {
                if accept.contains("raw") {
                    return (
                        StatusCode::OK,
                        [("content-type", "application/vnd.github.raw+json")],
                        bytes.clone(),
                    )
                        .into_response();
                }
                drop(s);
                return refuse(&state, 415, "this stand-in serves files only raw".into());
            }
            // A directory: its direct entries.
            let prefix = format!("{file_path}/");
            let mut entries: Vec<Value> = s
                .contents
                .iter()
                .filter(|((r, p, g), _)| r == &repo && g == &git_ref && p.starts_with(&prefix) && !p[prefix.len()..].contains('/'))
                .map(|((_, p, _), b)| {
                    json!({
                        "type": "file", "size": b.len(), "name": &p[prefix.len()..], "path": p,
                        "sha": gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::objs::Kind::Blob, b).unwrap().to_string(),
                        "url": format!("https://api.github.com/repos/{repo}/contents/{p}?ref={git_ref}"),
                        "git_url": null, "html_url": null, "download_url": null,
                        "_links": {}
                    })
                })
                .collect();
            if entries.is_empty() {
                return answer(
                    404,
                    json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest/repos/contents#get-repository-content"}),
                );
            }
            entries.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            answer(200, Value::Array(entries))
        }
        ("POST", ["repos", owner, name, "check-runs"]) => {
            let repo = format!("{owner}/{name}");
            let body: Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => return refuse(&state, 400, format!("Problems parsing JSON: {e}")),
            };
            if let Err(why) = validate_check_run_body(&body, true) {
                return refuse(&state, 422, why);
            }
            let mut s = state.lock().unwrap();
            let id = 900_000 + s.check_runs.len() as u64 + 1;
            let status = body["status"].as_str().unwrap_or("queued").to_string();
            let mut run = CheckRun {
                id,
                repo: repo.clone(),
                name: body["name"].as_str().unwrap().to_string(),
                head_sha: body["head_sha"].as_str().unwrap().to_string(),
                status: status.clone(),
                conclusion: body["conclusion"].as_str().map(str::to_string),
                statuses: vec![status],
                external_id: body["external_id"].as_str().unwrap_or("").to_string(),
                ..CheckRun::default()
            };
            apply_output(&mut run, &body);
            let shape = check_run_json(&run);
            s.check_runs.push(run);
            answer(201, shape)
        }
        ("PATCH", ["repos", _owner, _name, "check-runs", id]) => {
            let body: Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => return refuse(&state, 400, format!("Problems parsing JSON: {e}")),
            };
            if let Err(why) = validate_check_run_body(&body, false) {
                return refuse(&state, 422, why);
            }
            let id: u64 = id.parse().unwrap_or(0);
            let mut s = state.lock().unwrap();
            let Some(run) = s.check_runs.iter_mut().find(|r| r.id == id) else {
                return answer(404, json!({"message": "Not Found"}));
            };
            if let Some(st) = body["status"].as_str() {
                run.status = st.to_string();
                run.statuses.push(st.to_string());
            }
            if let Some(c) = body["conclusion"].as_str() {
                run.conclusion = Some(c.to_string());
                run.status = "completed".into();
            }
            run.updates += 1;
            apply_output(run, &body);
            answer(200, check_run_json(run))
        }
        _ => answer(
            404,
            json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}),
        ),
    }
}

/// What GitHub's "Create/Update a check run" validate and answer 422 for.
fn validate_check_run_body(body: &Value, create: bool) -> Result<(), String> {
    if create && (body["name"].as_str().is_none() || body["head_sha"].as_str().is_none()) {
        return Err("name and head_sha are required".into());
    }
    if let Some(st) = body.get("status") {
        if !matches!(st.as_str(), Some("queued" | "in_progress" | "completed")) {
            return Err(format!("status {st} is not valid"));
        }
    }
    if let Some(c) = body.get("conclusion") {
        if !matches!(
            c.as_str(),
            Some(
                "success"
                    | "failure"
                    | "neutral"
                    | "cancelled"
                    | "skipped"
                    | "timed_out"
                    | "action_required"
            )
        ) {
            return Err(format!("conclusion {c} is not valid"));
        }
    }
    if body.get("status").and_then(Value::as_str) == Some("completed")
        && body.get("conclusion").is_none()
    {
        return Err("conclusion is required when status is completed".into());
    }
    if let Some(out) = body.get("output") {
        if out["title"].as_str().is_none() || out["summary"].as_str().is_none() {
            return Err("output needs title and summary".into());
        }
        for key in ["summary", "text"] {
            if out[key]
                .as_str()
                .is_some_and(|s| s.chars().count() > 65_535)
            {
                return Err(format!("output.{key} is longer than 65535 characters"));
            }
        }
        if let Some(a) = out["annotations"].as_array() {
            if a.len() > 50 {
                return Err(format!(
                    "{} annotations in one request; the maximum is 50",
                    a.len()
                ));
            }
            for ann in a {
                for k in [
                    "path",
                    "start_line",
                    "end_line",
                    "annotation_level",
                    "message",
                ] {
                    if ann.get(k).is_none() {
                        return Err(format!("annotation without {k}: {ann}"));
                    }
                }
            }
        }
    }
    Ok(())
}

fn apply_output(run: &mut CheckRun, body: &Value) {
    if let Some(id) = body["external_id"].as_str() {
        run.external_id = id.to_string();
    }
    if let Some(out) = body.get("output") {
        run.outputs.push(out.clone());
        run.title = out["title"].as_str().unwrap_or_default().to_string();
        run.summary = out["summary"].as_str().unwrap_or_default().to_string();
        if let Some(t) = out["text"].as_str() {
            run.text = Some(t.to_string());
        }
        if let Some(a) = out["annotations"].as_array() {
            run.annotations.extend(a.iter().cloned());
        }
    }
}

fn check_run_json(run: &CheckRun) -> Value {
    json!({
        "id": run.id,
        "node_id": format!("CR_{}", run.id),
        "head_sha": run.head_sha,
        "external_id": run.external_id,
        "url": format!("https://api.github.com/repos/{}/check-runs/{}", run.repo, run.id),
        "html_url": format!("https://github.com/{}/runs/{}", run.repo, run.id),
        "details_url": null,
        "status": run.status,
        "conclusion": run.conclusion,
        "started_at": "2026-11-02T09:14:05Z",
        "completed_at": null,
        "output": {"title": run.title, "summary": run.summary, "text": run.text, "annotations_count": run.annotations.len(), "annotations_url": ""},
        "name": run.name,
        "check_suite": {"id": 444001},
        "app": {"id": APP_ID, "slug": "gitops-render"},
        "pull_requests": []
    })
}

// ---- the real binary ----

pub struct Server {
    pub child: Child,
    pub addr: String,
    pub logs: Arc<Mutex<String>>,
}

impl Server {
    pub fn start(api_url: &str, extra: &[&str]) -> Server {
        Server::start_with(api_url, extra, &[])
    }

    /// `start` with more environment, which wins over the defaults (an empty value
    /// unsets one, as `serve` reads it).
    pub fn start_with(api_url: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gitops-render"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("GITHUB_APP_ID", APP_ID.to_string())
            .env("GITHUB_APP_PRIVATE_KEY", &keys().private_pem)
            .env("GITHUB_WEBHOOK_SECRET", SECRET)
            .env("GITHUB_API_URL", api_url)
            .env("RUST_LOG", "info,gitops_render=debug")
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start gitops-render serve");
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("gitops-render serve: listening on http://") {
                    let _ = tx.send(addr.to_string());
                }
                // --log-json: the "listening" event carries the address.
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if v["fields"]["message"] == "listening" {
                        if let Some(addr) = v["fields"]["addr"].as_str() {
                            let _ = tx.send(addr.to_string());
                        }
                    }
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!("serve did not start; logs:\n{}", logs.lock().unwrap());
            }
        };
        Server { child, addr, logs }
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// A delivery signed with the right secret.
    pub async fn deliver(&self, event: &str, delivery: &str, body: &[u8]) -> (u16, String) {
        let sig = gitops_render::server::webhook::sign(SECRET.as_bytes(), body);
        self.post_webhook(event, delivery, body, Some(&sig)).await
    }

    pub async fn post_webhook(
        &self,
        event: &str,
        delivery: &str,
        body: &[u8],
        signature: Option<&str>,
    ) -> (u16, String) {
        let mut headers = vec![
            ("X-GitHub-Event", event.to_string()),
            ("X-GitHub-Delivery", delivery.to_string()),
            ("X-GitHub-Hook-ID", "123456".to_string()),
            ("User-Agent", "GitHub-Hookshot/abc1234".to_string()),
            ("Content-Type", "application/json".to_string()),
        ];
        if let Some(s) = signature {
            headers.push(("X-Hub-Signature-256", s.to_string()));
        }
        http(&self.addr, "POST", "/webhook", &headers, body).await
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        http(&self.addr, "GET", path, &[], b"").await
    }

    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 exchange (one request per connection), on a blocking thread:
/// the crate's tokio has no io-util, and a test client needs nothing more.
pub async fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String) {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    let addr = addr.to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        // A server may answer (413) before reading a large body; it is fine if the
        // rest of the write then fails.
        let _ = stream.write_all(&bytes);
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw).to_string();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    })
    .await
    .unwrap()
}

// ---- deliveries ----

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/deliveries/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn set_repo(v: &mut Value, repo: &str) {
    let (owner, name) = repo.split_once('/').unwrap();
    v["repository"]["full_name"] = json!(repo);
    v["repository"]["name"] = json!(name);
    v["repository"]["owner"]["login"] = json!(owner);
}

/// A `pull_request` delivery for `repo`#`number` at `sha`.
pub fn pull_request(action: &str, repo: &str, number: u64, sha: &str) -> Vec<u8> {
    let mut v = fixture("pull_request.opened.json");
    v["action"] = json!(action);
    v["number"] = json!(number);
    v["pull_request"]["number"] = json!(number);
    v["pull_request"]["head"]["sha"] = json!(sha);
    set_repo(&mut v, repo);
    serde_json::to_vec(&v).unwrap()
}

/// A `check_run` `rerequested` delivery for our check run on `repo`#`number` at `sha`.
pub fn check_run_rerequested(repo: &str, number: u64, sha: &str) -> Vec<u8> {
    let mut v = fixture("check_run.rerequested.json");
    v["check_run"]["head_sha"] = json!(sha);
    v["check_run"]["pull_requests"][0]["number"] = json!(number);
    v["check_run"]["pull_requests"][0]["head"]["sha"] = json!(sha);
    set_repo(&mut v, repo);
    serde_json::to_vec(&v).unwrap()
}

/// A `check_run` `rerequested` delivery as GitHub sends it for a fork's pull request:
/// no `pull_requests`; our run's `external_id` as we wrote it.
pub fn check_run_rerequested_from_fork(repo: &str, external_id: &str, sha: &str) -> Vec<u8> {
    let mut v = fixture("check_run.rerequested.json");
    v["check_run"]["head_sha"] = json!(sha);
    v["check_run"]["external_id"] = json!(external_id);
    v["check_run"]["pull_requests"] = json!([]);
    set_repo(&mut v, repo);
    serde_json::to_vec(&v).unwrap()
}

/// A `check_suite` `rerequested` delivery ("Re-run all checks") at `sha`: for pull
/// request `number`, or, with `None`, with `pull_requests` empty as for a fork.
pub fn check_suite_rerequested(repo: &str, number: Option<u64>, sha: &str) -> Vec<u8> {
    let mut v = fixture("check_suite.rerequested.json");
    v["check_suite"]["head_sha"] = json!(sha);
    v["check_suite"]["after"] = json!(sha);
    v["check_suite"]["head_commit"]["id"] = json!(sha);
    match number {
        Some(n) => {
            v["check_suite"]["pull_requests"][0]["number"] = json!(n);
            v["check_suite"]["pull_requests"][0]["head"]["sha"] = json!(sha);
        }
        None => v["check_suite"]["pull_requests"] = json!([]),
    }
    set_repo(&mut v, repo);
    serde_json::to_vec(&v).unwrap()
}

pub fn example(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}
