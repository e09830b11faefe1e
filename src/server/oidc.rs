//! OIDC token verification for the deploy API: who is calling, proven by the token
//! their CI issued (GitHub Actions, GitLab CI, any issuer the platform trusts).
//!
//! What may go wrong with a bearer JWT is mostly what verifiers forget, so each check
//! is explicit here and each refusal names the check that failed, never the token:
//! - the issuer is picked from the unverified `iss` claim only to find its keys; it must
//!   be one of `--trust-issuer` exactly, and its discovery document must name itself
//!   with the same string (a document served for another issuer is refused);
//! - keys come from the discovery document's `jwks_uri`, cached per issuer. A `kid` not
//!   in the cache refreshes the key set at most once per `refresh_interval` per issuer
//!   (single-flight), so a flood of made-up `kid`s cannot make us hammer the issuer;
//! - RS256 and ES256 only, and the token's `alg` must fit the key's type (and the key's
//!   own `alg`, when it states one): `none`, HS*, and an HS256 signature made with the
//!   public key as secret are refused before any signature is looked at;
//! - `exp`, `nbf` and `iat` with `LEEWAY` seconds of clock skew; `aud` equal to the
//!   configured audience (a string, or an array containing it); `iss` verified again
//!   as part of the signed claims.
//!
//! Discovery and JWKS are fetched with the hyper client the App already uses, bounded
//! in size (`MAX_DOCUMENT_BYTES`) and time (`FETCH_TIMEOUT`), without following
//! redirects; `https://` only, except on loopback hosts (tests, local trials).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::github::Http;

/// Clock skew allowed on `exp`, `nbf` and `iat`.
pub const LEEWAY: u64 = 60;
/// The most a discovery document or key set may weigh: real ones are a few KiB.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// How long one fetch of a discovery document or key set may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The most bytes of a bearer token we look at: CI tokens are 1-2 KiB.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The token itself (401): the reason names the failed check.
    Invalid(String),
    /// The issuer could not be reached or answered nonsense (503): not the caller's
    /// fault, and not a reason to trust the token either.
    Unavailable(String),
}

impl Refusal {
    pub fn reason(&self) -> &str {
        match self {
            Refusal::Invalid(r) | Refusal::Unavailable(r) => r,
        }
    }
}

/// A token whose signature and claims verified.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The trusted issuer, exactly as configured.
    pub issuer: String,
    pub claims: Map<String, Value>,
}

/// The keys of one trusted issuer, as last fetched.
#[derive(Default)]
struct KeySet {
    jwks_uri: Option<String>,
    keys: Vec<Jwk>,
    /// When the key set was last fetched (successfully or not): the refresh bound.
    fetched: Option<Instant>,
}

struct Issuer {
    url: String,
    /// Single-flight: whoever holds it is the one fetching.
    keys: tokio::sync::Mutex<KeySet>,
    /// Key set fetches so far (for `/metrics` and the tests' bound on refreshes).
    fetches: AtomicU64,
}

/// The verifier `serve` shares between requests.
pub struct Verifier {
    issuers: HashMap<String, Arc<Issuer>>,
    audience: String,
    refresh_interval: Duration,
    http: Http,
}

/// Whether `url` may be trusted as an issuer (or fetched as its key set): `https://`,
/// or `http://` on a loopback host.
pub fn check_url(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!("{url:?} must not carry credentials"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!("{url:?} must not have a query or fragment"));
    }
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(()),
        "http" if is_loopback(&parsed) => Ok(()),
        "http" => Err(format!(
            "{url:?}: an issuer must be https:// (http:// only on a loopback address)"
        )),
        _ => Err(format!("{url:?}: an issuer must be an https:// URL")),
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

