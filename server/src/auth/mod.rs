//! Who may do what: the owner, share links, tokens, and the checks every request passes.
//!
//! Every route that touches a document asks an [`Authorizer`] first (the API and the socket
//! alike), so there is no way around it. [`Auth`] is quire's: the owner (the owner key as a
//! bearer token or `?token=`, or the browser session it signs in), and JWTs for one document
//! with a role (share links, or tokens an embedding application mints). [`AllowAll`] is
//! `--auth none`, for a trusted single-user setup.
//!
//! - [`token`]: JWTs signed with the server secret.
//! - [`keys`]: the secret and the owner key, in the data directory.
//! - [`links`]: share links, removable at once.
//! - [`session`]: the owner's browser session cookie.

pub mod keys;
pub mod links;
pub mod session;
pub mod token;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderMap, Method};
use quire_model::DocId;
use serde::{Deserialize, Serialize};

use links::Links;
use token::{Claims, Signer};

/// What someone may do with a document, each role including the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Receives the document and every change; its own changes are dropped.
    View,
    /// Edits.
    Edit,
    /// Everything, every document: lists, creates, deletes, shares.
    Owner,
}

/// What a request may do, and what it came in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub role: Role,
    /// The share link it came in with: removing the link closes the connection.
    pub link: Option<String>,
    /// When its credentials expire (ms since the epoch): a connection is closed then.
    pub expires_ms: Option<u64>,
}

impl Grant {
    pub fn owner() -> Grant {
        Grant { role: Role::Owner, link: None, expires_ms: None }
    }
}

/// Why a request was refused. Says nothing about the document (not even whether it exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("credentials are required: sign in, or open a share link")]
    Unauthenticated,
    #[error("the credentials are not valid (tampered with, expired or revoked)")]
    InvalidCredentials,
    #[error("these credentials do not allow this")]
    Forbidden,
    #[error("a request from another site with the owner's session is refused")]
    CrossSite,
    /// The credentials could not be checked now (the store holding share links is unreachable).
    #[error("access cannot be checked right now, retry shortly")]
    Unavailable,
}

/// What a request brings to prove who it is.
pub struct Credentials<'a> {
    pub headers: &'a HeaderMap,
    /// The query string (y-websocket clients pass tokens as URL parameters).
    pub query: Option<&'a str>,
    pub method: &'a Method,
}

impl Credentials<'_> {
    /// The `token` query parameter, or the bearer token.
    fn token(&self) -> Option<&str> {
        let bearer = self
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let query = self.query.and_then(|q| {
            q.split('&').find_map(|pair| pair.strip_prefix("token="))
        });
        bearer.or(query).filter(|t| !t.is_empty())
    }

    /// Whether the request changes something or opens a socket: what a cross-site request
    /// with the owner's cookie must not be able to do.
    fn is_sensitive(&self) -> bool {
        let upgrade = self.headers.get(header::UPGRADE).is_some();
        upgrade || !matches!(*self.method, Method::GET | Method::HEAD | Method::OPTIONS)
    }
}

/// Async because a share link may have to be read from a store that other processes write.
#[async_trait::async_trait]
pub trait Authorizer: Send + Sync + 'static {
    /// What the caller may do with `doc`, or with the server as a whole (`None`: listing and
    /// creating documents).
    async fn authorize(&self, doc: Option<&DocId>, credentials: &Credentials<'_>) -> Result<Grant, Denied>;

    /// The owner key, share links and sessions, if this policy has them.
    fn keys(&self) -> Option<&Auth> {
        None
    }
}

/// `--auth none`: everyone is the owner. For a trusted single-user setup (and tests that are
/// not about access).
pub struct AllowAll;

#[async_trait::async_trait]
impl Authorizer for AllowAll {
    async fn authorize(&self, _: Option<&DocId>, _: &Credentials<'_>) -> Result<Grant, Denied> {
        Ok(Grant::owner())
    }
}

/// quire's access policy: the owner key, share links and tokens.
pub struct Auth {
    owner_key: String,
    signer: Signer,
    links: Arc<Links>,
    /// Origins besides our own from which the owner's browser session may be used.
    allowed_origins: Vec<String>,
}

