//! Stand-ins for what a CI runner offers a job, on 127.0.0.1, started by the test:
//! GitHub Actions' ID token service (`GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=AUD`
//! with `Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN`, answering
//! `{"count": N, "value": "<jwt>"}`), and a scripted HTTP server that answers a list of
//! responses in turn (a deploy API that is busy, down or lying), recording every request.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter, percent-decoded.
    pub fn query(&self, name: &str) -> Option<String> {
        let (_, q) = self.target.split_once('?')?;
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// A response: status, extra headers, body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, body: &serde_json::Value) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: serde_json::to_vec(body).unwrap(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// A one-thread-per-connection HTTP/1.1 server on 127.0.0.1, `Connection: close`.
pub struct Stub {
    pub port: u16,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<Request>>>,
    thread: Option<JoinHandle<()>>,
}

impl Stub {
    pub fn start(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let (s, r) = (stop.clone(), requests.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (r, handler) = (r.clone(), handler.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &r, &*handler);
                });
            }
        });
        Stub {
            port,
            stop,
            requests,
            thread: Some(thread),
        }
    }

    /// Answers `responses` in turn, then the last one again and again.
    pub fn scripted(responses: Vec<Response>) -> Stub {
        let at = Mutex::new(0usize);
        Stub::start(move |_| {
            let mut i = at.lock().unwrap();
            let r = responses[(*i).min(responses.len() - 1)].clone();
            *i += 1;
            r
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(conn: TcpStream, log: &Mutex<Vec<Request>>, handler: &Handler) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("GET").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let n: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; n];
    reader.read_exact(&mut body)?;
    let request = Request {
        method,
        target,
        headers,
        body,
    };
    let response = handler(&request);
    log.lock().unwrap().push(request);
    let mut conn = conn;
    let mut head = format!("HTTP/1.1 {} X\r\n", response.status);
    for (k, v) in &response.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        response.body.len()
    ));
    conn.write_all(head.as_bytes())?;
    conn.write_all(&response.body)?;
    conn.flush()
}

/// GitHub Actions' ID token service: the environment a job with `permissions:
/// id-token: write` gets, and the token it hands out for the audience asked.
pub struct TokenService {
    pub stub: Stub,
    /// `ACTIONS_ID_TOKEN_REQUEST_TOKEN`: the runner's request credential.
    pub request_token: String,
}

impl TokenService {
    /// Hands out `mint(audience)` to requests that carry the request token; 401 to
    /// others, as the runner's service does.
    pub fn start(mint: impl Fn(&str) -> String + Send + Sync + 'static) -> TokenService {
        let request_token = format!("runtime-{}", std::process::id());
        let expected = format!("bearer {request_token}");
        let stub = Stub::start(move |req| {
            let authorized = req
                .header("authorization")
                .is_some_and(|a| a.eq_ignore_ascii_case(&expected));
            if req.method != "GET" || !req.target.starts_with("/_apis/oidctoken") || !authorized {
                return Response::json(401, &serde_json::json!({"message": "unauthorized"}));
            }
            let audience = req.query("audience").unwrap_or_default();
            Response::json(
                200,
                &serde_json::json!({"count": 1, "value": mint(&audience)}),
            )
        });
        TokenService {
            stub,
            request_token,
        }
    }

    /// `ACTIONS_ID_TOKEN_REQUEST_URL`, with its own query as GitHub's has one.
    pub fn request_url(&self) -> String {
        format!("{}/_apis/oidctoken?api-version=2.0", self.stub.url())
    }

    /// The environment variables the runner sets.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("GITHUB_ACTIONS", "true".into()),
            ("ACTIONS_ID_TOKEN_REQUEST_URL", self.request_url()),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", self.request_token.clone()),
        ]
    }

    /// The audiences asked for, in order.
    pub fn audiences(&self) -> Vec<String> {
        self.stub
            .requests()
            .iter()
            .filter_map(|r| r.query("audience"))
            .collect()
    }
}

/// A compact JWS that is well-formed but signed by nobody: for the client's own
/// behaviour, where no server verifies it.
pub fn unsigned_looking_jwt(subject: &str) -> String {
    use base64::Engine;
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&v).unwrap())
    };
    format!(
        "{}.{}.{}",
        b64(serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "k"})),
        b64(serde_json::json!({"sub": subject, "aud": "gitops-render"})),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"not-a-signature-but-unique")
    )
}