impl Verifier {
    /// `issuers` must already have passed `check_url`.
    pub fn new(
        issuers: &[String],
        audience: &str,
        refresh_interval: Duration,
    ) -> Result<Verifier, String> {
        for i in issuers {
            check_url(i)?;
        }
        let http = super::github::https_client(FETCH_TIMEOUT)?;
        Ok(Verifier {
            issuers: issuers
                .iter()
                .map(|u| {
                    (
                        u.clone(),
                        Arc::new(Issuer {
                            url: u.clone(),
                            keys: Default::default(),
                            fetches: AtomicU64::new(0),
                        }),
                    )
                })
                .collect(),
            audience: audience.to_string(),
            refresh_interval,
            http,
        })
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Key set fetches per issuer so far.
    pub fn fetches(&self) -> Vec<(String, u64)> {
        let mut v: Vec<_> = self
            .issuers
            .values()
            .map(|i| (i.url.clone(), i.fetches.load(Ordering::Relaxed)))
            .collect();
        v.sort();
        v
    }

    /// Verifies `token` (the bearer credential, without `Bearer `).
    pub async fn verify(&self, token: &str) -> Result<Verified, Refusal> {
        let invalid = |s: &str| Refusal::Invalid(s.to_string());
        if token.len() > MAX_TOKEN_BYTES {
            return Err(invalid("token too large"));
        }
        if token.split('.').count() != 3 {
            return Err(invalid("token malformed: not a signed JWT (three parts)"));
        }
        // The header and `iss` are read unverified only to choose the key; nothing
        // else is believed before the signature checks.
        let alg = header_alg(token)?;
        let algorithm = match alg.as_str() {
            "RS256" => Algorithm::RS256,
            "ES256" => Algorithm::ES256,
            "none" | "None" | "NONE" => {
                return Err(invalid("algorithm none refused: the token is unsigned"))
            }
            other => {
                return Err(Refusal::Invalid(format!(
                    "algorithm {} not allowed (RS256 or ES256 only)",
                    crate::ops::printable(&other.chars().take(20).collect::<String>())
                )))
            }
        };
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| Refusal::Invalid(format!("token malformed: header: {}", kind(&e))))?;
        let iss = unverified_issuer(token)?;
        let Some(issuer) = self.issuers.get(&iss) else {
            return Err(Refusal::Invalid(format!(
                "issuer not trusted: {}",
                crate::ops::printable(&iss.chars().take(200).collect::<String>())
            )));
        };
        let kid = header.kid.clone();
        let jwk = self.key(issuer, kid.as_deref()).await?;
        check_key_fits(&jwk, algorithm)?;
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|e| Refusal::Unavailable(format!("the issuer's key is unusable: {e}")))?;
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_audience(&[&self.audience]);
        validation.set_issuer(&[&issuer.url]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| Refusal::Invalid(refusal_of(&e)))?;
        let claims = data.claims;
        let now = jsonwebtoken::get_current_timestamp();
        match claims.get("iat").and_then(Value::as_u64) {
            Some(iat) if iat > now + LEEWAY => {
                return Err(invalid("token issued in the future (iat)"))
            }
            Some(_) => {}
            None => return Err(invalid("claim iat is not a number")),
        }
        Ok(Verified {
            issuer: issuer.url.clone(),
            claims,
        })
    }

    /// The key `kid` names (or the only key, for a token without `kid`), refreshing the
    /// issuer's key set when it is unknown and the last fetch is older than the interval.
    async fn key(&self, issuer: &Issuer, kid: Option<&str>) -> Result<Jwk, Refusal> {
        let mut set = issuer.keys.lock().await;
        if let Some(k) = find(&set.keys, kid) {
            return Ok(k);
        }
        let due = set
            .fetched
            .is_none_or(|t| t.elapsed() >= self.refresh_interval);
        if due {
            set.fetched = Some(Instant::now());
            issuer.fetches.fetch_add(1, Ordering::Relaxed);
            match self.fetch_keys(issuer, &mut set).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(issuer = %issuer.url, error = %e, "cannot fetch the issuer's keys");
                    return Err(Refusal::Unavailable(format!(
                        "cannot fetch the issuer's signing keys: {e}"
                    )));
                }
            }
            if let Some(k) = find(&set.keys, kid) {
                return Ok(k);
            }
        }
        Err(Refusal::Invalid(match kid {
            Some(_) => "unknown signing key (kid not in the issuer's key set)".into(),
            None => "token has no kid and the issuer has more than one key".into(),
        }))
    }

    async fn fetch_keys(&self, issuer: &Issuer, set: &mut KeySet) -> Result<(), String> {
        let jwks_uri = match &set.jwks_uri {
            Some(u) => u.clone(),
            None => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    issuer.url.trim_end_matches('/')
                );
                let doc = self.get_json(&url).await?;
                let named = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
                if named != issuer.url {
                    return Err(format!(
                        "discovery issuer mismatch: the document names {:?}",
                        crate::ops::printable(&named.chars().take(200).collect::<String>())
                    ));
                }
                let uri = doc
                    .get("jwks_uri")
                    .and_then(Value::as_str)
                    .ok_or("the discovery document has no jwks_uri")?
                    .to_string();
                check_url(&uri).map_err(|e| format!("jwks_uri {e}"))?;
                set.jwks_uri = Some(uri.clone());
                uri
            }
        };
        let jwks = self.get_json(&jwks_uri).await?;
        let keys = jwks
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("the key set has no keys array")?;
        // A key we cannot read (another type, a private part) is skipped, not fatal:
        // issuers publish keys for several algorithms.
        set.keys = keys
            .iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
            .filter(|k| !matches!(k.common.public_key_use, Some(PublicKeyUse::Encryption)))
            .collect();
        tracing::info!(issuer = %issuer.url, keys = set.keys.len(), "fetched the issuer's signing keys");
        Ok(())
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let request = Request::get(url)
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, super::github::USER_AGENT)
            .body(Full::new(Bytes::new()))
            .map_err(|e| format!("cannot build the request for {url}: {e}"))?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            let status = response.status();
            if status != StatusCode::OK {
                return Err(format!("{url} answered {status}"));
            }
            let body = Limited::new(response.into_body(), MAX_DOCUMENT_BYTES)
                .collect()
                .await
                .map_err(|e| {
                    format!("{url}: unreadable answer (over {MAX_DOCUMENT_BYTES} bytes?): {e}")
                })?
                .to_bytes();
            serde_json::from_slice::<Value>(&body).map_err(|e| format!("{url}: not JSON: {e}"))
        };
        tokio::time::timeout(FETCH_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| Err(format!("{url}: no answer within {FETCH_TIMEOUT:?}")))
    }
}

