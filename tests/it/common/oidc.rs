//! A local OIDC issuer stand-in for the deploy API's tests: the discovery document and
//! the JWKS served on 127.0.0.1, RSA and P-256 keys generated at test time with the
//! `openssl` CLI, tokens signed with them (jsonwebtoken), keys published or withheld at
//! will (rotation), and every JWKS fetch counted.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::github::openssl;

/// A signing key: its private PEM (PKCS#8) and its public JWK.
#[derive(Clone)]
pub struct Key {
    pub kid: String,
    pub alg: Algorithm,
    pub private_pem: String,
    pub public_pem: String,
    pub jwk: Value,
}

impl Key {
    pub fn rsa(kid: &str) -> Key {
        let private = openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ],
            b"",
        );
        let public = openssl(&["pkey", "-pubout"], &private);
        let modulus = String::from_utf8(openssl(&["rsa", "-noout", "-modulus"], &private)).unwrap();
        let hex_n = modulus.trim().strip_prefix("Modulus=").unwrap();
        let n = hex::decode(hex_n).unwrap();
        Key {
            kid: kid.into(),
            alg: Algorithm::RS256,
            private_pem: String::from_utf8(private).unwrap(),
            public_pem: String::from_utf8(public).unwrap(),
            jwk: json!({
                "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                "n": URL_SAFE_NO_PAD.encode(n), "e": "AQAB"
            }),
        }
    }

    pub fn ec(kid: &str) -> Key {
        let private = openssl(
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ],
            b"",
        );
        let public = openssl(&["pkey", "-pubout"], &private);
        // SubjectPublicKeyInfo of a P-256 key ends with the uncompressed point 04||X||Y.
        let der = openssl(&["pkey", "-pubout", "-outform", "DER"], &private);
        let point = &der[der.len() - 64..];
        Key {
            kid: kid.into(),
            alg: Algorithm::ES256,
            private_pem: String::from_utf8(private).unwrap(),
            public_pem: String::from_utf8(public).unwrap(),
            jwk: json!({
                "kty": "EC", "use": "sig", "alg": "ES256", "kid": kid, "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(&point[..32]), "y": URL_SAFE_NO_PAD.encode(&point[32..])
            }),
        }
    }

    /// A token with these claims, signed by this key.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        let key = match self.alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(self.private_pem.as_bytes()).unwrap(),
            _ => EncodingKey::from_ec_pem(self.private_pem.as_bytes()).unwrap(),
        };
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }
}

#[derive(Default)]
pub struct IssuerState {
    pub published: Vec<Value>,
    pub jwks_fetches: u32,
    pub discovery_fetches: u32,
    /// What the discovery document says the issuer is, when not the truth.
    pub claimed_issuer: Option<String>,
}

/// An issuer on loopback.
#[derive(Clone)]
pub struct Issuer {
    pub url: String,
    pub state: Arc<Mutex<IssuerState>>,
    keys: Arc<Mutex<HashMap<String, Key>>>,
}

impl Issuer {
    pub async fn start() -> Issuer {
        let state = Arc::new(Mutex::new(IssuerState::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .with_state((state.clone(), url.clone()));
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Issuer {
            url,
            state,
            keys: Default::default(),
        }
    }

    /// Makes a key and publishes it in the JWKS.
    pub fn publish(&self, key: Key) -> Key {
        self.state.lock().unwrap().published.push(key.jwk.clone());
        self.keys
            .lock()
            .unwrap()
            .insert(key.kid.clone(), key.clone());
        key
    }

    pub fn jwks_fetches(&self) -> u32 {
        self.state.lock().unwrap().jwks_fetches
    }

    /// Claims as GitHub Actions issues them (the documented names), for `repository`
    /// at `git_ref`, valid now for `aud`.
    pub fn github_claims(&self, repository: &str, git_ref: &str, aud: &str) -> Value {
        let now = now();
        json!({
            "iss": self.url,
            "aud": aud,
            "sub": format!("repo:{repository}:ref:{git_ref}"),
            "iat": now, "nbf": now - 5, "exp": now + 300,
            "jti": format!("jti-{now}-{repository}"),
            "repository": repository,
            "repository_owner": repository.split('/').next().unwrap(),
            "repository_id": "74",
            "ref": git_ref,
            "ref_type": "branch",
            "sha": "4f2a9c1d3e5b7a9c1d3e5f7a9b1c3d5e7f9a1b3c",
            "actor": "octocat",
            "actor_id": "1",
            "run_id": "123",
            "run_number": "7",
            "run_attempt": "1",
            "workflow": "deploy",
            "event_name": "push",
            "job_workflow_ref": format!("{repository}/.github/workflows/deploy.yml@{git_ref}"),
            "runner_environment": "github-hosted"
        })
    }

    /// Claims as GitLab CI issues them (`id_tokens`).
    pub fn gitlab_claims(&self, project: &str, branch: &str, protected: bool, aud: &str) -> Value {
        let now = now();
        json!({
            "iss": self.url,
            "aud": aud,
            "sub": format!("project_path:{project}:ref_type:branch:ref:{branch}"),
            "iat": now, "nbf": now - 5, "exp": now + 300,
            "namespace_path": project.split('/').next().unwrap(),
            "project_path": project,
            "user_login": "alice",
            "pipeline_id": "456",
            "job_id": "789",
            "ref": branch,
            "ref_type": "branch",
            "ref_protected": if protected { "true" } else { "false" },
            "sha": "abc1234def5678abc1234def5678abc1234def56"
        })
    }
}

pub fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// A JWT with this header and claims and no signature (`alg: none`).
pub fn unsigned(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// A JWT signed HS256 with `secret` (the algorithm-confusion attack: the issuer's
/// public key used as an HMAC secret).
pub fn hs256(kid: &str, secret: &[u8], claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

type Shared = (Arc<Mutex<IssuerState>>, String);

async fn discovery(State((state, url)): State<Shared>) -> impl IntoResponse {
    let mut s = state.lock().unwrap();
    s.discovery_fetches += 1;
    let issuer = s.claimed_issuer.clone().unwrap_or_else(|| url.clone());
    axum::Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{url}/jwks"),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"]
    }))
}

async fn jwks(State((state, _)): State<Shared>) -> impl IntoResponse {
    let mut s = state.lock().unwrap();
    s.jwks_fetches += 1;
    axum::Json(json!({ "keys": s.published }))
}
