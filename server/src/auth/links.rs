//! Share links: "anyone with the link can view / edit" a document, until the owner removes the
//! link or it expires. Kept in the store and held here, so that checking a token's link costs
//! no read. When other processes share the store (a cluster), they create and remove links
//! too: a link is then read again once what is held of it is older than [`FRESH`], so a
//! removal anywhere is honoured everywhere within that.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use quire_model::DocId;
use serde::{Deserialize, Serialize};

use super::Role;
use crate::store::{Store, StoreError};

/// One share link as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub id: String,
    pub doc: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub created_ms: u64,
    /// Milliseconds since the epoch; `None`: until removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<u64>,
}

/// Characters of a link id: 12 of `[a-z0-9]` (~62 bits; ids are not secrets, the token is).
const ID_CHARS: usize = 12;
const ID_ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("storing the link failed")]
    Store(#[from] StoreError),
    #[error("a stored link is unreadable")]
    Corrupt(#[source] serde_json::Error),
    #[error("the system's random source failed")]
    Random(#[source] getrandom::Error),
}

/// How long what is held of a link is trusted when other processes share the store.
pub const FRESH: Duration = Duration::from_secs(1);

/// What is held of one link id: the link (`None`: there is none), and when it was read.
struct Held {
    link: Option<Link>,
    read: Instant,
}

/// Every share link, by id.
pub struct Links {
    store: Arc<dyn Store>,
    // std RwLock: held for a map operation only, never across an await.
    by_id: RwLock<HashMap<String, Held>>,
}

fn decode(record: &[u8]) -> Result<Link, LinkError> {
    serde_json::from_slice(record).map_err(LinkError::Corrupt)
}

impl Links {
    /// Reads every link from the store (a shared store: none now, each when first asked for).
    pub async fn load(store: Arc<dyn Store>) -> Result<Links, LinkError> {
        let mut by_id = HashMap::new();
        if !store.is_shared() {
            let read = Instant::now();
            for (_, id, record) in store.links().await? {
                by_id.insert(id, Held { link: Some(decode(&record)?), read });
            }
        }
        Ok(Links {
            store,
            by_id: RwLock::new(by_id),
        })
    }

    /// Whether link `id` of `doc` exists and has not expired at `now_ms`.
    pub async fn is_live(&self, doc: &DocId, id: &str, now_ms: u64) -> Result<bool, LinkError> {
        let held = self.read().get(id).filter(|held| !self.store.is_shared() || held.read.elapsed() < FRESH).map(|held| held.link.clone());
        let link = match held {
            Some(link) => link,
            None if self.store.is_shared() => {
                let link = self.store.link(doc, id).await?.as_deref().map(decode).transpose()?;
                self.write().insert(id.to_owned(), Held { link: link.clone(), read: Instant::now() });
                link
            }
            None => None,
        };
        Ok(link.is_some_and(|link| link.doc == doc.as_str() && link.expires_ms.is_none_or(|e| e > now_ms)))
    }

    /// A new link of `doc`, stored.
    pub async fn create(&self, doc: &DocId, role: Role, label: Option<String>, created_ms: u64, expires_ms: Option<u64>) -> Result<Link, LinkError> {
        let link = Link {
            id: random_id()?,
            doc: doc.to_string(),
            role,
            label,
            created_ms,
            expires_ms,
        };
        let record = serde_json::to_vec(&link).expect("a link always serializes");
        self.store.put_link(doc, &link.id, &record).await?;
        self.write().insert(link.id.clone(), Held { link: Some(link.clone()), read: Instant::now() });
        Ok(link)
    }

    /// The links of `doc`, oldest first.
    pub async fn of(&self, doc: &DocId) -> Result<Vec<Link>, LinkError> {
        let mut links: Vec<Link> = if self.store.is_shared() {
            let records = self.store.links_of(doc).await?;
            records.iter().map(|(_, record)| decode(record)).collect::<Result<_, _>>()?
        } else {
            self.read().values().filter_map(|held| held.link.clone()).filter(|l| l.doc == doc.as_str()).collect()
        };
        links.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        Ok(links)
    }

    /// Removes link `id` of `doc`; whether it existed.
    pub async fn remove(&self, doc: &DocId, id: &str) -> Result<bool, LinkError> {
        // A shared store may hold links this process never saw: ask it.
        let known = self.read().get(id).and_then(|held| held.link.as_ref()).is_some_and(|l| l.doc == doc.as_str());
        let removed = if self.store.is_shared() || known {
            self.store.remove_link(doc, id).await?
        } else {
            false
        };
        if removed {
            self.write().remove(id);
        }
        Ok(removed)
    }

    /// Removes every link of `doc` (it was deleted).
    pub async fn remove_all(&self, doc: &DocId) -> Result<(), LinkError> {
        for link in self.of(doc).await? {
            self.remove(doc, &link.id).await?;
        }
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Held>> {
        self.by_id.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Held>> {
        self.by_id.write().unwrap_or_else(|p| p.into_inner())
    }
}

fn random_id() -> Result<String, LinkError> {
    let mut id = String::with_capacity(ID_CHARS);
    let mut bytes = [0u8; 32];
    while id.len() < ID_CHARS {
        getrandom::fill(&mut bytes).map_err(LinkError::Random)?;
        // 252 = 7 × 36: every character equally likely.
        for byte in bytes.iter().filter(|&&b| b < 252).take(ID_CHARS - id.len()) {
            id.push(char::from(ID_ALPHABET[usize::from(*byte) % ID_ALPHABET.len()]));
        }
    }
    Ok(id)
}