fn find(keys: &[Jwk], kid: Option<&str>) -> Option<Jwk> {
    match kid {
        Some(kid) => keys
            .iter()
            .find(|k| k.common.key_id.as_deref() == Some(kid))
            .cloned(),
        None if keys.len() == 1 => keys.first().cloned(),
        None => None,
    }
}

/// The token's `alg` as written, before jsonwebtoken's parser (which has no `none`
/// and would call it "malformed").
fn header_alg(token: &str) -> Result<String, Refusal> {
    use base64::Engine as _;
    let first = token.split('.').next().unwrap_or("");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(first.trim_end_matches('='))
        .map_err(|_| Refusal::Invalid("token malformed: header is not base64url".into()))?;
    let header: Value = serde_json::from_slice(&bytes)
        .map_err(|_| Refusal::Invalid("token malformed: header is not JSON".into()))?;
    match header.get("alg").and_then(Value::as_str) {
        Some(a) => Ok(a.to_string()),
        None => Err(Refusal::Invalid(
            "token malformed: header has no alg".into(),
        )),
    }
}

fn unverified_issuer(token: &str) -> Result<String, Refusal> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap_or("");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| Refusal::Invalid("token malformed: claims are not base64url".into()))?;
    let claims: Value = serde_json::from_slice(&bytes)
        .map_err(|_| Refusal::Invalid("token malformed: claims are not JSON".into()))?;
    claims
        .get("iss")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Refusal::Invalid("claim iss missing".into()))
}

/// The key must be of the type the token's algorithm needs, and say so if it says
/// anything: an RSA key for RS256, a P-256 key for ES256, never a symmetric one.
fn check_key_fits(jwk: &Jwk, alg: Algorithm) -> Result<(), Refusal> {
    let fits = match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(_), Algorithm::RS256) => true,
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => {
            ec.curve == EllipticCurve::P256
        }
        _ => false,
    };
    let stated = match jwk.common.key_algorithm {
        None => true,
        Some(KeyAlgorithm::RS256) => alg == Algorithm::RS256,
        Some(KeyAlgorithm::ES256) => alg == Algorithm::ES256,
        Some(_) => false,
    };
    if fits && stated {
        Ok(())
    } else {
        Err(Refusal::Invalid(format!(
            "algorithm {alg:?} does not match the signing key's type"
        )))
    }
}

fn kind(e: &jsonwebtoken::errors::Error) -> String {
    format!("{:?}", e.kind())
        .split('(')
        .next()
        .unwrap_or("")
        .to_string()
}

/// The failed check, in words, from jsonwebtoken's error.
fn refusal_of(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => "token expired".into(),
        K::ImmatureSignature => "token not yet valid (nbf)".into(),
        K::InvalidAudience => "audience mismatch".into(),
        K::InvalidIssuer => "issuer mismatch".into(),
        K::InvalidSignature => "signature does not verify".into(),
        K::InvalidAlgorithm | K::InvalidAlgorithmName | K::MissingAlgorithm => {
            "algorithm not allowed".into()
        }
        K::MissingRequiredClaim(c) => format!("claim {c} missing"),
        K::InvalidClaimFormat(c) => format!("claim {c} malformed"),
        K::InvalidEcdsaKey | K::InvalidRsaKey(_) | K::InvalidKeyFormat => {
            "signature does not verify (key unusable)".into()
        }
        _ => format!("token malformed ({})", kind(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_must_be_https_except_on_loopback() {
        assert!(check_url("https://token.actions.githubusercontent.com").is_ok());
        assert!(check_url("http://127.0.0.1:8080").is_ok());
        assert!(check_url("http://[::1]:8080/issuer").is_ok());
        assert!(check_url("http://localhost:1").is_ok());
        assert!(check_url("http://gitlab.example.com").is_err());
        assert!(check_url("ftp://127.0.0.1").is_err());
        assert!(check_url("https://user:pw@example.com").is_err());
        assert!(check_url("https://example.com/?x=1").is_err());
        assert!(check_url("not a url").is_err());
    }
}