/// Why the access policy could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot set up the server's keys")]
    Keys(#[from] keys::KeyError),
    #[error("cannot read the share links")]
    Links(#[from] links::LinkError),
}

impl Auth {
    /// The policy of the server whose data directory is `dir`: its keys (created there on
    /// first start unless given) and the share links in `store`.
    pub async fn open(
        dir: &std::path::Path,
        store: Arc<dyn crate::store::Store>,
        owner_key: Option<&str>,
        secret: Option<&str>,
        allowed_origins: Vec<String>,
    ) -> Result<Auth, AuthError> {
        let keys = keys::load_or_create(dir, owner_key, secret)?;
        let links = Links::load(store).await?;
        Ok(Auth {
            signer: Signer::new(&keys.secret),
            owner_key: keys.owner_key,
            links: Arc::new(links),
            allowed_origins,
        })
    }

    /// Signs a session out (the `Set-Cookie` value).
    pub fn sign_out(&self) -> String {
        session::clear_cookie()
    }

    pub fn links(&self) -> &Links {
        &self.links
    }

    /// The owner key, to print the sign-in URL.
    pub fn owner_key(&self) -> &str {
        &self.owner_key
    }

    /// Whether `key` is the owner key. Their digests are compared, so the time a comparison
    /// takes tells nothing about the key.
    pub fn is_owner_key(&self, key: &str) -> bool {
        let digest = |s: &str| ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
        digest(key).as_ref() == digest(&self.owner_key).as_ref()
    }

    /// A session cookie's `Set-Cookie` value, for a browser that presented the owner key.
    pub fn sign_in(&self) -> String {
        session::set_cookie(&session::issue(&self.signer, &self.owner_key, now_ms() / 1000))
    }

    /// A token for a share link.
    pub fn link_token(&self, link: &links::Link) -> String {
        self.signer.sign(&Claims {
            doc: link.doc.clone(),
            role: link.role,
            link: Some(link.id.clone()),
            exp: link.expires_ms.map(|ms| ms.div_ceil(1000)),
            name: None,
        })
    }

    /// The cookie's grant, if any, checked against cross-site use.
    fn session(&self, credentials: &Credentials<'_>) -> Result<Option<Grant>, Denied> {
        if !session::is_owner(&self.signer, &self.owner_key, credentials.headers) {
            return Ok(None);
        }
        if credentials.is_sensitive() && !self.same_site(credentials.headers) {
            return Err(Denied::CrossSite);
        }
        Ok(Some(Grant::owner()))
    }

    /// Whether a browser request comes from a page of ours: its `Origin` names our host (or an
    /// allowed origin), or, without one, `Sec-Fetch-Site` says so. A request with neither is
    /// not from a browser page (a browser sends `Origin` with every socket and every
    /// cross-origin change).
    fn same_site(&self, headers: &HeaderMap) -> bool {
        let get = |name| headers.get(name).and_then(|v| v.to_str().ok());
        if let Some(origin) = get(header::ORIGIN) {
            let host = get(header::HOST).unwrap_or_default();
            let ours = origin.split_once("://").is_some_and(|(_, rest)| rest == host);
            return ours || self.allowed_origins.iter().any(|o| o == origin);
        }
        match get(header::HeaderName::from_static("sec-fetch-site")) {
            Some(site) => site == "same-origin" || site == "none",
            None => true,
        }
    }
}

#[async_trait::async_trait]
impl Authorizer for Auth {
    fn keys(&self) -> Option<&Auth> {
        Some(self)
    }

    async fn authorize(&self, doc: Option<&DocId>, credentials: &Credentials<'_>) -> Result<Grant, Denied> {
        if let Some(token) = credentials.token() {
            if self.is_owner_key(token) {
                return Ok(Grant::owner());
            }
            let claims: Claims = self.signer.verify(token).map_err(|_| Denied::InvalidCredentials)?;
            let now = now_ms();
            if let Some(link) = &claims.link {
                let doc = DocId::parse(&claims.doc).map_err(|_| Denied::InvalidCredentials)?;
                match self.links.is_live(&doc, link, now).await {
                    Ok(true) => {}
                    Ok(false) => return Err(Denied::InvalidCredentials),
                    Err(error) => {
                        tracing::error!(error = %crate::error::chain(&error), "cannot check a share link");
                        return Err(Denied::Unavailable);
                    }
                }
            }
            // A token opens its own document, and nothing else: not even the list.
            if doc.is_none_or(|doc| doc.as_str() != claims.doc) || claims.role == Role::Owner {
                return Err(Denied::Forbidden);
            }
            return Ok(Grant {
                role: claims.role,
                link: claims.link,
                expires_ms: claims.exp.map(|s| s.saturating_mul(1000)),
            });
        }
        if let Some(grant) = self.session(credentials)? {
            return Ok(grant);
        }
        if session::has_cookie(credentials.headers) {
            // A session made with an earlier owner key, or expired.
            return Err(Denied::InvalidCredentials);
        }
        Err(Denied::Unauthenticated)
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
